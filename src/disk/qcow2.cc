#include "disk/qcow2.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "disk/format.h"

namespace regdisk::disk {
namespace {

// The fixed part of the header as stored on disk, big-endian. Version 2 ends
// at byte 72; version 3 adds the fields from incompatible_features on.
struct [[gnu::packed]] OnDiskHeader {
  uint32_t magic;
  uint32_t version;
  uint64_t backing_file_offset;
  uint32_t backing_file_size;
  uint32_t cluster_bits;
  uint64_t size;
  uint32_t crypt_method;
  uint32_t l1_size;
  uint64_t l1_table_offset;
  uint64_t refcount_table_offset;
  uint32_t refcount_table_clusters;
  uint32_t nb_snapshots;
  uint64_t snapshots_offset;
  uint64_t incompatible_features;  // version 3 from here on
  uint64_t compatible_features;
  uint64_t autoclear_features;
  uint32_t refcount_order;
  uint32_t header_length;
};
constexpr uint32_t kV2HeaderLength = 72;
constexpr uint32_t kV3MinHeaderLength = 104;
static_assert(offsetof(OnDiskHeader, incompatible_features) == kV2HeaderLength);
static_assert(sizeof(OnDiskHeader) == kV3MinHeaderLength);
// The optional byte right after the fixed v3 header, present when
// header_length > 104.
constexpr size_t kCompressionTypeOffset = 104;

// The spec's smallest cluster is 512 bytes; qemu refuses clusters over 2 MiB,
// and Inspect reads only the first 2 MiB of a file.
constexpr uint32_t kMinClusterBits = 9;
constexpr uint32_t kMaxClusterBits = 21;
// qemu refuses longer backing file names (its buffer holds 1023 + NUL).
constexpr uint32_t kMaxBackingFileSize = 1023;
// Names quoted in messages are cut here: a message is one line for a human,
// and a data file name may be up to a cluster long.
constexpr size_t kMaxQuotedName = 256;

// Header extension types. Others (feature name table 0x6803f857, bitmaps
// 0x23852875, ...) are skipped: they hold nothing regdisk checks.
constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtBackingFormat = 0xe2792aca;
constexpr uint32_t kExtDataFile = 0x44415441;  // "DATA"
constexpr size_t kExtHeaderSize = 8;            // type, length
constexpr uint64_t kExtAlign = 8;               // data is padded to this

// Incompatible feature bits.
constexpr uint64_t kDirtyBit = 1 << 0;
constexpr uint64_t kCorruptBit = 1 << 1;
constexpr uint64_t kExternalDataBit = 1 << 2;
constexpr uint64_t kCompressionTypeBit = 1 << 3;
constexpr uint64_t kExtendedL2Bit = 1 << 4;
constexpr uint64_t kKnownIncompatible =
    kDirtyBit | kCorruptBit | kExternalDataBit | kCompressionTypeBit | kExtendedL2Bit;

constexpr uint8_t kCompressionZstd = 1;  // 0 is zlib

// Table limits, qemu's (block/qcow2.h), so that what qemu would refuse is
// refused here first, and a header cannot make a reader allocate more.
constexpr uint64_t kMaxRefcountTableBytes = 8ull << 20;   // QCOW_MAX_REFTABLE_SIZE
constexpr uint64_t kMaxL1TableBytes = 32ull << 20;        // QCOW_MAX_L1_SIZE
constexpr uint32_t kMaxSnapshots = 65536;                 // QCOW_MAX_SNAPSHOTS
// The fixed part of a snapshot table entry (QCowSnapshotHeader); entries are
// at least this long, so nb_snapshots of them take at least this much.
constexpr uint64_t kSnapshotHeaderBytes = 40;
constexpr uint64_t kTableEntryBytes = 8;                  // L1 and refcount entries
// Entry layouts (qcow2.txt): the offset bits, and the bits that must be 0.
constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ull;
constexpr uint64_t kL1ReservedMask = 0x7f000000000001ffull;
constexpr uint64_t kRefcountOffsetMask = 0xfffffffffffffe00ull;
constexpr uint64_t kRefcountReservedMask = 0x1ffull;
constexpr uint64_t kL2EntryBytes = 8, kExtendedL2EntryBytes = 16;
constexpr uint32_t kCryptAes = 1;
constexpr uint32_t kCryptLuks = 2;

template <typename T>
T FromBe(T v) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  if constexpr (std::endian::native == std::endian::big) return v;
  if constexpr (sizeof(T) == 4) return __builtin_bswap32(v);
  else return __builtin_bswap64(v);
}

// The caller has checked that head holds 4 bytes at `off`.
uint32_t Be32At(std::string_view head, uint64_t off) {
  uint32_t v;
  std::memcpy(&v, head.data() + off, sizeof v);
  return FromBe(v);
}

std::string Num(uint64_t v) { return std::to_string(v); }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}


