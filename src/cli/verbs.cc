#include "cli/verbs.h"

#include <cassert>
#include <cstdio>
#include <map>
#include <string_view>

#include "peer/client.h"
#include "peer/peer_list.h"

namespace regdisk::cli {
namespace {

std::string Footer(const Verb& v) {
  std::string out = v.examples.size() == 1 ? "Example:\n" : "Examples:\n";
  for (const auto& e : v.examples) out += "  " + e + "\n";
  if (!v.notes.empty()) out += "\n" + v.notes;
  return out;
}

const char* GroupSummary(std::string_view name) {
  for (const Group& group : kGroups) {
    if (name == group.name) return group.summary;
  }
  assert(!"a verb names a group that is not in kGroups");
  return "";
}

}  // namespace

void AddVerbs(CLI::App& app, const std::vector<Verb>& verbs, const Globals& g, Action* chosen) {
  std::map<std::string, CLI::App*> groups;
  for (const Verb& v : verbs) {
    assert(!v.examples.empty() && "every verb's help teaches with an example");
    CLI::App* parent = &app;
    std::string name = v.name;
    if (auto space = name.find(' '); space != std::string::npos) {
      std::string group = name.substr(0, space);
      name = name.substr(space + 1);
      CLI::App*& made = groups[group];
      if (!made) made = app.add_subcommand(group, GroupSummary(group))->require_subcommand(1);
      parent = made;
    }
    CLI::App* cmd = parent->add_subcommand(name, v.summary)->footer(Footer(v));
    Action action = v.setup(cmd, g);
    cmd->callback([chosen, action] { *chosen = action; });
  }
}

void AddRootFlag(CLI::App* cmd, std::string& root) {
  cmd->add_option("--root", root, "node state root (default $REGDISK_ROOT or /var/lib/regdisk)");
}

void AddMaxDiskSizeFlag(CLI::App* cmd, std::string& value) {
  cmd->add_option("--max-disk-size", value,
                  "largest disk accepted, its size or qcow2 virtual size (e.g. 200Gi; default 64Gi)");
}

void AddFillFlags(CLI::App* cmd, resolve::FillFlags& flags) {
  cmd->add_option("--fill-rate", flags.rate,
                  "bytes/s the background fill of a lazily served disk takes (e.g. 100Mi; 0: unlimited; "
                  "default 32Mi)");
  cmd->add_option("--fill-delay", flags.delay,
                  "seconds the VM's boot has the registry to itself before the background fill begins "
                  "(default 60)");
  // Checked as the command line is parsed, before anything is fetched.
  auto check = [](Status (*f)(std::string_view)) {
    return [f](const std::string& v) {
      Status s = f(v);
      return s.ok() ? std::string() : s.message();
    };
  };
  cmd->add_option("--peers", flags.peers,
                  "other nodes' peer servers to take verified chunks from before the registry: "
                  "HOST:PORT, @/FILE, dns:NAME:PORT or srv:NAME, comma-separated")
      ->check(check(peer::CheckPeerSpec));
  cmd->add_option("--peer-self", flags.peer_self,
                  "HOST:PORT of this node's own peer server (in the --peers list, never asked)")
      ->check(check([](std::string_view v) { return peer::ParsePeerAddr(v).status(); }));
  cmd->add_option("--peer-timeout", flags.peer_timeout,
                  "milliseconds a peer has to answer one chunk before the next is asked (default 2000)")
      ->check(CLI::Range(1, static_cast<int>(lazy::kMaxPeerTimeoutMs)));
}

StatusOr<std::shared_ptr<lazy::PeerChunks>> OpenPeers(const lazy::ServeConfig& serve) {
  return peer::OpenServePeers(serve, [](const std::string& line) { std::fprintf(stderr, "regdisk: %s\n", line.c_str()); });
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
  cmd->add_option("--parallel", flags.parallel,
                  "connections per blob download, as HTTP Range requests; 1: one stream (default 4)")
      ->check(CLI::Range(1, registry::kMaxParallel));
}

}  // namespace regdisk::cli
