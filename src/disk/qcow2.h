// A reader of the qcow2 header (versions 2 and 3), written from the qcow2
// spec (qemu docs/interop/qcow2.txt). It parses only what regdisk must check
// before a disk is packaged or attached, and validates in a fixed order,
// each failure with its own message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace regdisk::disk {

inline constexpr uint32_t kQcow2Magic = 0x514649fb;  // "QFI\xfb"

struct Qcow2Header {
  uint32_t version = 0;            // 2 or 3
  uint32_t cluster_bits = 0;       // 9..21
  uint64_t size = 0;               // virtual size in bytes
  uint32_t crypt_method = 0;       // 0 none, 1 AES, 2 LUKS
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  std::string backing_file;        // empty when none
  std::string backing_format;      // from header extension 0xe2792aca, if any
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t header_length = 72;     // v2: 72
  bool has_external_data_file = false;  // incompatible bit 2
  std::string data_file;           // from header extension 0x44415441, if any
  uint8_t compression_type = 0;    // v3 with incompatible bit 3: 0 zlib, 1 zstd
  // The metadata tables, where the header says they are.
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint32_t l1_size = 0;            // entries
  uint64_t l1_table_offset = 0;

  // Parses the header from the first bytes of a file (`head` should be the
  // first min(file size, 2 MiB) bytes: the header, its extensions and the
  // backing file name all live in the first cluster, and a cluster is at
  // most 2 MiB). Structural errors only: a header with a backing file
  // parses fine; CheckSafe() refuses it.
  static StatusOr<Qcow2Header> Parse(std::string_view head);

  // Refuses what must never be packaged or attached: a backing file
  // (CVE-2011-3147 et al.), an external data file (CVE-2024-32498),
  // encryption, incompatible feature bits regdisk does not know, a dirty or
  // corrupt image, and a virtual size over kMaxVirtualSize.
  Status CheckSafe() const;

  // Checks where the tables lie in a file of `file_size` bytes, in qemu's
  // order (refcount table, snapshot table, L1 table), each failure with its
  // own message: each table within qemu's size limit, cluster-aligned,
  // inside the file and clear of the header's cluster; the L1 table large
  // enough for the virtual size; then no two tables overlapping. A table
  // pointing outside the file or into the header is how a small image makes
  // a reader seek anywhere or read its header as data.
  Status CheckTables(uint64_t file_size) const;

  enum class Table { kRefcount, kL1 };
  // Checks the entries of the refcount table or of the L1 table, as read
  // from the file (CheckTables passed): each entry in use must have its
  // reserved bits clear and point to one cluster (a refcount block, an L2
  // table) that is aligned, inside the file, clear of the header's cluster
  // and of the tables. The first bad entry is named.
  Status CheckTableEntries(Table table, std::string_view bytes, uint64_t file_size) const;
  // Where a table lies and how many bytes it takes.
  uint64_t TableOffset(Table table) const;
  uint64_t TableBytes(Table table) const;
};

}  // namespace regdisk::disk