Status Truncated(const std::string& what, uint64_t need, size_t have) {
  return Corrupt("qcow2 truncated: " + what + " needs " + Num(need) + " bytes, only " + Num(have) +
                 " present");
}

Status ReadBackingFile(std::string_view head, uint64_t cluster_size, Qcow2Header& h) {
  if (h.backing_file_offset == 0) return OkStatus();
  if (h.backing_file_size > kMaxBackingFileSize) {
    return Corrupt("qcow2 backing file name is " + Num(h.backing_file_size) + " bytes, over the limit of " +
                   Num(kMaxBackingFileSize));
  }
  if (h.backing_file_offset > cluster_size || h.backing_file_size > cluster_size - h.backing_file_offset) {
    return Corrupt("qcow2 backing file name (offset " + Num(h.backing_file_offset) + ", " +
                   Num(h.backing_file_size) + " bytes) lies outside the first cluster (" + Num(cluster_size) +
                   " bytes)");
  }
  const uint64_t end = h.backing_file_offset + h.backing_file_size;
  if (end > head.size()) return Truncated("the backing file name", end, head.size());
  h.backing_file = head.substr(h.backing_file_offset, h.backing_file_size);
  return OkStatus();
}

// Header extensions follow the header up to the end marker. They must end
// before the backing file name (stored after them) and within the first
// cluster.
Status ReadExtensions(std::string_view head, uint64_t cluster_size, Qcow2Header& h) {
  uint64_t end = cluster_size;
  std::string area = "the first cluster (" + Num(cluster_size) + " bytes)";
  if (h.backing_file_offset != 0 && h.backing_file_offset < end) {
    end = h.backing_file_offset;
    area = "the backing file name at offset " + Num(end);
  }
  bool seen_backing_format = false, seen_data_file = false;
  for (uint64_t off = h.header_length; off < end;) {
    const uint64_t start = off;
    auto where = [start] { return "header extension at offset " + Num(start); };
    if (end - off < kExtHeaderSize) return Corrupt("qcow2 " + where() + " runs into " + area);
    if (off + kExtHeaderSize > head.size()) {
      return Truncated("the " + where(), off + kExtHeaderSize, head.size());
    }
    const uint32_t type = Be32At(head, off);
    const uint32_t len = Be32At(head, off + 4);
    if (type == kExtEnd) return OkStatus();
    off += kExtHeaderSize;
    const uint64_t padded = (uint64_t{len} + kExtAlign - 1) / kExtAlign * kExtAlign;
    if (padded > end - off) {
      return Corrupt("qcow2 " + where() + " (type " + Hex(type) + ", " + Num(len) + " bytes) runs into " +
                     area);
    }
    if (off + padded > head.size()) return Truncated("the " + where(), off + padded, head.size());
    const std::string_view data = head.substr(off, len);
    if (type == kExtBackingFormat || type == kExtDataFile) {
      bool& seen = type == kExtBackingFormat ? seen_backing_format : seen_data_file;
      // The spec allows each type once; two could be read differently by
      // another reader.
      if (seen) return Corrupt("qcow2 header extension " + Hex(type) + " appears twice");
      seen = true;
      (type == kExtBackingFormat ? h.backing_format : h.data_file) = data;
    }
    off += padded;
  }
  return OkStatus();
}

}  // namespace

