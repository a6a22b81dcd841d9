// libFuzzer target: the VM spec parser on arbitrary bytes, as one document
// (ParseVmYaml) and as several files of several documents (ParseVmFiles;
// the input is cut into files at each \x01 byte, which YAML refuses anyway).
// It must return a status (never crash, hang or throw) and, when it
// accepts, give consistent specs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "vm/spec.h"

namespace {

void Check(const regdisk::vm::VmSet& set) {
  const regdisk::vm::VmSpec& vm = set.vm;
  if (vm.name.empty() || vm.disks.empty() || vm.disks.size() > 16 || set.replicas < 1 || set.replicas > 1000 ||
      vm.cpus() < 1 || vm.cpus() > 256 || vm.interfaces.size() > 8) {
    std::abort();
  }
  for (const auto& d : vm.disks) {
    if (d.target.empty() || d.volume.name.empty()) std::abort();
    if (d.volume.kind == regdisk::vm::VolumeKind::kContainerDisk && d.volume.container.image.empty()) std::abort();
    if (d.volume.kind == regdisk::vm::VolumeKind::kEmptyDisk && (d.volume.capacity == 0 || d.volume.capacity % 512)) {
      std::abort();
    }
    if (d.device == regdisk::vm::DeviceKind::kCdrom && !d.read_only) std::abort();
  }
  if (vm.secure_boot && (!vm.smm || vm.firmware != regdisk::vm::Firmware::kEfi)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto set = regdisk::vm::ParseVmYaml(text); set.ok()) Check(*set);
  std::vector<regdisk::vm::SpecFile> files;
  for (size_t start = 0; start <= text.size();) {
    size_t cut = text.find('\x01', start);
    if (cut == std::string_view::npos) cut = text.size();
    files.push_back({"f" + std::to_string(files.size()), std::string(text.substr(start, cut - start))});
    start = cut + 1;
  }
  if (auto sets = regdisk::vm::ParseVmFiles(files); sets.ok()) {
    for (const auto& set : *sets) Check(set);
  }
  return 0;
}
