#include "resolve/store.h"

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "cache/node_cache.h"
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

std::string ServeConfig(const RegistryFlags& flags, const std::string& auth_file) {
  nlohmann::json registry = {{"creds", flags.creds},           {"tlsVerify", flags.tls_verify},
                             {"certDir", flags.cert_dir},      {"retryTimes", flags.retry_times},
                             {"stallTimeout", flags.stall_timeout}, {"parallel", flags.parallel}};
  return nlohmann::json({{"registry", registry}, {"authFile", auth_file}, {"fillRate", 0}}).dump();
}

}  // namespace regdisk::resolve
