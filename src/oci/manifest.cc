#include "oci/manifest.h"

#include <sys/utsname.h>

#include <charconv>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "oci/media_types.h"

namespace regdisk::oci {
namespace {

using json = nlohmann::json;

// Real manifests and configs nest 4 or 5 levels; anything far deeper is an
// attack on the parser or on the destructor's stack.
constexpr int kMaxDepth = 64;

enum Need { kOptional, kRequired };



// An error about the value at `at` ("layers[2].digest"; empty: the document).
Status Bad(const std::string& at, const std::string& why) {
  return InvalidArgument(OneLine(at.empty() ? why : at + ": " + why));
}

std::string Join(const std::string& at, const std::string& key) { return at.empty() ? key : at + "." + key; }

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// The OCI grammar: ^[A-Za-z0-9][A-Za-z0-9!#$&-^_.+]{0,126}/ (same again)$.
bool ValidMediaType(std::string_view s) {
  auto part = [](std::string_view p) {
    if (p.empty() || p.size() > 127 || !IsAsciiAlnum(p[0])) return false;
    for (char c : p) {
      bool ok = IsAsciiAlnum(c) || (c >= '&' && c <= '^') || c == '!' || c == '#' || c == '$' || c == '_' ||
                c == '.' || c == '+';
      if (!ok) return false;
    }
    return true;
  };
  size_t slash = s.find('/');
  return slash != std::string_view::npos && part(s.substr(0, slash)) && part(s.substr(slash + 1));
}

// True when arrays and objects in `text` nest deeper than kMaxDepth.
bool TooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// nlohmann's message without its "[json.exception.parse_error.101] " tag,
// cut short (it may quote the offending token in full).
std::string JsonError(const json::exception& e) {
  std::string_view why = e.what();
  if (size_t end = why.find("] "); end != std::string_view::npos) why.remove_prefix(end + 2);
  return OneLine(why.substr(0, 200));
}

StatusOr<json> ParseObject(std::string_view text) {
  if (text.size() > kMaxManifestBytes) {
    return Bad("", std::to_string(text.size()) + " bytes is more than the limit of " +
                       std::to_string(kMaxManifestBytes));
  }
  if (TooDeep(text)) return Bad("", "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a huge number
    return Bad("", "invalid JSON: " + JsonError(e));
  }
  if (!j.is_object()) return Bad("", "must be a JSON object");
  return j;
}

// Member `key` of the object `obj`; nullptr when absent or null.
const json* Member(const json& obj, const std::string& key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

Status Missing(const std::string& at, const std::string& key) {
  return Bad(Join(at, key), "required field is missing");
}

Status ReadString(const json& obj, const std::string& key, const std::string& at, std::string* out,
                  Need need = kOptional) {
  const json* v = Member(obj, key);
  if (!v) return need == kRequired ? Missing(at, key) : OkStatus();
  if (!v->is_string()) return Bad(Join(at, key), "must be a string");
  *out = v->get<std::string>();
  return OkStatus();
}

Status ReadStrings(const json& obj, const std::string& key, const std::string& at,
                   std::vector<std::string>* out) {
  const json* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->is_array()) return Bad(Join(at, key), "must be an array of strings");
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) return Bad(Join(at, key) + "[" + std::to_string(i) + "]", "must be a string");
    out->push_back((*v)[i].get<std::string>());
  }
  return OkStatus();
}

Status ReadStringMap(const json& obj, const std::string& key, const std::string& at,
                     std::map<std::string, std::string>* out) {
  const json* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->is_object()) return Bad(Join(at, key), "must be an object with string values");
  for (const auto& [k, value] : v->items()) {
    if (!value.is_string()) return Bad(Join(at, key) + "[" + Quote(k) + "]", "must be a string");
    (*out)[k] = value.get<std::string>();
  }
  return OkStatus();
}

StatusOr<Digest> ParseDigestAt(const std::string& s, const std::string& at) {
  auto d = Digest::Parse(s);
  if (!d.ok()) return Bad(at, d.status().message());
  return *d;
}

