#include "layer/chunk_reader.h"

#include <libdeflate.h>
#include <zstd.h>

#include <memory>

#include "util/sha256.h"

namespace regdisk::layer {

StatusOr<std::string> DecodeMember(Codec codec, std::string_view member, uint64_t expected_len) {
  // The index is the largest member a reader decodes.
  if (expected_len > kMaxIndexBytes) return Corrupt("member: expected length out of bounds");
  std::string out(expected_len, '\0');
  switch (codec) {
    case Codec::kNone:
      if (member.size() != expected_len) return Corrupt("member: length differs from the index");
      out.assign(member);
      return out;
    case Codec::kGzip: {
      std::unique_ptr<libdeflate_decompressor, decltype(&libdeflate_free_decompressor)> d(
          libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
      if (d == nullptr) return Internal("libdeflate: cannot allocate a decompressor");
      size_t in_used = 0, out_len = 0;
      // out_len: a member that gives fewer bytes is reported, not padded.
      const libdeflate_result r = libdeflate_gzip_decompress_ex(
          d.get(), member.data(), member.size(), out.data(), out.size(), &in_used, &out_len);
      if (r == LIBDEFLATE_INSUFFICIENT_SPACE) return Corrupt("gzip member: more bytes than the index says");
      if (r != LIBDEFLATE_SUCCESS) return Corrupt("gzip member: corrupt");
      if (out_len != expected_len) return Corrupt("gzip member: fewer bytes than the index says");
      if (in_used != member.size()) return Corrupt("gzip member: trailing bytes after the member");
      return out;
    }
    case Codec::kZstd: {
      const size_t frame = ZSTD_findFrameCompressedSize(member.data(), member.size());
      if (ZSTD_isError(frame)) return Corrupt(std::string("zstd frame: ") + ZSTD_getErrorName(frame));
      if (frame != member.size()) return Corrupt("zstd frame: trailing bytes after the frame");
      const unsigned long long content = ZSTD_getFrameContentSize(member.data(), member.size());
      if (content != expected_len) return Corrupt("zstd frame: its content size is not what the index says");
      const size_t n = ZSTD_decompress(out.data(), out.size(), member.data(), member.size());
      if (ZSTD_isError(n)) return Corrupt(std::string("zstd frame: ") + ZSTD_getErrorName(n));
      if (n != expected_len) return Corrupt("zstd frame: fewer bytes than the index says");
      return out;
    }
  }
  return Internal("member: unknown codec");
}

Status CheckChunk(const IndexEntry& e, std::string_view bytes) {
  const std::string where = "chunk at disk offset " + std::to_string(e.disk_offset);
  if (bytes.size() != e.length) return Corrupt(where + ": wrong length");
  const std::string got = Sha256::HexOf(bytes);
  if (got != ShaHex(e.sha256)) return Corrupt(where + ": sha256 " + got + " does not match the index's " + ShaHex(e.sha256));
  return OkStatus();
}

StatusOr<std::string> ReadChunk(const BlobReadAt& read, Codec codec, const IndexEntry& e) {
  const std::string where = "chunk at disk offset " + std::to_string(e.disk_offset);
  if (e.zero()) return InvalidArgument(where + ": a zero extent has no chunk");
  if (e.length > kMaxChunkSize || e.blob_length > MaxMemberBytes(e.length)) {
    return InvalidArgument(where + ": entry out of bounds");
  }
  std::string member(e.blob_length, '\0');
  Status st = read(e.blob_offset, member.data(), member.size());
  if (!st.ok()) return st.Annotate("reading " + where);
  auto bytes = DecodeMember(codec, member, e.length);
  if (!bytes.ok()) return bytes.status().Annotate(where);
  RETURN_IF_ERROR(CheckChunk(e, *bytes));
  return bytes;
}

}  // namespace regdisk::layer
