#include "layer/layer_stream.h"

#include <string>

namespace regdisk::layer {

LayerStream::LayerStream(oci::BlobReader& blob, const oci::Descriptor& desc, Codec codec, uint64_t max_bytes,
                         const std::function<void(uint64_t)>& on_bytes)
    : blob_(blob), blob_verifies_(blob.verifies() == desc.digest), dec_(Decompressor::Create(codec)),
      in_(kStreamPiece), max_(max_bytes), on_bytes_(on_bytes) {}

LayerStream::~LayerStream() { Stop(); }

void LayerStream::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  free_cv_.notify_all();
  if (decoder_.joinable()) decoder_.join();
}

StatusOr<std::string_view> LayerStream::Next() {
  if (!started_) {
    started_ = true;
    decoder_ = std::thread([this] { Decode(); });
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (holding_) {  // the caller is done with the last piece
    holding_ = false;
    head_ = (head_ + 1) % kStreamSlots;
    --count_;
    free_cv_.notify_all();
  }
  filled_cv_.wait(lock, [&] { return count_ > 0 || done_; });
  if (count_ == 0) {
    RETURN_IF_ERROR(error_);
    return std::string_view();
  }
  holding_ = true;
  Slot& slot = slots_[head_];
  lock.unlock();
  // A filled slot is the caller's alone until it lets go of it.
  uncompressed_.Update(slot.data.data(), slot.len);
  if (on_bytes_ && slot.compressed > 0) on_bytes_(slot.compressed);
  return std::string_view(slot.data.data(), slot.len);
}

void LayerStream::Decode() {
  for (size_t tail = 0;; tail = (tail + 1) % kStreamSlots) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      free_cv_.wait(lock, [&] { return stop_ || count_ < kStreamSlots; });
      if (stop_) return;
    }
    Slot& slot = slots_[tail];
    if (slot.data.empty()) slot.data.resize(kStreamPiece);
    const uint64_t before = compressed_bytes_;
    StatusOr<size_t> n = Fill(slot);
    std::lock_guard<std::mutex> lock(mu_);
    if (!n.ok() || *n == 0) {
      error_ = n.status();
      done_ = true;
      filled_cv_.notify_all();
      return;
    }
    slot.len = *n;
    slot.compressed = compressed_bytes_ - before;
    ++count_;
    filled_cv_.notify_all();
  }
}

StatusOr<size_t> LayerStream::ReadBlob(char* buf, size_t len) {
  ASSIGN_OR_RETURN(size_t n, blob_.Read(buf, len));
  if (n == 0) blob_eof_ = true;
  if (!blob_verifies_) compressed_.Update(buf, n);
  compressed_bytes_ += n;
  return n;
}

StatusOr<size_t> LayerStream::Fill(Slot& slot) {
  for (int idle = 0;;) {
    if (in_len_ == 0 && !blob_eof_) {
      ASSIGN_OR_RETURN(in_len_, ReadBlob(in_.data(), in_.size()));
      in_pos_ = in_.data();
    }
    size_t before = in_len_;
    ASSIGN_OR_RETURN(size_t produced, dec_->Decompress(&in_pos_, &in_len_, slot.data.data(), slot.data.size()));
    if (produced > 0) {
      uncompressed_bytes_ += produced;
      if (uncompressed_bytes_ > max_) {
        return InvalidArgument("layer decompresses to more than the limit of " + std::to_string(max_) +
                               " bytes (decompression bomb?)");
      }
      return produced;
    }
    if (blob_eof_ && in_len_ == 0) {
      if (!dec_->AtEnd()) return Corrupt("layer is truncated: compressed stream ends early");
      return size_t{0};
    }
    // No output and no input used, twice: the decompressor is stuck.
    idle = in_len_ == before && in_len_ > 0 ? idle + 1 : 0;
    if (idle > 1) return Corrupt("layer stream is corrupt: decompressor makes no progress");
  }
}

Status LayerStream::CheckDigestAfterError(const oci::Descriptor& desc) {
  Stop();
  if (verified_) return OkStatus();  // Verify() judged the digests already
  verified_ = true;
  while (!blob_eof_ && compressed_bytes_ <= desc.size) {
    auto n = ReadBlob(in_.data(), in_.size());
    if (!n.ok()) return n.status().code() == Code::kCorrupt ? n.status() : OkStatus();
  }
  in_len_ = 0;
  if (compressed_bytes_ != desc.size ||
      (!blob_verifies_ && oci::Digest::FromHex(compressed_.FinishHex()) != desc.digest)) {
    return Corrupt("layer " + desc.digest.str() + " does not match its digest (damaged in transit?)");
  }
  return OkStatus();
}

Status LayerStream::Verify(const oci::Descriptor& desc, const oci::Digest& diff_id) {
  Stop();
  verified_ = true;
  if (compressed_bytes_ != desc.size) {
    return Corrupt("layer " + desc.digest.str() + " has " + std::to_string(compressed_bytes_) +
                   " bytes, the manifest says " + std::to_string(desc.size));
  }
  // A verifying blob has checked its digest before its final 0.
  if (!blob_verifies_ && oci::Digest::FromHex(compressed_.FinishHex()) != desc.digest) {
    return Corrupt("layer " + desc.digest.str() + " does not match its digest");
  }
  if (oci::Digest::FromHex(uncompressed_.FinishHex()) != diff_id) {
    return Corrupt("layer " + desc.digest.str() + " does not match its diff_id " + diff_id.str());
  }
  return OkStatus();
}

}  // namespace regdisk::layer