// schemaVersion must be the integer 2 (nlohmann holds non-negative integers
// as unsigned).
bool IsTwo(const json* v) { return v && v->is_number_unsigned() && v->get<uint64_t>() == 2; }

Status CheckSchemaVersion(const json& j) {
  const json* v = Member(j, "schemaVersion");
  if (!v) return Missing("", "schemaVersion");
  if (v->is_number_unsigned() && v->get<uint64_t>() == 1) {
    return Unsupported("Docker schema 1 manifests are not supported");
  }
  if (!IsTwo(v)) return Bad("schemaVersion", "must be 2");
  return OkStatus();
}

StatusOr<Platform> DecodePlatform(const json& j, const std::string& at) {
  if (!j.is_object()) return Bad(at, "must be an object");
  Platform p;
  RETURN_IF_ERROR(ReadString(j, "architecture", at, &p.architecture, kRequired));
  RETURN_IF_ERROR(ReadString(j, "os", at, &p.os, kRequired));
  RETURN_IF_ERROR(ReadString(j, "variant", at, &p.variant));
  return p;
}

StatusOr<Descriptor> DecodeDescriptor(const json& j, const std::string& at) {
  if (!j.is_object()) return Bad(at, "must be an object");
  Descriptor d;
  RETURN_IF_ERROR(ReadString(j, "mediaType", at, &d.media_type, kRequired));
  if (!ValidMediaType(d.media_type)) {
    return Bad(Join(at, "mediaType"), "invalid media type " + Quote(d.media_type));
  }
  std::string digest;
  RETURN_IF_ERROR(ReadString(j, "digest", at, &digest, kRequired));
  ASSIGN_OR_RETURN(d.digest, ParseDigestAt(digest, Join(at, "digest")));
  const json* size = Member(j, "size");
  if (!size) return Missing(at, "size");
  // The spec's size is an int64: refuse negative, fractional and huge.
  bool ok = size->is_number_unsigned() &&
            size->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (!ok) return Bad(Join(at, "size"), "must be an integer from 0 to 2^63-1");
  d.size = size->get<uint64_t>();
  RETURN_IF_ERROR(ReadStringMap(j, "annotations", at, &d.annotations));
  if (const json* p = Member(j, "platform")) {
    ASSIGN_OR_RETURN(d.platform, DecodePlatform(*p, Join(at, "platform")));
  }
  return d;
}

Status ReadDescriptors(const json& j, const std::string& key, std::vector<Descriptor>* out) {
  const json* v = Member(j, key);
  if (!v) return Missing("", key);
  if (!v->is_array()) return Bad(key, "must be an array");
  for (size_t i = 0; i < v->size(); ++i) {
    ASSIGN_OR_RETURN(Descriptor d, DecodeDescriptor((*v)[i], key + "[" + std::to_string(i) + "]"));
    out->push_back(std::move(d));
  }
  return OkStatus();
}

StatusOr<Manifest> DecodeManifest(const json& j) {
  Manifest m;
  RETURN_IF_ERROR(CheckSchemaVersion(j));
  RETURN_IF_ERROR(ReadString(j, "mediaType", "", &m.media_type));
  if (m.media_type.empty()) m.media_type = media::kOciManifest;
  if (!IsManifestType(m.media_type)) {
    return Unsupported(OneLine("mediaType " + Quote(m.media_type) + " is not an image manifest"));
  }
  const json* config = Member(j, "config");
  if (!config) return Missing("", "config");
  ASSIGN_OR_RETURN(m.config, DecodeDescriptor(*config, "config"));
  RETURN_IF_ERROR(ReadDescriptors(j, "layers", &m.layers));
  RETURN_IF_ERROR(ReadStringMap(j, "annotations", "", &m.annotations));
  return m;
}

StatusOr<Index> DecodeIndex(const json& j) {
  Index index;
  RETURN_IF_ERROR(CheckSchemaVersion(j));
  RETURN_IF_ERROR(ReadString(j, "mediaType", "", &index.media_type));
  if (index.media_type.empty()) index.media_type = media::kOciIndex;
  if (!IsIndexType(index.media_type)) {
    return Unsupported(OneLine("mediaType " + Quote(index.media_type) + " is not an image index"));
  }
  RETURN_IF_ERROR(ReadDescriptors(j, "manifests", &index.manifests));
  RETURN_IF_ERROR(ReadStringMap(j, "annotations", "", &index.annotations));
  return index;
}

