#include "registry/repository.h"

#include <nlohmann/json.hpp>

#include "oci/media_types.h"
#include "registry/blob_io.h"
#include "registry/connection.h"
#include "registry/errors.h"

namespace regdisk::registry {
namespace {

// Pages of a tag list followed at most (a loop guard).
constexpr int kMaxTagPages = 10000;

// Distribution's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. Checked
// because the tag becomes part of a URL path.
bool IsValidTag(const std::string& tag) {
  if (tag.empty() || tag.size() > 128 || tag[0] == '.' || tag[0] == '-') return false;
  for (char c : tag) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool IsValidRepositoryName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.back() == '/') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return name.find("..") == std::string::npos && name.find("//") == std::string::npos;
}

// "application/vnd.oci.image.manifest.v1+json; charset=utf-8" -> the type.
std::string MediaTypeOf(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

// The target of a Link header's rel="next", or "".
std::string NextLink(const std::string& link) {
  if (link.find("rel=\"next\"") == std::string::npos && link.find("rel=next") == std::string::npos) return "";
  size_t open = link.find('<'), close = link.find('>');
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  return link.substr(open + 1, close - open - 1);
}

}  // namespace

StatusOr<std::unique_ptr<Repository>> Repository::Open(const oci::Reference& ref, const Options& options) {
  if (!IsValidRepositoryName(ref.repository)) {
    return InvalidArgument("invalid repository name \"" + OneLine(ref.repository, 100) + "\"");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Registry> registry, Registry::Connect(ref.registry, options));
  return std::make_unique<Repository>(std::move(registry), ref.repository);
}

Repository::Repository(std::shared_ptr<Registry> registry, std::string name)
    : registry_(std::move(registry)), name_(std::move(name)) {}

std::vector<std::string> Repository::Scopes(bool push) {
  if (push) pushing_ = true;
  return {"repository:" + name_ + (pushing_ ? ":pull,push" : ":pull")};
}

Call Repository::MakeCall(std::string method, std::string path, bool push, std::string what) {
  return Call{.method = std::move(method), .url = "/v2/" + name_ + path, .scopes = Scopes(push),
              .repository = name_, .what = std::move(what)};
}

StatusOr<bool> Repository::HasBlob(const oci::Digest& digest) {
  return BlobExists(BlobTarget{registry_, name_, Scopes(false)}, digest);
}

StatusOr<std::unique_ptr<oci::BlobReader>> Repository::OpenBlob(const oci::Digest& digest) {
  return OpenBlobReader(BlobTarget{registry_, name_, Scopes(false)}, digest);
}

Status Repository::ReadAt(const oci::Digest& digest, uint64_t offset, char* buf, size_t len) {
  return ReadBlobRange(BlobTarget{registry_, name_, Scopes(false)}, digest, offset, buf, len);
}

StatusOr<std::unique_ptr<oci::BlobWriter>> Repository::CreateBlob() {
  return NewBlobWriter(BlobTarget{registry_, name_, Scopes(true)});
}

Status Repository::DeleteBlob(const oci::Digest& digest) {
  Call call = MakeCall("DELETE", "/blobs/" + digest.str(), false, "deleting blob " + digest.str());
  call.scopes = {DeleteScope(name_)};
  ASSIGN_OR_RETURN(http::Response r, registry_->Do(call));
  if (r.status == 202 || r.status == 200 || r.status == 204) return OkStatus();
  return registry_->ResponseError(call, r);
}

StatusOr<oci::RawManifest> Repository::GetManifest(const std::string& ref) {
  std::optional<oci::Digest> want;
  if (ref.starts_with("sha256:")) {
    ASSIGN_OR_RETURN(want, oci::Digest::Parse(ref));
  } else if (!IsValidTag(ref)) {
    return InvalidArgument("invalid tag \"" + OneLine(ref, 140) + "\"");
  }
  Call call = MakeCall("GET", "/manifests/" + ref, false, "manifest \"" + ref + "\"");
  call.headers.push_back(std::string("Accept: ") + oci::media::kOciManifest + ", " + oci::media::kOciIndex +
                         ", " + oci::media::kDockerManifest + ", " + oci::media::kDockerManifestList);
  call.follow_redirects = true;
  call.max_body = oci::kMaxManifestBytes;
  ASSIGN_OR_RETURN(http::Response r, registry_->Do(call));
  if (r.status != 200) return registry_->ResponseError(call, r);

  oci::RawManifest m;
  m.bytes = std::move(r.body);
  m.descriptor.digest = oci::Digest::Of(m.bytes);
  m.descriptor.size = m.bytes.size();
  std::string prefix = Prefix(registry_->host(), name_) + call.what + ": ";
  if (want && *want != m.descriptor.digest) {
    return Corrupt(prefix + "the registry sent content with digest " + m.descriptor.digest.str());
  }
  if (std::string header = r.Header("docker-content-digest"); !header.empty()) {
    auto said = oci::Digest::Parse(header);
    if (!said.ok() || *said != m.descriptor.digest) {
      return Corrupt(prefix + "Docker-Content-Digest " + OneLine(header, 80) + " does not match the content (" +
                     m.descriptor.digest.str() + ")");
    }
  }
  m.descriptor.media_type = MediaTypeOf(r.Header("content-type"));
  if (!oci::IsManifestType(m.descriptor.media_type) && !oci::IsIndexType(m.descriptor.media_type)) {
    auto sniffed = oci::SniffMediaType(m.bytes);
    if (!sniffed.ok()) return sniffed.status().Annotate(prefix.substr(0, prefix.size() - 2));
    m.descriptor.media_type = *sniffed;
  }
  return m;
}

Status Repository::PutManifest(const oci::RawManifest& m, const std::string& tag) {
  if (!tag.empty() && !IsValidTag(tag)) return InvalidArgument("invalid tag \"" + OneLine(tag, 140) + "\"");
  std::string prefix = Prefix(registry_->host(), name_);
  if (oci::Digest::Of(m.bytes) != m.descriptor.digest) {
    return InvalidArgument(prefix + "manifest " + m.descriptor.digest.str() + " does not match its bytes");
  }
  std::string ref = tag.empty() ? m.descriptor.digest.str() : tag;
  std::string media_type = m.descriptor.media_type;
  if (media_type.empty()) {
    ASSIGN_OR_RETURN(media_type, oci::SniffMediaType(m.bytes));
  }
  Call call = MakeCall("PUT", "/manifests/" + ref, true, "putting manifest \"" + ref + "\"");
  call.headers.push_back("Content-Type: " + media_type);
  call.body = m.bytes;
  ASSIGN_OR_RETURN(http::Response r, registry_->Do(call));
  if (r.status != 201 && r.status != 200) return registry_->ResponseError(call, r);
  if (std::string header = r.Header("docker-content-digest"); !header.empty() && header != m.descriptor.digest.str()) {
    return Corrupt(prefix + call.what + ": the registry stored digest " + OneLine(header, 80) + ", not " +
                   m.descriptor.digest.str());
  }
  return OkStatus();
}

StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> Repository::ListTags() {
  std::vector<std::pair<std::string, oci::Descriptor>> out;
  Call call = MakeCall("GET", "/tags/list", false, "listing tags");
  call.max_body = oci::kMaxManifestBytes;
  for (int page = 0; page < kMaxTagPages; ++page) {
    ASSIGN_OR_RETURN(http::Response r, registry_->Do(call));
    if (r.status != 200) return registry_->ResponseError(call, r);
    using nlohmann::json;
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    auto tags = j.is_object() ? j.find("tags") : j.end();
    if (j.is_discarded() || !j.is_object() || (tags != j.end() && !tags->is_array() && !tags->is_null())) {
      return InvalidArgument(Prefix(registry_->host(), name_) + "the tag list is not valid JSON");
    }
    if (tags != j.end() && tags->is_array()) {
      for (const json& t : *tags) {
        if (t.is_string()) out.emplace_back(t.get<std::string>(), oci::Descriptor{});
      }
    }
    std::string next = NextLink(r.Header("link"));
    if (next.empty()) return out;
    // Only follow pages on this registry (the URL carries our token).
    std::string url = registry_->Resolve(next);
    if (!url.starts_with(registry_->base_url() + "/")) return out;
    call.url = url;
  }
  return InvalidArgument(Prefix(registry_->host(), name_) + "the tag list has over " +
                         std::to_string(kMaxTagPages) + " pages");
}

oci::StoreId Repository::id() const { return {"docker://" + registry_->host(), name_}; }

bool Repository::TryReuseBlob(const oci::Descriptor& desc, const oci::StoreId& source) {
  if (source.domain != id().domain || source.repository == name_) return false;
  return MountBlob(desc.digest, source.repository).ok();
}

Status Repository::MountBlob(const oci::Digest& digest, const std::string& from) {
  if (!IsValidRepositoryName(from)) return InvalidArgument("invalid repository name \"" + OneLine(from, 100) + "\"");
  Call call = MakeCall("POST", "/blobs/uploads/?mount=" + http::Escape(digest.str()) + "&from=" + http::Escape(from),
                       true, "mounting blob " + digest.str() + " from " + from);
  call.scopes.push_back("repository:" + from + ":pull");
  ASSIGN_OR_RETURN(http::Response r, registry_->Do(call));
  if (r.status == 201) return OkStatus();
  if (r.status != 202) return registry_->ResponseError(call, r);
  // The registry opened an ordinary upload instead: cancel it.
  if (std::string location = r.Header("location"); !location.empty()) {
    Call cancel = call;
    cancel.method = "DELETE";
    cancel.url = registry_->Resolve(location);
    cancel.scopes = {DeleteScope(name_)};
    cancel.retry = false;
    (void)registry_->Do(cancel);
  }
  return NotFound(Prefix(registry_->host(), name_) + call.what + ": not mounted (the registry lacks the blob there, or it is not readable)");
}

}  // namespace regdisk::registry
