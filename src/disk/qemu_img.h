// Cross-checks a disk with qemu-img itself, the way KubeVirt does, but with
// the format always given (-f) so qemu never probes: `qemu-img info
// --output=json -f FORMAT FILE`, and for a qcow2 `qemu-img check`, both
// under CPU and memory limits (a hostile image must not make qemu-img spin
// or balloon).
#pragma once

#include <string>

#include "disk/format.h"
#include "util/status.h"

namespace regdisk::disk {

struct QemuImgInfo {
  std::string format;
  uint64_t virtual_size = 0;
  std::string backing_filename;  // empty when none
  std::string data_file;         // empty when none
};

// Limits, as KubeVirt applies them: 10 s of CPU, 2000 MiB of address space.
inline constexpr int kQemuImgCpuSeconds = 10;
inline constexpr uint64_t kQemuImgAddressSpace = 2000ull << 20;

StatusOr<QemuImgInfo> RunQemuImgInfo(const std::string& path, Format format);

// `qemu-img check --output=json -f qcow2 FILE`: refuses a qcow2 with
// corruptions (a table or cluster that overlaps another, a refcount that
// does not match) or one the check cannot finish. Leaked clusters only
// waste space and pass. A raw disk has no metadata to check: OK.
Status RunQemuImgCheck(const std::string& path, Format format);

// Runs qemu-img info and refuses a disk whose format, virtual size, backing
// file or data file differ from what our own reader found in `info`; then
// RunQemuImgCheck.
Status CrossCheck(const std::string& path, const DiskInfo& info);

}  // namespace regdisk::disk
