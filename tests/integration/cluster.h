// A cluster of nodes on one machine for the peer tests (docs/peers.md,
// "Simulation"): a real registry and N nodes, each with its own root and
// address. Made with tests/tools/netsim (network namespaces on a bridge,
// 10.254.0.0/24) where namespaces can be made; otherwise on loopback (the
// registry on 127.0.0.1, node K on 127.0.1.K), and namespace_error() says
// why (REGDISK_TEST_NO_NETNS=1 forces loopback). Commands run "on" a node run in its namespace (or just run, on
// loopback). The destructor stops the registry and takes the namespaces
// down, with whatever still runs in them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "harness.h"
#include "registry_server.h"
#include "util/fs.h"

namespace regdisk::testing {

class Cluster {
 public:
  explicit Cluster(int nodes);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // "" when the cluster is up; otherwise why not.
  const std::string& error() const { return error_; }
  // "" when the nodes are in namespaces; otherwise why they could not be.
  const std::string& namespace_error() const { return namespace_error_; }
  bool namespaced() const { return namespace_error_.empty(); }
  int nodes() const { return nodes_; }

  RegistryServer& registry() { return *registry_; }
  // Node K's (1-based) address, and the HOST:PORT its peer server listens on.
  std::string Address(int k) const;
  std::string PeerAddress(int k) const;
  // Node K's root (made empty by the constructor).
  std::string Root(int k) const { return dir_.path() + "/node" + std::to_string(k); }
  std::string dir() const { return dir_.path(); }

  // `argv` as run on node K.
  std::vector<std::string> On(int k, std::vector<std::string> argv) const;
  ProcessResult Run(int k, const std::vector<std::string>& argv) const { return RunCmd(On(k, argv)); }
  // The regdisk binary on node K.
  ProcessResult Regdisk(int k, std::vector<std::string> args) const;
  // Starts `argv` on node K in the background, its output in `log`; the
  // destructor stops it (SIGTERM). -1 if it cannot start.
  pid_t Spawn(int k, const std::vector<std::string>& argv, const std::string& log);
  // Stops a process Spawn started.
  void Stop(pid_t pid);

  // Bytes the registry has sent so far: its link's tx_bytes in namespaces,
  // the sum of the access log's response sizes on loopback (each counts
  // every answer, the namespaces' headers and TCP too).
  uint64_t RegistryEgress() const;
  // The access log's request lines so far ("METHOD PATH STATUS BYTES"), in order.
  std::vector<std::string> RegistryRequests() const;

 private:
  TempDir dir_{"rd-cluster"};
  int nodes_;
  std::string name_, error_, namespace_error_;
  std::unique_ptr<RegistryServer> registry_;
  std::vector<int> peer_ports_;
  std::vector<pid_t> spawned_;
};

}  // namespace regdisk::testing
