// Streaming compression of a layer's tar stream into a BlobWriter, so that
// LayerWriter makes the diff_id and the compressed blob in one pass.
//
// The output is reproducible: gzip is cut into fixed 1 MiB members with
// libdeflate's fixed header (no name, mtime 0), compressed in parallel; zstd
// always runs in multi-threaded (streaming) mode, whose output is the same
// for any number of workers >= 1 (unlike single-threaded mode, which would
// give different bytes); see facebook/zstd#2238 and #2327.
#pragma once

#include <cstddef>
#include <memory>

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
};

}  // namespace regdisk::layer
