#include "cluster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace regdisk::testing {
namespace {

constexpr char kNetsim[] = REGDISK_SOURCE_DIR "/tests/tools/netsim";
// netsim's exit code when namespaces cannot be made here.
constexpr int kNetsimCannot = 3;
// Set (to anything): the loopback variant even where namespaces can be made.
constexpr char kNoNamespaces[] = "REGDISK_TEST_NO_NETNS";
// In namespaces every node has an address of its own: the registry and the
// peer servers use their usual ports (peer/protocol.h's kDefaultPort).
constexpr int kRegistryPort = 5000;
constexpr int kPeerPort = 7480;

// The access log's lines (combined format), as "METHOD PATH STATUS BYTES".
std::vector<std::string> AccessLines(const std::string& log) {
  std::vector<std::string> out;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    size_t open = line.find("] \"");
    size_t close = open == std::string::npos ? open : line.find("\" ", open + 3);
    if (close == std::string::npos) continue;
    std::istringstream request(line.substr(open + 3, close - open - 3)), answer(line.substr(close + 2));
    std::string method, path, status, bytes;
    if (!(request >> method >> path) || !(answer >> status >> bytes)) continue;
    if (bytes.find_first_not_of("0123456789") != std::string::npos) bytes = "0";  // "-": none
    out.push_back(method + " " + path + " " + status + " " + bytes);
  }
  return out;
}

}  // namespace

Cluster::Cluster(int nodes) : nodes_(nodes), name_(std::to_string(::getpid())) {
  for (int k = 1; k <= nodes; ++k) {
    if (!MakeDirs(Root(k)).ok()) error_ = "cannot create " + Root(k);
  }
  ProcessResult up;
  if (std::getenv(kNoNamespaces)) {
    up.exit_code = kNetsimCannot;
    up.err = std::string(kNoNamespaces) + " is set";
  } else {
    RunCmd({kNetsim, "down", name_});  // a crashed run's, whose pid this process now has
    up = RunCmd({kNetsim, "up", name_, std::to_string(nodes)});
  }
  if (up.exit_code == 0) {
    registry_ = std::make_unique<RegistryServer>(std::vector<std::string>{kNetsim, "exec", name_, "reg"},
                                                 "10.254.0.1", kRegistryPort);
  } else {
    namespace_error_ = up.exit_code == kNetsimCannot ? up.err : "netsim up failed: " + Describe(up);
    registry_ = std::make_unique<RegistryServer>(RegistryServer::Flavour::kOpen);
    for (int k = 1; k <= nodes; ++k) peer_ports_.push_back(FreePort());
  }
  if (error_.empty()) error_ = registry_->error();
}

Cluster::~Cluster() {
  for (pid_t pid : spawned_) Stop(pid);
  registry_.reset();
  if (namespaced()) RunCmd({kNetsim, "down", name_});
}

std::string Cluster::Address(int k) const {
  return (namespaced() ? "10.254.0." + std::to_string(10 + k) : "127.0.1." + std::to_string(k));
}

std::string Cluster::PeerAddress(int k) const {
  return Address(k) + ":" + std::to_string(namespaced() ? kPeerPort : peer_ports_.at(k - 1));
}

std::vector<std::string> Cluster::On(int k, std::vector<std::string> argv) const {
  if (namespaced()) argv.insert(argv.begin(), {kNetsim, "exec", name_, std::to_string(k)});
  return argv;
}

ProcessResult Cluster::Regdisk(int k, std::vector<std::string> args) const {
  args.insert(args.begin(), REGDISK_BIN);
  return Run(k, args);
}

pid_t Cluster::Spawn(int k, const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = SpawnLogged(On(k, argv), log);
  if (pid > 0) spawned_.push_back(pid);
  return pid;
}

void Cluster::Stop(pid_t pid) {
  if (pid <= 0 || ::waitpid(pid, nullptr, WNOHANG) != 0) return;  // gone (and reaped) already
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
}

uint64_t Cluster::RegistryEgress() const {
  if (namespaced()) {
    ProcessResult r = RunCmd({kNetsim, "egress", name_});
    return r.exit_code == 0 ? std::stoull(r.out) : 0;
  }
  uint64_t sum = 0;
  for (const std::string& line : RegistryRequests()) {
    sum += std::stoull(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

std::vector<std::string> Cluster::RegistryRequests() const { return AccessLines(registry_->Log()); }

}  // namespace regdisk::testing
