// Streaming compression of a layer's tar stream into a BlobWriter, so that
// LayerWriter makes the diff_id and the compressed blob in one pass.
//
// The output is reproducible: gzip is cut into fixed 1 MiB members with
// libdeflate's fixed header (no name, mtime 0), compressed in parallel; zstd
// always runs in multi-threaded (streaming) mode, whose output is the same
// for any number of workers >= 1 (unlike single-threaded mode, which would
// give different bytes); see facebook/zstd#2238 and #2327.
//
// Chunked mode (LayerOptions::chunk_size > 0, the v2 disk standard): the
// caller decides where members (gzip) or frames (zstd) end with EndMember();
// nothing is cut anywhere else. Both codecs then compress members in
// parallel, zstd one frame per member with ZSTD_compress2 (same bytes for
// any thread count). members() lists each member's sizes, so the caller can
// record where in the blob each one lies, and the sha256 of each member's
// uncompressed bytes, computed on the worker that compresses it (so the
// chunk digests of the v2 index cost the caller's thread nothing). With
// compression none a member is just the byte range between two EndMember()
// calls.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "layer/layer_writer.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::layer {

class Compressor {
 public:
  // Uses options.compression, level and threads (level and threads are
  // checked here). `out` must outlive the compressor.
  static StatusOr<std::unique_ptr<Compressor>> Create(const LayerOptions& options,
                                                      oci::BlobWriter* out);
  virtual ~Compressor() = default;
  virtual Status Write(const void* data, size_t len) = 0;
  // Ends the stream (gzip trailer, zstd epilogue). No Write afterwards.
  virtual Status Finish() = 0;

  // Chunked mode only. Ends the current member; a no-op when nothing was
  // written since the last one ended.
  virtual Status EndMember() = 0;
  // Chunked mode only. Waits until every ended member is in the blob.
  virtual Status Flush() = 0;

  // The sizes of each member written to the blob so far, in blob order
  // (chunked mode; empty otherwise).
  struct Member {
    uint64_t in = 0;   // uncompressed bytes
    uint64_t out = 0;  // bytes in the blob
    std::array<uint8_t, 32> sha256{};  // of the uncompressed bytes
  };
  const std::vector<Member>& members() const { return members_; }

 protected:
  std::vector<Member> members_;
};

}  // namespace regdisk::layer
