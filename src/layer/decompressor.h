// Streaming decompression of layer blobs: gzip (several members allowed, as
// pigz and parallel gzip writers produce), zstd, or none. The codec comes
// from the media type and is checked against the stream's magic bytes, so
// a blob cannot be decoded as something other than what it claims to be.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "util/status.h"

namespace regdisk::layer {

enum class Codec { kNone, kGzip, kZstd };
// From a layer media type (OCI or Docker); error for unknown ones.
StatusOr<Codec> CodecForMediaType(std::string_view media_type);

class Decompressor {
 public:
  static std::unique_ptr<Decompressor> Create(Codec codec);
  virtual ~Decompressor() = default;
  // Consumes input from [*in, *in + *in_len) and writes up to `out_len`
  // bytes to `out`; advances *in / *in_len; returns the bytes written.
  // Input may be fed in pieces of any size; it may be held back (gzip
  // gathers whole members) and come out of later calls. A call with
  // *in_len == 0 says the input has ended: call again until it returns 0,
  // then ask AtEnd().
  virtual StatusOr<size_t> Decompress(const char** in, size_t* in_len, char* out, size_t out_len) = 0;
  // True when the input so far ends exactly at the end of a frame/member.
  virtual bool AtEnd() const = 0;
};

}  // namespace regdisk::layer