StatusOr<Qcow2Header> Qcow2Header::Parse(std::string_view head) {
  OnDiskHeader raw{};
  std::memcpy(&raw, head.data(), std::min(head.size(), sizeof raw));
  if (head.size() < sizeof raw.magic) return Truncated("the magic", sizeof raw.magic, head.size());
  if (FromBe(raw.magic) != kQcow2Magic) {
    return Corrupt("not a qcow2 image: bad magic " + Hex(FromBe(raw.magic)));
  }
  if (head.size() < 8) return Truncated("the version", 8, head.size());

  Qcow2Header h;
  h.version = FromBe(raw.version);
  if (h.version != 2 && h.version != 3) {
    return Unsupported("qcow2 version " + Num(h.version) + " is not supported (only 2 and 3)");
  }
  const uint32_t fixed = h.version == 2 ? kV2HeaderLength : kV3MinHeaderLength;
  if (head.size() < fixed) return Truncated("a version " + Num(h.version) + " header", fixed, head.size());

  h.header_length = kV2HeaderLength;
  if (h.version == 3) {
    h.header_length = FromBe(raw.header_length);
    if (h.header_length < kV3MinHeaderLength || h.header_length % 8 != 0) {
      return Corrupt("qcow2 header_length " + Num(h.header_length) +
                     " is invalid: it must be at least 104 and a multiple of 8");
    }
    h.incompatible_features = FromBe(raw.incompatible_features);
    h.compatible_features = FromBe(raw.compatible_features);
    h.autoclear_features = FromBe(raw.autoclear_features);
  }

  h.cluster_bits = FromBe(raw.cluster_bits);
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    return Corrupt("qcow2 cluster_bits " + Num(h.cluster_bits) + " is out of range " + Num(kMinClusterBits) +
                   ".." + Num(kMaxClusterBits));
  }
  const uint64_t cluster_size = uint64_t{1} << h.cluster_bits;
  if (h.header_length > cluster_size) {
    return Corrupt("qcow2 header_length " + Num(h.header_length) + " does not fit in the first cluster (" +
                   Num(cluster_size) + " bytes)");
  }
  if (head.size() < h.header_length) return Truncated("the header", h.header_length, head.size());

  h.size = FromBe(raw.size);
  h.backing_file_offset = FromBe(raw.backing_file_offset);
  h.backing_file_size = FromBe(raw.backing_file_size);
  RETURN_IF_ERROR(ReadBackingFile(head, cluster_size, h));
  RETURN_IF_ERROR(ReadExtensions(head, cluster_size, h));

  h.has_external_data_file = (h.incompatible_features & kExternalDataBit) != 0;
  // compression_type must be present and non-zero exactly when its
  // incompatible bit is set.
  if (h.header_length > kCompressionTypeOffset) h.compression_type = head[kCompressionTypeOffset];
  const bool compression_bit = (h.incompatible_features & kCompressionTypeBit) != 0;
  if (h.compression_type > kCompressionZstd) {
    return Unsupported("qcow2 compression type " + Num(h.compression_type) + " is unknown (0 zlib, 1 zstd)");
  }
  if (compression_bit && h.compression_type == 0) {
    return Corrupt("qcow2 compression type feature bit is set but compression_type is zlib or absent");
  }
  if (!compression_bit && h.compression_type != 0) {
    return Corrupt("qcow2 compression_type is " + Num(h.compression_type) +
                   " but the compression type feature bit is not set");
  }

  h.refcount_table_offset = FromBe(raw.refcount_table_offset);
  h.refcount_table_clusters = FromBe(raw.refcount_table_clusters);
  h.nb_snapshots = FromBe(raw.nb_snapshots);
  h.snapshots_offset = FromBe(raw.snapshots_offset);
  h.l1_size = FromBe(raw.l1_size);
  h.l1_table_offset = FromBe(raw.l1_table_offset);

  h.crypt_method = FromBe(raw.crypt_method);
  if (h.crypt_method > kCryptLuks) {
    return Unsupported("qcow2 encryption method " + Num(h.crypt_method) + " is unknown");
  }
  return h;
}

