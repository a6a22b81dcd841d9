#include "cli/common.h"

#include <cstdio>
#include <cstdlib>

#include "registry/auth_file.h"
#include "registry/repository.h"
#include "util/fs.h"

namespace regdisk::cli {

StatusOr<StoreImage> OpenImage(const Globals& g, const std::string& name, bool create) {
  ASSIGN_OR_RETURN(oci::ImageLocation loc, oci::ImageLocation::Parse(name));
  std::string root;
  switch (loc.transport) {
    case oci::ImageLocation::Transport::kLocal:
      root = g.store.empty() ? layout::DefaultStorePath() : g.store;
      break;
    case oci::ImageLocation::Transport::kOciLayout:
      root = loc.path;
      break;
    case oci::ImageLocation::Transport::kDocker:
      return Unsupported(name + ": registry images are not supported by this command");
  }
  ASSIGN_OR_RETURN(auto store, layout::Layout::Open(root, create));
  return StoreImage{std::move(loc), std::move(store)};
}

int Fail(const Status& s) {
  std::fprintf(stderr, "regdisk: %s\n", s.message().c_str());
  return 1;
}

}  // namespace regdisk::cli

namespace regdisk::cli {

void RegistryFlags::Add(CLI::App* cmd) {
  cmd->add_option("--creds", creds, "USER:PASSWORD for the registry (default: the auth files, see login)");
  cmd->add_option("--tls-verify", tls_verify,
                  "check TLS certificates; false also allows plain http (default true)")
      ->default_str("true");
  cmd->add_option("--cert-dir", cert_dir, "directory of extra CA certificates (*.crt)");
  cmd->add_option("--retry-times", retry_times, "retries on network errors, 429 and 5xx (default 3)")
      ->check(CLI::Range(0, 20));
  cmd->add_option("--stall-timeout", stall_timeout,
                  "seconds a registry transfer may go without progress (under 1 KiB/s) before it is "
                  "abandoned and retried (default 60)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--parallel", parallel,
                  "connections per blob download, as HTTP Range requests; 1: one stream (default 4)")
      ->check(CLI::Range(1, registry::kMaxParallel));
}

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

StatusOr<std::unique_ptr<oci::Store>> OpenRegistry(const RegistryFlags& f, const oci::Reference& ref,
                                                   const std::string& auth_file) {
  registry::Options o = f.Options();
  if (o.credentials.empty() && !auth_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(auth_file, 1 << 20));
    ASSIGN_OR_RETURN(auto creds, registry::CredentialsFromJson(text, ref.registry, auth_file));
    if (!creds) return NotFound(auth_file + ": no credentials for " + ref.registry);
    o.credentials = creds->user + ":" + creds->password;
  }
  ASSIGN_OR_RETURN(auto repo, registry::Repository::Open(ref, o));
  return std::unique_ptr<oci::Store>(std::move(repo));
}

StatusOr<AnyImage> OpenAny(const Globals& g, const RegistryFlags& f, const std::string& name, bool create) {
  ASSIGN_OR_RETURN(oci::ImageLocation loc, oci::ImageLocation::Parse(name));
  if (loc.transport == oci::ImageLocation::Transport::kDocker) {
    ASSIGN_OR_RETURN(auto store, OpenRegistry(f, loc.ref));
    return AnyImage{std::move(loc), std::move(store)};
  }
  ASSIGN_OR_RETURN(StoreImage img, OpenImage(g, name, create));
  return AnyImage{std::move(img.location), std::move(img.store)};
}

std::string NodeRoot(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("REGDISK_ROOT");
  return env && *env ? env : "/var/lib/regdisk";
}

}  // namespace regdisk::cli
