#include "runtime/plan.h"

#include "cache/node_cache.h"

namespace regdisk::runtime {

std::string LeaseName(const std::string& vm, const std::string& disk) { return vm + "." + disk; }

VmPlan PlanVm(const std::string& root, const std::string& name, const vm::VmSpec& spec) {
  const std::string dir = root + "/run/" + name;
  VmPlan plan;
  for (const vm::VmDisk& d : spec.disks) {
    switch (d.volume.kind) {
      case vm::VolumeKind::kContainerDisk:
        plan.disks.push_back({d, cache::LeaseOverlayPath(root, LeaseName(name, d.name)), "qcow2", "", ""});
        break;
      case vm::VolumeKind::kEmptyDisk:
        plan.disks.push_back({d, dir + "/" + d.volume.name + ".qcow2", "qcow2", "", ""});
        break;
      case vm::VolumeKind::kCloudInitNoCloud:
      case vm::VolumeKind::kCloudInitConfigDrive:
        plan.disks.push_back({d, dir + "/" + d.volume.name + ".iso", "raw", "", ""});
        break;
    }
  }
  plan.domain.console_log = dir + "/console.log";
  if (spec.firmware == vm::Firmware::kEfi) {
    vm::OvmfPaths ovmf = vm::OvmfFiles(spec.secure_boot);
    plan.domain.loader = ovmf.code;
    plan.domain.nvram_template = ovmf.vars_template;
    plan.domain.nvram = dir + "/nvram.fd";
  }
  return plan;
}

}  // namespace regdisk::runtime