Status Qcow2Header::CheckSafe() const {
  const std::string refused = ": refused, a disk must be self-contained";
  if (backing_file_offset != 0) {
    return InvalidArgument("qcow2 has a backing file " + Quote(backing_file, kMaxQuotedName) + refused);
  }
  if (!data_file.empty()) {
    return InvalidArgument("qcow2 has an external data file " + Quote(data_file, kMaxQuotedName) + refused);
  }
  if (has_external_data_file) return InvalidArgument("qcow2 has the external data file bit set" + refused);
  if (crypt_method != 0) {
    return Unsupported(std::string("qcow2 is encrypted (") + (crypt_method == kCryptAes ? "AES" : "LUKS") +
                       "): refused, regdisk does not handle encrypted disks");
  }
  if (const uint64_t unknown = incompatible_features & ~kKnownIncompatible; unknown != 0) {
    return Unsupported("qcow2 has unknown incompatible feature bits " + Hex(unknown) + ": refused");
  }
  if (incompatible_features & kDirtyBit) {
    return InvalidArgument("qcow2 is dirty (not closed cleanly): refused, repair it with "
                           "qemu-img check -r all");
  }
  if (incompatible_features & kCorruptBit) return Corrupt("qcow2 is marked corrupt: refused");
  if (size == 0) return InvalidArgument("qcow2 virtual size is 0: refused");
  if (size > kMaxVirtualSize) {
    return InvalidArgument("qcow2 virtual size " + Num(size) + " bytes is over the limit of " +
                           Num(kMaxVirtualSize) + " bytes (16 TiB)");
  }
  return OkStatus();
}

namespace {

struct Extent {
  const char* name;
  uint64_t offset, bytes;
  bool Overlaps(uint64_t off, uint64_t len) const { return bytes > 0 && off < offset + bytes && offset < off + len; }
};

// One table's place: aligned, inside the file, clear of the header's
// cluster. `bytes` is at most a few MiB (checked before), so no sum here
// overflows unless the offset is near 2^64, which the first test catches.
Status CheckExtent(const Extent& t, uint64_t cluster_size, uint64_t file_size) {
  if (t.bytes == 0) return OkStatus();
  if (t.offset % cluster_size != 0) {
    return Corrupt(std::string("qcow2 ") + t.name + " offset " + Hex(t.offset) + " is not aligned to a cluster (" +
                   Num(cluster_size) + " bytes)");
  }
  if (t.offset > file_size || t.bytes > file_size - t.offset) {
    return Corrupt(std::string("qcow2 ") + t.name + " (offset " + Hex(t.offset) + ", " + Num(t.bytes) +
                   " bytes) lies outside the file (" + Num(file_size) + " bytes)");
  }
  if (t.offset < cluster_size) {
    return Corrupt(std::string("qcow2 ") + t.name + " at offset " + Hex(t.offset) + " overlaps the header");
  }
  return OkStatus();
}

}  // namespace

uint64_t Qcow2Header::TableOffset(Table table) const {
  return table == Table::kL1 ? l1_table_offset : refcount_table_offset;
}

uint64_t Qcow2Header::TableBytes(Table table) const {
  return table == Table::kL1 ? uint64_t{l1_size} * kTableEntryBytes
                             : uint64_t{refcount_table_clusters} << cluster_bits;
}