StatusOr<ImageConfig> DecodeConfig(const json& j) {
  ImageConfig c;
  RETURN_IF_ERROR(ReadString(j, "architecture", "", &c.architecture, kRequired));
  RETURN_IF_ERROR(ReadString(j, "os", "", &c.os, kRequired));
  RETURN_IF_ERROR(ReadString(j, "variant", "", &c.variant));
  RETURN_IF_ERROR(ReadString(j, "created", "", &c.created));
  if (const json* cfg = Member(j, "config")) {
    if (!cfg->is_object()) return Bad("config", "must be an object");
    RETURN_IF_ERROR(ReadStrings(*cfg, "Env", "config", &c.env));
    RETURN_IF_ERROR(ReadStrings(*cfg, "Entrypoint", "config", &c.entrypoint));
    RETURN_IF_ERROR(ReadStrings(*cfg, "Cmd", "config", &c.cmd));
    RETURN_IF_ERROR(ReadString(*cfg, "User", "config", &c.user));
    RETURN_IF_ERROR(ReadStringMap(*cfg, "Labels", "config", &c.labels));
  }
  const json* rootfs = Member(j, "rootfs");
  if (!rootfs) return Missing("", "rootfs");
  if (!rootfs->is_object()) return Bad("rootfs", "must be an object");
  std::string type;
  RETURN_IF_ERROR(ReadString(*rootfs, "type", "rootfs", &type, kRequired));
  if (type != "layers") return Bad("rootfs.type", "must be \"layers\", not " + Quote(type));
  // Docker omits diff_ids for an image without layers.
  std::vector<std::string> diff_ids;
  RETURN_IF_ERROR(ReadStrings(*rootfs, "diff_ids", "rootfs", &diff_ids));
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    ASSIGN_OR_RETURN(Digest d, ParseDigestAt(diff_ids[i], "rootfs.diff_ids[" + std::to_string(i) + "]"));
    c.diff_ids.push_back(d);
  }
  if (const json* history = Member(j, "history")) {
    if (!history->is_array()) return Bad("history", "must be an array");
    for (size_t i = 0; i < history->size(); ++i) {
      const json& e = (*history)[i];
      std::string at = "history[" + std::to_string(i) + "]";
      if (!e.is_object()) return Bad(at, "must be an object");
      ImageConfig::History h;
      RETURN_IF_ERROR(ReadString(e, "created", at, &h.created));
      RETURN_IF_ERROR(ReadString(e, "created_by", at, &h.created_by));
      RETURN_IF_ERROR(ReadString(e, "comment", at, &h.comment));
      if (const json* empty = Member(e, "empty_layer")) {
        if (!empty->is_boolean()) return Bad(Join(at, "empty_layer"), "must be true or false");
        h.empty_layer = empty->get<bool>();
      }
      c.history.push_back(std::move(h));
    }
  }
  return c;
}

StatusOr<std::string> Sniff(const json& j) {
  if (const json* mt = Member(j, "mediaType")) {
    if (!mt->is_string()) return Bad("mediaType", "must be a string");
    std::string s = mt->get<std::string>();
    if (!ValidMediaType(s)) return Bad("mediaType", "invalid media type " + Quote(s));
    return s;
  }
  RETURN_IF_ERROR(CheckSchemaVersion(j));
  if (Member(j, "manifests")) return std::string(media::kOciIndex);
  if (Member(j, "config")) return std::string(media::kOciManifest);
  return Bad("", "cannot tell the media type: no mediaType, config or manifests");
}

// Parses `text` as a JSON object and runs `decode` on it; errors start with
// `what`. Catches whatever nlohmann throws.
template <typename T>
StatusOr<T> Decode(std::string_view text, const char* what, StatusOr<T> (*decode)(const json&)) {
  try {
    auto j = ParseObject(text);
    if (!j.ok()) return j.status().Annotate(what);
    auto v = decode(*j);
    if (!v.ok()) return v.status().Annotate(what);
    return v;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string(what) + ": " + JsonError(e));
  }
}

