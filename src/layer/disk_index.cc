#include "layer/disk_index.h"

#include <algorithm>
#include <cstring>

#include "layer/chunk_reader.h"
#include "util/sha256.h"

namespace regdisk::layer {
namespace {

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetU64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint8_t CodecByte(Codec c) {
  switch (c) {
    case Codec::kNone: return 0;
    case Codec::kGzip: return 1;
    case Codec::kZstd: return 2;
  }
  return 0xff;
}

Status Bad(const std::string& what) { return Corrupt("chunk index: " + what); }

std::string EntryName(size_t i, const IndexEntry& e) {
  return "entry " + std::to_string(i) + " (disk offset " + std::to_string(e.disk_offset) + ")";
}

// A decimal number as written in the annotations: digits only, no sign, no
// leading zero, at most 20 digits, no overflow.
StatusOr<uint64_t> ParseDecimal(std::string_view s, std::string_view what) {
  auto bad = [&] { return InvalidArgument(std::string(what) + " " + Quote(s) + ": not a decimal number"); };
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return bad();
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return bad();
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return bad();
    v = v * 10 + d;
  }
  return v;
}

}  // namespace

std::string ShaHex(const std::array<uint8_t, 32>& sha) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : sha) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

std::array<uint8_t, 32> ShaFromHex(std::string_view hex) {
  auto nibble = [](char c) { return static_cast<uint8_t>(c <= '9' ? c - '0' : c - 'a' + 10); };
  std::array<uint8_t, 32> sha{};
  for (size_t i = 0; i < sha.size() && 2 * i + 1 < hex.size(); ++i) {
    sha[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return sha;
}

std::string EncodeIndex(const DiskIndex& index) {
  std::string out(kIndexMagic, sizeof kIndexMagic);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((index.chunk_size >> (8 * i)) & 0xff));
  out.push_back(static_cast<char>(CodecByte(index.codec)));
  out.append(3, '\0');
  PutU64(out, index.disk_size);
  PutU64(out, index.entries.size());
  for (const IndexEntry& e : index.entries) {
    PutU64(out, e.disk_offset);
    PutU64(out, e.length);
    PutU64(out, e.blob_offset);
    PutU64(out, e.blob_length);
    out.append(reinterpret_cast<const char*>(e.sha256.data()), e.sha256.size());
  }
  return out;
}

StatusOr<DiskIndex> DecodeIndex(std::string_view bytes, uint64_t data_end) {
  if (bytes.size() > kMaxIndexBytes) return Bad("larger than " + std::to_string(kMaxIndexBytes) + " bytes");
  if (bytes.size() < kIndexHeaderBytes) return Bad("shorter than its header");
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (std::memcmp(p, kIndexMagic, sizeof kIndexMagic) != 0) return Bad("bad magic bytes");
  DiskIndex index;
  index.chunk_size = static_cast<uint32_t>(p[8]) | static_cast<uint32_t>(p[9]) << 8 |
                     static_cast<uint32_t>(p[10]) << 16 | static_cast<uint32_t>(p[11]) << 24;
  switch (p[12]) {
    case 0: index.codec = Codec::kNone; break;
    case 1: index.codec = Codec::kGzip; break;
    case 2: index.codec = Codec::kZstd; break;
    default: return Bad("unknown compression " + std::to_string(p[12]));
  }
  if (p[13] != 0 || p[14] != 0 || p[15] != 0) return Bad("reserved header bytes are not zero");
  index.disk_size = GetU64(p + 16);
  const uint64_t count = GetU64(p + 24);
  if (count > kMaxIndexEntries) return Bad(std::to_string(count) + " entries, more than " + std::to_string(kMaxIndexEntries));
  if (bytes.size() != kIndexHeaderBytes + count * kIndexEntryBytes) {
    return Bad("size " + std::to_string(bytes.size()) + " does not match its " + std::to_string(count) + " entries");
  }
  index.entries.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    const unsigned char* q = p + kIndexHeaderBytes + i * kIndexEntryBytes;
    IndexEntry& e = index.entries[i];
    e.disk_offset = GetU64(q);
    e.length = GetU64(q + 8);
    e.blob_offset = GetU64(q + 16);
    e.blob_length = GetU64(q + 24);
    std::memcpy(e.sha256.data(), q + 32, 32);
  }
  RETURN_IF_ERROR(ValidateIndex(index, data_end));
  return index;
}

