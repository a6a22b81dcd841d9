#include "lazy/chunk_map.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "layer/disk_index.h"
#include "util/fs.h"

namespace regdisk::lazy {
namespace {

uint64_t MapBytes(uint64_t entries) { return kChunkMapHeaderBytes + (entries + 7) / 8; }

void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

std::string RawDigest(const oci::Digest& d) {
  auto sha = layer::ShaFromHex(d.hex());
  return std::string(reinterpret_cast<const char*>(sha.data()), sha.size());
}

}  // namespace

StatusOr<std::vector<uint8_t>> DecodeChunkMap(std::string_view bytes, const oci::Digest& index_digest,
                                              uint64_t entries) {
  if (entries > layer::kMaxIndexEntries) return Corrupt("chunk map: more entries than an index may have");
  if (bytes.size() != MapBytes(entries)) return Corrupt("chunk map: wrong size");
  if (std::memcmp(bytes.data(), kChunkMapMagic, 8) != 0) return Corrupt("chunk map: bad magic");
  if (GetU64(bytes.data() + 8) != entries) return Corrupt("chunk map: for another entry count");
  if (bytes.substr(16, 32) != RawDigest(index_digest)) return Corrupt("chunk map: for another index");
  bytes.remove_prefix(kChunkMapHeaderBytes);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::string EncodeChunkMap(const std::vector<uint8_t>& bits, const oci::Digest& index_digest, uint64_t entries) {
  std::string out(kChunkMapHeaderBytes, '\0');
  std::memcpy(out.data(), kChunkMapMagic, 8);
  PutU64(out.data() + 8, entries);
  std::string raw = RawDigest(index_digest);
  std::memcpy(out.data() + 16, raw.data(), raw.size());
  out.append(reinterpret_cast<const char*>(bits.data()), bits.size());
  return out;
}

StatusOr<std::vector<uint8_t>> ReadChunkMap(const std::string& path, const oci::Digest& index_digest,
                                            uint64_t entries) {
  if (entries > layer::kMaxIndexEntries) return InvalidArgument("chunk map: more entries than an index may have");
  // One byte more than a valid map, so that a longer file is seen as such.
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, MapBytes(entries) + 1));
  return DecodeChunkMap(text, index_digest, entries);
}

StatusOr<std::unique_ptr<ChunkMap>> ChunkMap::Open(const std::string& path, const oci::Digest& index_digest,
                                                   uint64_t entries) {
  if (entries > layer::kMaxIndexEntries) return InvalidArgument("chunk map: more entries than an index may have");
  std::vector<uint8_t> bits;
  if (auto read = ReadChunkMap(path, index_digest, entries); read.ok()) bits = std::move(*read);
  bool fresh = bits.empty();
  if (fresh) {
    bits.assign((entries + 7) / 8, 0);
    RETURN_IF_ERROR(WriteFileAtomic(path, EncodeChunkMap(bits, index_digest, entries), 0644));
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return IoError("opening " + path, errno);
  return std::unique_ptr<ChunkMap>(new ChunkMap(fd, std::move(bits)));
}

ChunkMap::~ChunkMap() { ::close(fd_); }

bool ChunkMap::Has(size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ChunkMapBit(bits_, i);
}

Status ChunkMap::Set(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  if (i / 8 >= bits_.size()) return InvalidArgument("chunk map: entry " + std::to_string(i) + " out of range");
  bits_[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  return PwriteAll(fd_, &bits_[i / 8], 1, kChunkMapHeaderBytes + i / 8, "chunk map");
}

}  // namespace regdisk::lazy
