#include "resolve/store.h"

#include <algorithm>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "cache/node_cache.h"
#include "peer/peer_list.h"
#include "registry/auth_file.h"
#include "registry/repository.h"
#include "util/fs.h"
#include "vm/spec.h"

namespace regdisk::resolve {

namespace {

// The largest auth file read (a pull secret's): auth files hold a few
// entries of a few hundred bytes.
constexpr uint64_t kMaxAuthFileBytes = 1 << 20;

constexpr std::string_view kDockerPrefix = "docker://";

}  // namespace

registry::Options RegistryFlags::Options() const {
  registry::Options o;
  o.credentials = creds;
  o.tls_verify = tls_verify;
  o.cert_dir = cert_dir;
  o.retry_times = retry_times;
  o.stall_timeout = std::chrono::seconds(stall_timeout);
  o.parallel = parallel;
  return o;
}

std::string RegistryFlagsJson(const RegistryFlags& f) {
  nlohmann::json j = {{"creds", f.creds},          {"tlsVerify", f.tls_verify},      {"certDir", f.cert_dir},
                      {"retryTimes", f.retry_times}, {"stallTimeout", f.stall_timeout}, {"parallel", f.parallel}};
  return j.dump();
}

StatusOr<RegistryFlags> ParseRegistryFlagsJson(std::string_view text) {
  auto bad = [](const std::string& why) { return InvalidArgument("registry flags: " + why); };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  RegistryFlags f;
  for (auto& [key, out] : {std::pair{"creds", &f.creds}, std::pair{"certDir", &f.cert_dir}}) {
    if (auto it = j.find(key); it != j.end()) {
      if (!it->is_string()) return bad(std::string(key) + " must be a string");
      *out = it->get<std::string>();
    }
  }
  if (auto it = j.find("tlsVerify"); it != j.end()) {
    if (!it->is_boolean()) return bad("tlsVerify must be true or false");
    f.tls_verify = it->get<bool>();
  }
  struct IntFlag {
    const char* key;
    int* out;
    int min, max;
  };
  for (const IntFlag& n : {IntFlag{"retryTimes", &f.retry_times, 0, kMaxFlagValue},
                           IntFlag{"stallTimeout", &f.stall_timeout, 0, kMaxFlagValue},
                           IntFlag{"parallel", &f.parallel, 1, registry::kMaxParallel}}) {
    if (auto it = j.find(n.key); it != j.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < n.min || it->get<int64_t>() > n.max) {
        return bad(std::string(n.key) + " must be a whole number from " + std::to_string(n.min) + " to " +
                   std::to_string(n.max));
      }
      *n.out = static_cast<int>(it->get<int64_t>());
    }
  }
  return f;
}

std::string LocalStorePath(const std::string& flag) { return flag.empty() ? layout::DefaultStorePath() : flag; }

StatusOr<uint64_t> MaxDiskSize(const std::string& flag) {
  if (flag.empty()) return oci::kDefaultMaxDiskSize;
  auto n = vm::ParseQuantity(flag);
  if (!n.ok()) return n.status().Annotate("--max-disk-size");
  if (*n == 0) return InvalidArgument("--max-disk-size must be more than 0");
  return n;
}

std::string NodeRoot(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("REGDISK_ROOT");
  return env && *env ? env : "/var/lib/regdisk";
}

StatusOr<LayoutImage> OpenLayoutImage(const std::string& store_flag, const std::string& name, bool create) {
  ASSIGN_OR_RETURN(oci::ImageLocation loc, oci::ImageLocation::Parse(name));
  std::string root;
  switch (loc.transport) {
    case oci::ImageLocation::Transport::kLocal:
      root = LocalStorePath(store_flag);
      break;
    case oci::ImageLocation::Transport::kOciLayout:
      root = loc.path;
      break;
    case oci::ImageLocation::Transport::kDocker:
      return Unsupported(name + ": registry images are not supported by this command");
  }
  ASSIGN_OR_RETURN(auto store, layout::Layout::Open(root, create));
  return LayoutImage{std::move(loc), std::move(store)};
}