Status Qcow2Header::CheckTables(uint64_t file_size) const {
  const uint64_t cluster_size = uint64_t{1} << cluster_bits;
  const Extent refcount{"refcount table", refcount_table_offset, TableBytes(Table::kRefcount)};
  const Extent snapshots{"snapshot table", snapshots_offset, uint64_t{nb_snapshots} * kSnapshotHeaderBytes};
  const Extent l1{"L1 table", l1_table_offset, TableBytes(Table::kL1)};

  if (refcount.bytes > kMaxRefcountTableBytes) {
    return Corrupt("qcow2 refcount table is " + Num(refcount.bytes) + " bytes, over qemu's limit of " +
                   Num(kMaxRefcountTableBytes));
  }
  if (refcount.bytes == 0) return Corrupt("qcow2 refcount table is empty");
  RETURN_IF_ERROR(CheckExtent(refcount, cluster_size, file_size));

  if (nb_snapshots > kMaxSnapshots) {
    return Corrupt("qcow2 has " + Num(nb_snapshots) + " snapshots, over qemu's limit of " + Num(kMaxSnapshots));
  }
  RETURN_IF_ERROR(CheckExtent(snapshots, cluster_size, file_size));

  if (l1.bytes > kMaxL1TableBytes) {
    return Corrupt("qcow2 L1 table is " + Num(l1.bytes) + " bytes, over qemu's limit of " + Num(kMaxL1TableBytes));
  }
  // Each L1 entry maps one L2 table's worth of clusters.
  const uint64_t l2_entry = (incompatible_features & kExtendedL2Bit) ? kExtendedL2EntryBytes : kL2EntryBytes;
  const uint64_t per_l1_entry = cluster_size / l2_entry * cluster_size;
  if (const uint64_t need = size / per_l1_entry + (size % per_l1_entry != 0); l1_size < need) {
    return Corrupt("qcow2 L1 table has " + Num(l1_size) + " entries, too few for the virtual size (" + Num(need) +
                   " needed)");
  }
  RETURN_IF_ERROR(CheckExtent(l1, cluster_size, file_size));

  const Extent* tables[] = {&refcount, &snapshots, &l1};
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = i + 1; j < 3; ++j) {
      if (tables[i]->bytes > 0 && tables[j]->Overlaps(tables[i]->offset, tables[i]->bytes)) {
        return Corrupt(std::string("qcow2 ") + tables[i]->name + " and " + tables[j]->name + " overlap");
      }
    }
  }
  return OkStatus();
}

Status Qcow2Header::CheckTableEntries(Table table, std::string_view bytes, uint64_t file_size) const {
  const bool is_l1 = table == Table::kL1;
  const char* name = is_l1 ? "L1 table" : "refcount table";
  const char* target = is_l1 ? "L2 table" : "refcount block";
  const uint64_t offset_mask = is_l1 ? kL1OffsetMask : kRefcountOffsetMask;
  const uint64_t reserved_mask = is_l1 ? kL1ReservedMask : kRefcountReservedMask;
  const uint64_t cluster_size = uint64_t{1} << cluster_bits;
  const Extent tables[] = {{"refcount table", refcount_table_offset, TableBytes(Table::kRefcount)},
                           {"snapshot table", snapshots_offset, uint64_t{nb_snapshots} * kSnapshotHeaderBytes},
                           {"L1 table", l1_table_offset, TableBytes(Table::kL1)}};
  for (size_t i = 0; i + kTableEntryBytes <= bytes.size(); i += kTableEntryBytes) {
    uint64_t raw;
    std::memcpy(&raw, bytes.data() + i, sizeof raw);
    const uint64_t entry = FromBe(raw);
    if (entry == 0) continue;  // unallocated
    const std::string where = std::string("qcow2 ") + name + " entry " + Num(i / kTableEntryBytes);
    if (entry & reserved_mask) return Corrupt(where + " has reserved bits set (" + Hex(entry) + ")");
    const uint64_t off = entry & offset_mask;
    if (off == 0) continue;  // an L1 entry with only the copied flag
    const Extent cluster{target, off, cluster_size};
    if (Status s = CheckExtent(cluster, cluster_size, file_size); !s.ok()) return s.Annotate(where);
    for (const auto& t : tables) {
      if (t.Overlaps(off, cluster_size)) {
        return Corrupt(where + ": its " + target + " at offset " + Hex(off) + " overlaps the " + t.name);
      }
    }
  }
  return OkStatus();
}

}  // namespace regdisk::disk
