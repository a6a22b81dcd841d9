// The node agent's VM lifecycle (the handler role, without Kubernetes):
// VM spec -> one lease per container disk from the node cache, plus the
// VM's own files -> domain XML -> a transient libvirt domain. Everything
// that can be refused (the spec, a missing image, a bad format, a malicious
// disk, missing firmware, oversized cloud-init data) is refused before
// libvirt is called, and a refused start leaves no lease and no file.
//
//   ROOT/run/VM/vm.json       the VM's leases, pinned digests, run strategy
//                             and per-VM files
//   ROOT/run/VM/domain.xml    what libvirt was given
//   ROOT/run/VM/console.log   the serial console
//   ROOT/run/VM/VOLUME.iso    a cloud-init volume (label cidata or config-2)
//   ROOT/run/VM/VOLUME.qcow2  an emptyDisk volume: sparse qcow2 of its capacity
//   ROOT/run/VM/nvram.fd      EFI variables, copied from OVMF's vars template
//
// Stopping destroys the domain, releases the leases and removes the per-VM
// files (the next start boots from pristine disks, a fresh cloud-init
// volume, empty empty disks and fresh EFI variables) but keeps the pinned
// digests, so a moved tag does not change a VM across restarts
// (kubevirt#15967); `forget` drops the VM entirely.
//
// Run strategies, as far as one node without a controller can keep them
// (the domain's on_poweroff / on_crash / on_reboot actions are rendered from
// the strategy by vm::RenderDomainXml; an in-place restart by libvirt keeps
// the VM's overlays and files, where KubeVirt would make a new VMI):
//   Halted          nothing is prepared, defined or started; the VM is
//                   recorded (`ls` shows it halted) and Run says so.
//   Always          started; libvirt restarts it in place when the guest
//                   powers off, reboots or crashes. Only `stop` ends it.
//   RerunOnFailure  started; restarted in place when it crashes or reboots,
//                   not when the guest powers off cleanly.
//   Manual          started now (run is the user's start request); never
//                   restarted; stop/run are the user's only controls.
//   Once            (a VirtualMachineInstance) started; never restarted.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/node_cache.h"
#include "vm/domain_xml.h"
#include "vm/spec.h"

namespace regdisk::runtime {

// Opens the store of an image; `secret` is the volume's imagePullSecret.
using ImageOpener =
    std::function<StatusOr<std::unique_ptr<oci::Store>>(const oci::Reference& ref, const std::string& secret)>;

// A lazy entry's serve.json settings for a volume whose imagePullSecret
// is `secret` (cache::PrepareRequest::serve).
using ServeSettings = std::function<StatusOr<lazy::ServeConfig>(const std::string& secret)>;

struct RunnerOptions {
  cache::CacheOptions cache;
  std::string libvirt_uri;          // empty: $LIBVIRT_DEFAULT_URI or qemu:///system
  std::string domain_type = "qemu"; // TCG; "kvm" only when asked
  ImageOpener open;
  // Serve v2 images' disks lazily over NBD (the VM starts once the index
  // is verified); false: pull every disk whole first.
  bool lazy = true;
  ServeSettings serve;
};

struct VmState {
  std::string name;
  bool running = false;
  std::string run_strategy;                 // "Always", ..., "Halted"
  std::vector<cache::Lease> leases;
  std::map<std::string, std::string> pins;  // disk name -> manifest digest
  std::vector<std::string> files;           // per-VM files (names in the VM's dir)
  std::string console_log;
};

// What Run did with one VM of a set.
struct RunResult {
  std::string name;
  bool started = false;  // false: Halted, recorded only
};


class Runner {
 public:
  static StatusOr<std::unique_ptr<Runner>> Open(RunnerOptions options);

  // Starts every VM of the set (replica i of a set of N > 1 is NAME-i) and
  // says what it did with each; a Halted VM is recorded, not started. A VM
  // that exists and is running is an error; one that exists and has stopped
  // starts again from pristine disks. All or nothing: on an error the VMs
  // this call started are stopped again.
  StatusOr<std::vector<RunResult>> Run(const vm::VmSet& set);
  Status Stop(const std::string& name, bool forget);
  StatusOr<std::vector<VmState>> List();
  // Copies the console to `out` as it grows, until the domain stops or
  // `timeout_seconds` pass (0: no limit).
  Status FollowConsole(const std::string& name, std::FILE* out, int timeout_seconds);

 private:
  explicit Runner(RunnerOptions o) : options_(std::move(o)) {}
  StatusOr<bool> StartOne(const std::string& name, const vm::VmSpec& spec);
  // Makes the files of `planned` (PlanVm's disks): leases for container
  // disks, cloud-init ISOs, empty disks; returns them with the cached bases.
  StatusOr<std::vector<vm::AttachedDisk>> Attach(const std::string& name, const vm::VmSpec& spec,
                                                 std::vector<vm::AttachedDisk> planned, VmState& state);
  // Copies the EFI variables template to the VM's own NVRAM (dom.nvram).
  Status PrepareFirmware(const std::string& name, const vm::DomainOptions& dom, VmState& state);
  Status RemoveFiles(VmState& state);
  StatusOr<VmState> Load(const std::string& name);
  Status Save(const VmState& state);
  std::string Dir(const std::string& name) const { return options_.cache.root + "/run/" + name; }

  RunnerOptions options_;
  std::unique_ptr<cache::NodeCache> cache_;
};

}  // namespace regdisk::runtime