Status ValidateIndex(const DiskIndex& index, uint64_t data_end) {
  const uint64_t cs = index.chunk_size;
  if (cs < kMinChunkSize || cs > kMaxChunkSize || (cs & (cs - 1)) != 0) {
    return Bad("chunk size " + std::to_string(cs) + " is not a power of two in " +
               std::to_string(kMinChunkSize) + ".." + std::to_string(kMaxChunkSize));
  }
  if (index.entries.size() > kMaxIndexEntries) return Bad("too many entries");
  uint64_t disk_pos = 0;
  std::optional<uint64_t> blob_pos;  // where the next data member must start
  bool prev_zero = false;
  for (size_t i = 0; i < index.entries.size(); ++i) {
    const IndexEntry& e = index.entries[i];
    if (e.disk_offset != disk_pos) {
      return Bad(EntryName(i, e) + ": expected disk offset " + std::to_string(disk_pos) +
                 (e.disk_offset < disk_pos ? " (overlap)" : " (gap)"));
    }
    if (e.length == 0) return Bad(EntryName(i, e) + ": empty");
    if (e.length > index.disk_size - disk_pos || disk_pos > index.disk_size) {
      return Bad(EntryName(i, e) + ": runs past the disk size " + std::to_string(index.disk_size));
    }
    disk_pos += e.length;
    if (e.zero()) {
      if (prev_zero) return Bad(EntryName(i, e) + ": two zero extents in a row");
      if (e.blob_offset != 0 || std::any_of(e.sha256.begin(), e.sha256.end(), [](uint8_t b) { return b != 0; })) {
        return Bad(EntryName(i, e) + ": a zero extent with a blob offset or digest");
      }
      prev_zero = true;
      continue;
    }
    prev_zero = false;
    if (e.length > cs || e.disk_offset / cs != (e.disk_offset + e.length - 1) / cs) {
      return Bad(EntryName(i, e) + ": crosses a chunk boundary");
    }
    if (e.blob_length > MaxMemberBytes(e.length) ||
        (index.codec == Codec::kNone && e.blob_length != e.length)) {
      return Bad(EntryName(i, e) + ": compressed length " + std::to_string(e.blob_length) +
                 " out of bounds for " + std::to_string(e.length) + " bytes");
    }
    if (blob_pos && e.blob_offset != *blob_pos) {
      return Bad(EntryName(i, e) + ": blob offset " + std::to_string(e.blob_offset) +
                 " does not follow the previous chunk's member at " + std::to_string(*blob_pos));
    }
    if (e.blob_offset > data_end || e.blob_length > data_end - e.blob_offset) {
      return Bad(EntryName(i, e) + ": member runs past the index at blob offset " + std::to_string(data_end));
    }
    blob_pos = e.blob_offset + e.blob_length;
  }
  if (disk_pos != index.disk_size) {
    return Bad("entries cover " + std::to_string(disk_pos) + " bytes of a " +
               std::to_string(index.disk_size) + "-byte disk");
  }
  return OkStatus();
}

void AnnotateAnchor(const IndexAnchor& a, oci::Annotations& annotations) {
  annotations[kIndexDigestAnnotation] = a.digest.str();
  annotations[kIndexPositionAnnotation] = std::to_string(a.offset) + ":" + std::to_string(a.length) +
                                          ":" + std::to_string(a.uncompressed_length);
  annotations[kChunkSizeAnnotation] = std::to_string(a.chunk_size);
}

