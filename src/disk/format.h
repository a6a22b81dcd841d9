// Disk formats and the checks that make a user-supplied disk safe to package
// and to boot. The format is always declared or detected here and then
// passed explicitly to qemu; qemu never guesses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace regdisk::disk {

enum class Format { kRaw, kQcow2 };
const char* FormatName(Format f);  // "raw", "qcow2"
StatusOr<Format> ParseFormat(std::string_view name);

// Limits, each with its reason.
// A virtual size above this is refused: no VM disk regdisk serves is larger,
// and a huge size is how a tiny image asks a node for unbounded space.
inline constexpr uint64_t kMaxVirtualSize = 16ull << 40;  // 16 TiB

struct DiskInfo {
  Format format = Format::kRaw;
  uint64_t virtual_size = 0;  // bytes the guest sees
  uint64_t file_size = 0;     // bytes of the file
};

// The bytes of a disk's start that InspectHead needs: the qcow2 header, its
// extensions and the backing file name all lie in the first cluster, at most
// 2 MiB.
inline constexpr uint64_t kInspectHeadBytes = 2 << 20;

// The checks Inspect makes from the first min(file_size, kInspectHeadBytes)
// bytes `head` of a disk file of `file_size` bytes, without the file: the
// format (and `declared`), a raw disk's size, a qcow2's header (CheckSafe)
// and where its tables lie (CheckTables), not the tables' entries. A lazily
// served disk is checked with this before its other bytes exist here.
// Errors name `name`.
StatusOr<DiskInfo> InspectHead(std::string_view head, uint64_t file_size, std::optional<Format> declared,
                               const std::string& name);

// Opens `path`, detects the format from its first bytes (qcow2 magic or
// not), and, when `declared` is set, fails if it differs. A qcow2 is parsed
// with Qcow2Header and refused if unsafe (see qcow2.h), or if its tables or
// the clusters its L1 and refcount tables point to lie outside the file or
// overlap the header or each other. Every error names `path` and the cause.
StatusOr<DiskInfo> Inspect(const std::string& path, std::optional<Format> declared = {});

}  // namespace regdisk::disk
