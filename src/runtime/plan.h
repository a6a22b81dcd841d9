// Where `run` puts a VM's files on this node, decided before anything is
// made, so that the runner and `render domain` name them alike:
//
//   ROOT/vms/VM.DISK/overlay.qcow2   a container disk's overlay (the node
//                                    cache's lease VM.DISK)
//   ROOT/run/VM/VOLUME.iso           a cloud-init volume
//   ROOT/run/VM/VOLUME.qcow2         an emptyDisk volume
//   ROOT/run/VM/nvram.fd             EFI variables
//   ROOT/run/VM/console.log          the serial console
#pragma once

#include <string>
#include <vector>

#include "vm/domain_xml.h"
#include "vm/spec.h"

namespace regdisk::runtime {

// The node cache's lease name of a VM's container disk.
std::string LeaseName(const std::string& vm, const std::string& disk);

struct VmPlan {
  // One per disk of the spec, in order. A container disk's cached base
  // (base_file, base_format) is known only once it is pulled: left empty.
  std::vector<vm::AttachedDisk> disks;
  // console_log, and for EFI loader, nvram_template and nvram; the rest
  // (domain type, cache mode) is the caller's.
  vm::DomainOptions domain;
};
// The plan for the VM `name` (a replica's own name) of `spec` under `root`.
VmPlan PlanVm(const std::string& root, const std::string& name, const vm::VmSpec& spec);

}  // namespace regdisk::runtime