StatusOr<std::optional<IndexAnchor>> ParseAnchor(const oci::Descriptor& layer) {
  const auto& ann = layer.annotations;
  const char* keys[] = {kIndexDigestAnnotation, kIndexPositionAnnotation, kChunkSizeAnnotation};
  int present = 0;
  for (const char* k : keys) present += ann.count(k) ? 1 : 0;
  if (present == 0) return std::optional<IndexAnchor>();
  if (present != 3) return InvalidArgument("v2 layer annotations: some of the index annotations are missing");
  IndexAnchor a;
  auto digest = oci::Digest::Parse(ann.at(kIndexDigestAnnotation));
  if (!digest.ok()) return digest.status().Annotate(kIndexDigestAnnotation);
  a.digest = *digest;
  const std::string& pos = ann.at(kIndexPositionAnnotation);
  const size_t c1 = pos.find(':'), c2 = c1 == std::string::npos ? c1 : pos.find(':', c1 + 1);
  if (c2 == std::string::npos || pos.find(':', c2 + 1) != std::string::npos) {
    return InvalidArgument(std::string(kIndexPositionAnnotation) + " " + Quote(pos) +
                           ": expected offset:length:uncompressed-length");
  }
  const std::string_view sv(pos);
  ASSIGN_OR_RETURN(a.offset, ParseDecimal(sv.substr(0, c1), "index offset"));
  ASSIGN_OR_RETURN(a.length, ParseDecimal(sv.substr(c1 + 1, c2 - c1 - 1), "index length"));
  ASSIGN_OR_RETURN(a.uncompressed_length, ParseDecimal(sv.substr(c2 + 1), "index uncompressed length"));
  ASSIGN_OR_RETURN(uint64_t cs, ParseDecimal(ann.at(kChunkSizeAnnotation), "chunk size"));
  if (cs < kMinChunkSize || cs > kMaxChunkSize || (cs & (cs - 1)) != 0) {
    return InvalidArgument("chunk size " + std::to_string(cs) + ": not a power of two in " +
                           std::to_string(kMinChunkSize) + ".." + std::to_string(kMaxChunkSize));
  }
  a.chunk_size = static_cast<uint32_t>(cs);
  if (a.uncompressed_length < kIndexHeaderBytes || a.uncompressed_length > kMaxIndexBytes ||
      (a.uncompressed_length - kIndexHeaderBytes) % kIndexEntryBytes != 0) {
    return InvalidArgument("index uncompressed length " + std::to_string(a.uncompressed_length) + ": not a valid index size");
  }
  if (a.length == 0 || a.length > MaxMemberBytes(a.uncompressed_length) || a.offset > layer.size ||
      a.length > layer.size - a.offset) {
    return InvalidArgument("index position " + Quote(pos) + ": outside the " + std::to_string(layer.size) +
                           "-byte layer or out of bounds");
  }
  return std::optional<IndexAnchor>(a);
}

StatusOr<DiskIndex> OpenIndex(const IndexAnchor& anchor, Codec codec, std::string_view member) {
  if (member.size() != anchor.length) return Bad("member is not the anchored length");
  ASSIGN_OR_RETURN(std::string bytes, DecodeMember(codec, member, anchor.uncompressed_length));
  return OpenIndexBytes(anchor, codec, bytes);
}

StatusOr<DiskIndex> OpenIndexBytes(const IndexAnchor& anchor, Codec codec, std::string_view bytes) {
  if (bytes.size() != anchor.uncompressed_length) return Bad("the index is not the anchored length");
  const std::string got = Sha256::HexOf(bytes);
  if (got != anchor.digest.hex()) {
    return Bad("digest mismatch: the layer annotation says " + anchor.digest.str() + ", the index is sha256:" + got);
  }
  ASSIGN_OR_RETURN(DiskIndex index, DecodeIndex(bytes, anchor.offset));
  if (index.chunk_size != anchor.chunk_size) return Bad("chunk size differs from the layer annotation");
  if (index.codec != codec) return Bad("compression differs from the layer media type");
  return index;
}

std::optional<size_t> FindEntry(const DiskIndex& index, uint64_t offset) {
  auto it = std::upper_bound(index.entries.begin(), index.entries.end(), offset,
                             [](uint64_t off, const IndexEntry& e) { return off < e.disk_offset; });
  if (it == index.entries.begin()) return std::nullopt;
  --it;
  if (offset - it->disk_offset >= it->length) return std::nullopt;
  return static_cast<size_t>(it - index.entries.begin());
}

}  // namespace regdisk::layer