json EncodePlatform(const Platform& p) {
  json j = {{"architecture", p.architecture}, {"os", p.os}};
  if (!p.variant.empty()) j["variant"] = p.variant;
  return j;
}

json EncodeDescriptor(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (d.platform) j["platform"] = EncodePlatform(*d.platform);
  return j;
}

json EncodeDescriptors(const std::vector<Descriptor>& ds) {
  json j = json::array();
  for (const auto& d : ds) j.push_back(EncodeDescriptor(d));
  return j;
}

// Compact, keys sorted (nlohmann::json keeps objects in a std::map); invalid
// UTF-8 becomes U+FFFD instead of throwing.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// uname machine names and common aliases to GOARCH names; may set a variant.
void NormalizeArch(Platform& p) {
  const std::string& a = p.architecture;
  if (a == "x86_64" || a == "x86-64") {
    p.architecture = "amd64";
  } else if (a == "aarch64") {
    p.architecture = "arm64";
  } else if (a == "i386" || a == "i486" || a == "i586" || a == "i686") {
    p.architecture = "386";
  } else if (a == "armv7l" || a == "armv6l" || a == "armv5tel") {
    if (p.variant.empty()) p.variant = "v" + a.substr(4, 1);
    p.architecture = "arm";
  }
}

// arm64 without a variant means v8.
std::string EffectiveVariant(const Platform& p) {
  return p.architecture == "arm64" && p.variant.empty() ? "v8" : p.variant;
}

}  // namespace

StatusOr<Platform> Platform::Parse(std::string_view s) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t slash = s.find('/', start);
    parts.emplace_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  bool ok = parts.size() == 2 || parts.size() == 3;
  for (const auto& part : parts) {
    ok = ok && !part.empty();
    for (char c : part)
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    return InvalidArgument("invalid platform " + Quote(s) +
                           ": expected OS/ARCH or OS/ARCH/VARIANT in lowercase, e.g. linux/arm64/v8");
  }
  Platform p{parts[1], parts[0], parts.size() == 3 ? parts[2] : ""};
  NormalizeArch(p);
  return p;
}

Platform Platform::Host() {
  struct utsname u;
  Platform p{uname(&u) == 0 ? u.machine : "unknown", "linux", ""};
  NormalizeArch(p);
  return p;
}

std::string Platform::str() const { return os + "/" + architecture + (variant.empty() ? "" : "/" + variant); }

bool Platform::Matches(const Platform& candidate) const {
  return os == candidate.os && architecture == candidate.architecture &&
         (variant.empty() || EffectiveVariant(*this) == EffectiveVariant(candidate));
}

bool IsManifestType(std::string_view t) { return t == media::kOciManifest || t == media::kDockerManifest; }
bool IsIndexType(std::string_view t) { return t == media::kOciIndex || t == media::kDockerManifestList; }

StatusOr<Manifest> ParseManifest(std::string_view text) { return Decode(text, "manifest", DecodeManifest); }
StatusOr<Index> ParseIndex(std::string_view text) { return Decode(text, "index", DecodeIndex); }
StatusOr<ImageConfig> ParseImageConfig(std::string_view text) { return Decode(text, "config", DecodeConfig); }
StatusOr<Descriptor> ParseDescriptor(std::string_view text) {
  return Decode<Descriptor>(text, "descriptor", [](const json& j) { return DecodeDescriptor(j, ""); });
}
std::string EncodeDescriptorJson(const Descriptor& d) { return Dump(EncodeDescriptor(d)); }
StatusOr<std::string> SniffMediaType(std::string_view text) { return Decode(text, "manifest", Sniff); }

std::string EncodeManifest(const Manifest& m) {
  json j = {{"schemaVersion", 2},
            {"mediaType", media::kOciManifest},
            {"config", EncodeDescriptor(m.config)},
            {"layers", EncodeDescriptors(m.layers)}};
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  return Dump(j);
}

std::string EncodeIndex(const Index& index) {
  json j = {{"schemaVersion", 2},
            {"mediaType", media::kOciIndex},
            {"manifests", EncodeDescriptors(index.manifests)}};
  if (!index.annotations.empty()) j["annotations"] = index.annotations;
  return Dump(j);
}

