#include "cli/common.h"

#include <cstdio>

namespace regdisk::cli {

int Fail(const Status& s) {
  std::fprintf(stderr, "regdisk: %s\n", s.message().c_str());
  return 1;
}

void AddRegistryFlags(CLI::App* cmd, resolve::RegistryFlags& flags) {
  cmd->add_option("--creds", flags.creds, "USER:PASSWORD for the registry (default: the auth files, see login)");
  cmd->add_option("--tls-verify", flags.tls_verify,
                  "check TLS certificates; false also allows plain http (default true)")
      ->default_str("true");
  cmd->add_option("--cert-dir", flags.cert_dir, "directory of extra CA certificates (*.crt)");
  cmd->add_option("--retry-times", flags.retry_times, "retries on network errors, 429 and 5xx (default 3)")
      ->check(CLI::Range(0, 20));
  cmd->add_option("--stall-timeout", flags.stall_timeout,
                  "seconds a registry transfer may go without progress (under 1 KiB/s) before it is "
                  "abandoned and retried (default 60)")
      ->check(CLI::Range(1, 3600));
}

}  // namespace regdisk::cli
