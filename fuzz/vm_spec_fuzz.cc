// libFuzzer target: ParseVmYaml on arbitrary bytes. It must return a status
// (never crash, hang or throw) and, when it accepts, give a consistent spec.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vm/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto set = regdisk::vm::ParseVmYaml(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!set.ok()) return 0;
  const regdisk::vm::VmSpec& vm = set->vm;
  if (vm.name.empty() || vm.disks.empty() || vm.disks.size() > 16 || set->replicas < 1 ||
      set->replicas > 1000 || vm.cpus() < 1 || vm.cpus() > 256) {
    std::abort();
  }
  for (const auto& d : vm.disks) {
    if (d.target.empty() || (d.volume.kind == regdisk::vm::VolumeKind::kContainerDisk && d.volume.container.image.empty()) || d.volume.name.empty()) std::abort();
  }
  return 0;
}
