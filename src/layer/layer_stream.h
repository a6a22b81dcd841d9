// One layer's bytes as a tar reader takes them: the blob is read and
// decompressed on a thread of its own while the caller's thread hashes the
// uncompressed bytes (the diff_id) and uses them, so decompression overlaps
// the hashing, tar parsing and writing of the pieces before. The compressed
// side is hashed only when the blob reader does not check the layer digest
// itself (oci::OpenBlob's does).
//
// Memory: kStreamSlots pieces of kStreamPiece bytes, plus the
// decompressor's own. Not thread-safe: one caller thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "layer/decompressor.h"
#include "oci/store.h"
#include "util/sha256.h"
#include "util/status.h"

namespace regdisk::layer {

// Uncompressed bytes per piece handed out, and compressed bytes per read.
inline constexpr size_t kStreamPiece = 1 << 20;
// Pieces decoded ahead of the caller: one being decoded, one being used,
// one ready in between keeps both threads busy.
inline constexpr size_t kStreamSlots = 3;

class LayerStream {
 public:
  // `on_bytes` (if set) is told, on the caller's thread, how many
  // compressed bytes each piece took. More than `max_bytes` uncompressed
  // bytes fail (decompression bombs).
  LayerStream(oci::BlobReader& blob, const oci::Descriptor& desc, Codec codec, uint64_t max_bytes,
              const std::function<void(uint64_t)>& on_bytes);
  ~LayerStream();
  LayerStream(const LayerStream&) = delete;
  LayerStream& operator=(const LayerStream&) = delete;

  // The next piece of the uncompressed stream, valid until the next call;
  // empty at the end of the blob.
  StatusOr<std::string_view> Next();

  // After the layer failed to decode: reads the rest of the blob as is and
  // checks it against the descriptor. A blob that does not match its digest
  // was damaged on the way, and that is the error to report rather than the
  // garbage it made of the stream. OK when it matches, or cannot be told.
  Status CheckDigestAfterError(const oci::Descriptor& desc);
  // After Next() returned the end: the size, the layer digest, the diff_id.
  Status Verify(const oci::Descriptor& desc, const oci::Digest& diff_id);

 private:
  struct Slot {
    std::vector<char> data;
    size_t len = 0;
    uint64_t compressed = 0;  // blob bytes read while it was filled
  };
  void Decode();                        // the decoder thread
  StatusOr<size_t> Fill(Slot& slot);    // one piece, 0 at the end (decoder thread)
  StatusOr<size_t> ReadBlob(char* buf, size_t len);
  void Stop();                          // the decoder is joined: its state is the caller's

  oci::BlobReader& blob_;
  const bool blob_verifies_;  // the reader checks the layer digest: not hashed again here
  std::unique_ptr<Decompressor> dec_;
  std::vector<char> in_;
  const char* in_pos_ = nullptr;
  size_t in_len_ = 0;
  bool blob_eof_ = false, verified_ = false;
  Sha256 compressed_, uncompressed_;
  uint64_t compressed_bytes_ = 0, uncompressed_bytes_ = 0, max_;
  const std::function<void(uint64_t)> on_bytes_;

  std::mutex mu_;
  std::condition_variable filled_cv_, free_cv_;
  Slot slots_[kStreamSlots];
  size_t head_ = 0, count_ = 0;  // the caller's slot, and the slots filled (under mu_)
  bool holding_ = false;         // the caller holds slots_[head_]
  bool done_ = false, stop_ = false;
  Status error_;                 // the decoder's, after the filled slots
  std::thread decoder_;
  bool started_ = false;
};

}  // namespace regdisk::layer
