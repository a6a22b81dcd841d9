#include "lazy/entry.h"

#include <nlohmann/json.hpp>

#include "layer/decompressor.h"
#include "util/fs.h"

namespace regdisk::lazy {
namespace {

using nlohmann::json;

// serve.json nests at most three levels (layer.annotations); a little room.
constexpr int kMaxServeDepth = 8;

int Depth(const json& j) {
  int d = 0;
  if (j.is_structured()) {
    for (const auto& v : j) d = std::max(d, Depth(v));
    ++d;
  }
  return d;
}

}  // namespace

std::string EntryDir(const std::string& root, const std::string& key) { return root + "/disks/" + key; }
std::string KeyLockPath(const std::string& root, const std::string& key) {
  return root + "/locks/disk-" + key + ".lock";
}

std::string EncodeServeConfig(const ServeConfig& c) {
  json registry = json::parse(c.registry, nullptr, /*allow_exceptions=*/false);
  if (!registry.is_object()) registry = json::object();
  json j = {{"layer", json::parse(oci::EncodeDescriptorJson(c.layer))},
            {"diffId", c.diff_id.str()},
            {"image", c.image},
            {"registry", registry},
            {"authFile", c.auth_file},
            {"fillRate", c.fill_rate},
            {"fillDelay", c.fill_delay}};
  if (c.outage_wait != 0) j["outageWait"] = c.outage_wait;
  if (!c.peers.empty()) j["peers"] = c.peers;
  if (!c.peer_self.empty()) j["peerSelf"] = c.peer_self;
  if (c.peer_timeout_ms != 0) j["peerTimeoutMs"] = c.peer_timeout_ms;
  return j.dump(2) + "\n";
}

StatusOr<ServeConfig> ParseServeConfig(std::string_view text) {
  auto bad = [](const std::string& why) { return Corrupt("serve.json: " + why); };
  if (text.size() > kMaxEntryJsonBytes) return bad("larger than " + std::to_string(kMaxEntryJsonBytes) + " bytes");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (Depth(j) > kMaxServeDepth) return bad("nested too deeply");
  ServeConfig c;
  auto str = [&](const char* key, std::string* out, bool required) -> Status {
    auto it = j.find(key);
    if (it == j.end()) return required ? bad(std::string("no \"") + key + "\"") : OkStatus();
    if (!it->is_string()) return bad(std::string("\"") + key + "\" must be a string");
    *out = it->get<std::string>();
    return OkStatus();
  };
  auto layer = j.find("layer");
  if (layer == j.end() || !layer->is_object()) return bad("no \"layer\" object");
  auto desc = oci::ParseDescriptor(layer->dump());
  if (!desc.ok()) return desc.status().Annotate("serve.json");
  c.layer = std::move(*desc);
  std::string diff_id;
  RETURN_IF_ERROR(str("diffId", &diff_id, true));
  auto d = oci::Digest::Parse(diff_id);
  if (!d.ok()) return d.status().Annotate("serve.json: diffId");
  c.diff_id = *d;
  RETURN_IF_ERROR(str("image", &c.image, true));
  RETURN_IF_ERROR(str("authFile", &c.auth_file, false));
  if (auto r = j.find("registry"); r != j.end()) {
    if (!r->is_object()) return bad("\"registry\" must be an object");
    c.registry = r->dump();
  }
  if (auto f = j.find("fillRate"); f != j.end()) {
    if (!f->is_number_unsigned()) return bad("\"fillRate\" must be a whole number of bytes per second");
    c.fill_rate = f->get<uint64_t>();
  }
  if (auto d = j.find("fillDelay"); d != j.end()) {
    if (!d->is_number_unsigned()) return bad("\"fillDelay\" must be a whole number of seconds");
    c.fill_delay = d->get<uint64_t>();
  }
  if (auto w = j.find("outageWait"); w != j.end()) {
    if (!w->is_number_unsigned()) return bad("\"outageWait\" must be a whole number of seconds");
    c.outage_wait = w->get<uint64_t>();
  }
  RETURN_IF_ERROR(str("peers", &c.peers, false));
  if (c.peers.size() > kMaxPeerSpecBytes) {
    return bad("\"peers\" is longer than " + std::to_string(kMaxPeerSpecBytes) + " bytes");
  }
  RETURN_IF_ERROR(str("peerSelf", &c.peer_self, false));
  if (c.peer_self.size() > kMaxPeerAddressBytes) {
    return bad("\"peerSelf\" is longer than " + std::to_string(kMaxPeerAddressBytes) + " bytes");
  }
  if (auto t = j.find("peerTimeoutMs"); t != j.end()) {
    if (!t->is_number_unsigned() || t->get<uint64_t>() == 0 || t->get<uint64_t>() > kMaxPeerTimeoutMs) {
      return bad("\"peerTimeoutMs\" must be a whole number of milliseconds from 1 to " +
                 std::to_string(kMaxPeerTimeoutMs));
    }
    c.peer_timeout_ms = t->get<uint64_t>();
  }
  return c;
}

Status WriteServeConfig(const std::string& entry_dir, const ServeConfig& config) {
  return WriteFileAtomic(entry_dir + "/" + kServeFile, EncodeServeConfig(config), 0600);
}

StatusOr<ServeConfig> ReadServeConfig(const std::string& entry_dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(entry_dir + "/" + kServeFile, kMaxEntryJsonBytes));
  auto c = ParseServeConfig(text);
  if (!c.ok()) return c.status().Annotate(entry_dir);
  return c;
}

StatusOr<layer::DiskIndex> ReadEntryIndex(const std::string& entry_dir, const ServeConfig& config) {
  ASSIGN_OR_RETURN(std::optional<layer::IndexAnchor> anchor, layer::ParseAnchor(config.layer));
  if (!anchor) return InvalidArgument(entry_dir + ": the layer in serve.json is not a v2 disk layer");
  ASSIGN_OR_RETURN(layer::Codec codec, layer::CodecForMediaType(config.layer.media_type));
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(entry_dir + "/" + kIndexFile, layer::kMaxIndexBytes));
  auto index = layer::OpenIndexBytes(*anchor, codec, bytes);
  if (!index.ok()) return index.status().Annotate(entry_dir + "/" + kIndexFile);
  return index;
}

}  // namespace regdisk::lazy
