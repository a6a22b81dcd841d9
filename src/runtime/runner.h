// The node agent's VM lifecycle (the handler role, without Kubernetes):
// VM spec -> one lease per registry disk from the node cache -> domain XML
// -> a transient libvirt domain. Everything that can be refused (the spec,
// a missing image, a bad format, a malicious disk) is refused before
// libvirt is called, and a refused start leaves no lease or overlay.
//
//   ROOT/run/VM/vm.json       the VM's leases and pinned digests
//   ROOT/run/VM/domain.xml    what libvirt was given
//   ROOT/run/VM/console.log   the serial console
//
// Stopping destroys the domain and releases the leases (the overlays go:
// the next start boots from the pristine disk) but keeps the pinned
// digests, so a moved tag does not change a VM across restarts
// (kubevirt#15967); `forget` drops the VM entirely.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/node_cache.h"
#include "vm/spec.h"

namespace regdisk::runtime {

// Opens the store of an image; `secret` is the volume's imagePullSecret.
using ImageOpener =
    std::function<StatusOr<std::unique_ptr<oci::Store>>(const oci::Reference& ref, const std::string& secret)>;

struct RunnerOptions {
  cache::CacheOptions cache;
  std::string libvirt_uri;          // empty: $LIBVIRT_DEFAULT_URI or qemu:///system
  std::string domain_type = "qemu"; // TCG; "kvm" only when asked
  ImageOpener open;
};

struct VmState {
  std::string name;
  bool running = false;
  std::vector<cache::Lease> leases;
  std::map<std::string, std::string> pins;  // disk name -> manifest digest
  std::string console_log;
};

class Runner {
 public:
  static StatusOr<std::unique_ptr<Runner>> Open(RunnerOptions options);

  // Starts every VM of the set (replica i of a set of N > 1 is NAME-i) and
  // returns their names. A VM that exists and is running is an error; one
  // that exists and has stopped starts again from pristine disks.
  StatusOr<std::vector<std::string>> Run(const vm::VmSet& set);
  Status Stop(const std::string& name, bool forget);
  StatusOr<std::vector<VmState>> List();
  // Copies the console to `out` as it grows, until the domain stops or
  // `timeout_seconds` pass (0: no limit).
  Status FollowConsole(const std::string& name, std::FILE* out, int timeout_seconds);

 private:
  explicit Runner(RunnerOptions o) : options_(std::move(o)) {}
  Status StartOne(const std::string& name, const vm::VmSpec& spec);
  StatusOr<VmState> Load(const std::string& name);
  Status Save(const VmState& state);
  std::string Dir(const std::string& name) const { return options_.cache.root + "/run/" + name; }

  RunnerOptions options_;
  std::unique_ptr<cache::NodeCache> cache_;
};

}  // namespace regdisk::runtime