StatusOr<Image> OpenImage(const std::string& store_flag, const RegistryFlags& flags, const std::string& name,
                          bool create) {
  ASSIGN_OR_RETURN(oci::ImageLocation loc, oci::ImageLocation::Parse(name));
  if (loc.transport == oci::ImageLocation::Transport::kDocker) {
    ASSIGN_OR_RETURN(auto store, OpenRegistry(flags, loc.ref));
    return Image{std::move(loc), std::move(store)};
  }
  ASSIGN_OR_RETURN(LayoutImage img, OpenLayoutImage(store_flag, name, create));
  return Image{std::move(img.location), std::move(img.store)};
}

StatusOr<std::unique_ptr<oci::Store>> OpenRegistry(const RegistryFlags& flags, const oci::Reference& ref,
                                                   const std::string& auth_file) {
  registry::Options o = flags.Options();
  if (o.credentials.empty() && !auth_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(auth_file, kMaxAuthFileBytes));
    ASSIGN_OR_RETURN(auto creds, registry::CredentialsFromJson(text, ref.registry, auth_file));
    if (!creds) return NotFound(auth_file + ": no credentials for " + ref.registry);
    o.credentials = creds->user + ":" + creds->password;
  }
  ASSIGN_OR_RETURN(auto repo, registry::Repository::Open(ref, o));
  return std::unique_ptr<oci::Store>(std::move(repo));
}

StatusOr<std::unique_ptr<oci::Store>> OpenServeSource(const std::string& image, const std::string& registry_json,
                                                      const std::string& auth_file) {
  if (image.starts_with("oci:/")) {
    std::string path = image.substr(4, image.rfind('@') == std::string::npos ? std::string::npos : image.rfind('@') - 4);
    ASSIGN_OR_RETURN(auto layout, layout::Layout::Open(path, false));
    return std::unique_ptr<oci::Store>(std::move(layout));
  }
  if (!image.starts_with(kDockerPrefix)) {
    return InvalidArgument("image " + Quote(image) + ": expected docker://REF or oci:/PATH");
  }
  ASSIGN_OR_RETURN(oci::Reference ref, oci::Reference::Parse(image.substr(kDockerPrefix.size())));
  ASSIGN_OR_RETURN(RegistryFlags flags, ParseRegistryFlagsJson(registry_json));
  return OpenRegistry(flags, ref, auth_file);
}

StatusOr<std::string> PullSecretFile(const std::string& root, const std::string& secret) {
  if (secret.empty()) return std::string();
  if (!cache::CheckVmName(secret).ok()) {
    return InvalidArgument("imagePullSecret " + Quote(secret) + " is not a valid name");
  }
  std::string file = root + "/secrets/" + secret + ".json";
  if (!PathExists(file)) return NotFound("imagePullSecret \"" + secret + "\": no auth file " + file);
  return file;
}

std::string RegistryImageName(const std::string& name) {
  return name.starts_with(kDockerPrefix) ? name.substr(kDockerPrefix.size()) : name;
}

StatusOr<lazy::ServeConfig> ServeSettings(const RegistryFlags& flags, const FillFlags& fill,
                                          const std::string& auth_file) {
  lazy::ServeConfig c;
  c.fill_rate = kDefaultFillRate;
  if (!fill.rate.empty()) {
    auto n = vm::ParseQuantity(fill.rate);
    if (!n.ok()) return n.status().Annotate("--fill-rate");
    c.fill_rate = *n;
  }
  if (fill.delay < 0) return InvalidArgument("--fill-delay must be 0 or more seconds");
  c.fill_delay = static_cast<uint64_t>(fill.delay);
  RegistryFlags kept = flags;
  kept.creds.clear();  // no secret is written to the node's files
  c.registry = RegistryFlagsJson(kept);
  c.auth_file = auth_file;
  RETURN_IF_ERROR(peer::CheckPeerSpec(fill.peers).Annotate("--peers"));
  c.peers = fill.peers;
  if (!fill.peer_self.empty()) RETURN_IF_ERROR(peer::ParsePeerAddr(fill.peer_self).status().Annotate("--peer-self"));
  c.peer_self = fill.peer_self;
  if (fill.peer_timeout < 0 || static_cast<uint64_t>(fill.peer_timeout) > lazy::kMaxPeerTimeoutMs) {
    return InvalidArgument("--peer-timeout must be 1 to " + std::to_string(lazy::kMaxPeerTimeoutMs) +
                           " milliseconds");
  }
  c.peer_timeout_ms = static_cast<uint64_t>(fill.peer_timeout);
  return c;
}

}  // namespace regdisk::resolve