std::string EncodeImageConfig(const ImageConfig& c) {
  json config = json::object();
  if (!c.env.empty()) config["Env"] = c.env;
  if (!c.entrypoint.empty()) config["Entrypoint"] = c.entrypoint;
  if (!c.cmd.empty()) config["Cmd"] = c.cmd;
  if (!c.user.empty()) config["User"] = c.user;
  if (!c.labels.empty()) config["Labels"] = c.labels;
  json diff_ids = json::array();
  for (const auto& d : c.diff_ids) diff_ids.push_back(d.str());
  json j = {{"architecture", c.architecture},
            {"os", c.os},
            {"config", config},
            {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  if (!c.variant.empty()) j["variant"] = c.variant;
  if (!c.created.empty()) j["created"] = c.created;
  if (!c.history.empty()) {
    json history = json::array();
    for (const auto& h : c.history) {
      json e = json::object();
      if (!h.created.empty()) e["created"] = h.created;
      if (!h.created_by.empty()) e["created_by"] = h.created_by;
      if (!h.comment.empty()) e["comment"] = h.comment;
      if (h.empty_layer) e["empty_layer"] = true;
      history.push_back(e);
    }
    j["history"] = history;
  }
  return Dump(j);
}

Status CheckManifestBudget(size_t count, uint64_t bytes) {
  if (count > kMaxManifestsPerOperation) {
    return InvalidArgument("the image names more than " + std::to_string(kMaxManifestsPerOperation) +
                           " distinct manifests and indexes (the limit per operation)");
  }
  if (bytes > kMaxManifestBytesPerOperation) {
    return InvalidArgument("the image's manifests and indexes hold more than " +
                           std::to_string(kMaxManifestBytesPerOperation >> 20) + " MiB (the limit per operation)");
  }
  return OkStatus();
}

Status CheckPlatform(const Platform& have, const Platform& want) {
  if (want.Matches(have)) return OkStatus();
  return NotFound("no image for platform " + want.str() + " (the image is for " + Quote(have.str()) + ")");
}

StatusOr<Descriptor> SelectPlatform(const Index& index, const Platform& want) {
  std::vector<std::string> available;
  std::set<std::string> seen;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    if (want.Matches(*d.platform)) return d;
    if (seen.insert(d.platform->str()).second) available.push_back(d.platform->str());
  }
  std::string list;
  for (const auto& p : available) list += (list.empty() ? "" : ", ") + Quote(p);
  return NotFound("no image for platform " + want.str() +
                  " in the index (it has: " + (list.empty() ? "no platforms" : list) + ")");
}

StatusOr<uint64_t> ParseSizeAnnotation(std::string_view key, std::string_view value) {
  uint64_t n = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, n);
  if (value.empty() || value[0] < '0' || value[0] > '9' || ec != std::errc() || ptr != end) {
    return InvalidArgument("annotation " + std::string(key) + " = " + Quote(value) +
                           ": expected a size in bytes (decimal digits)");
  }
  return n;
}

Status CheckDiskLimits(const Manifest& m, uint64_t max_disk_size) {
  const std::string limit = " bytes, over the disk size limit of " + std::to_string(max_disk_size) +
                            " bytes (--max-disk-size)";
  for (const auto& l : m.layers) {
    if (l.size > max_disk_size) return InvalidArgument("layer " + l.digest.str() + " is " + std::to_string(l.size) + limit);
    auto vs = l.annotations.find(annotation::kDiskVirtualSize);
    if (vs == l.annotations.end()) continue;
    ASSIGN_OR_RETURN(uint64_t size, ParseSizeAnnotation(vs->first, vs->second));
    if (size > max_disk_size) {
      auto path = l.annotations.find(annotation::kDiskPath);
      std::string name = path == l.annotations.end() ? l.digest.str() : Quote(path->second);
      return InvalidArgument("disk " + name + " declares a virtual size of " + std::to_string(size) + limit);
    }
  }
  return OkStatus();
}

}  // namespace regdisk::oci
