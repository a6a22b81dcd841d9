#include "layer/decompressor.h"

#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "oci/media_types.h"

namespace regdisk::layer {
namespace {

class Passthrough : public Decompressor {
 public:
  StatusOr<size_t> Decompress(const char** in, size_t* in_len, char* out, size_t out_len) override {
    size_t n = std::min(*in_len, out_len);
    std::memcpy(out, *in, n);
    *in += n;
    *in_len -= n;
    return n;
  }
  bool AtEnd() const override { return true; }
};

// The largest gzip member decoded whole by libdeflate, about three times
// as fast as zlib's streaming inflate: regdisk's writers cut gzip into
// members of 1 MiB of tar (v1alpha) or one chunk (v2, 1 MiB by default).
// Larger members (other tools write one member for the whole layer) are
// streamed through zlib, as every member was before.
constexpr size_t kFastMember = 1 << 20;
// Compressed bytes held to find whole members in: a member of kFastMember
// bytes stored raw takes kFastMember plus 5 bytes per 64 KiB block and its
// header and trailer, so twice that always holds one whole member and the
// start of the next.
constexpr size_t kStage = 2 * kFastMember + (64 << 10);

// Gzip members: each decoded whole with libdeflate when it is small enough
// (the stage holds it and it decodes to at most kFastMember bytes), else
// streamed by zlib. Both check each member's CRC-32 and size; anything
// libdeflate does not decode whole (a big member, a truncated or corrupt
// one) goes to zlib, so zlib's verdict and messages are the reference.
class Gzip : public Decompressor {
 public:
  Gzip() : fast_(libdeflate_alloc_decompressor()) {
    std::memset(&z_, 0, sizeof z_);
    ok_ = fast_ != nullptr && inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;  // gzip only
  }
  ~Gzip() override {
    inflateEnd(&z_);
    libdeflate_free_decompressor(fast_);
  }
  StatusOr<size_t> Decompress(const char** in, size_t* in_len, char* out, size_t out_len) override {
    if (!ok_) return Internal("zlib init failed");
    if (!checked_magic_ && *in_len > 0) {
      size_t take = std::min<size_t>(2 - magic_len_, *in_len);
      std::memcpy(magic_ + magic_len_, *in, take);
      magic_len_ += take;
      if (magic_len_ == 2) {
        if (magic_[0] != 0x1f || magic_[1] != 0x8b) return Corrupt("layer is not gzip (bad magic bytes)");
        checked_magic_ = true;
      }
    }
    if (ready_pos_ < ready_.size()) return HandOut(out, out_len);
    const bool ended = *in_len == 0;
    while (!streaming_) {
      // Top up the stage; decode from it once it is full or the input ended.
      if (stage_end_ == kStage && stage_pos_ > 0) Compact();
      size_t take = std::min(*in_len, kStage - stage_end_);
      if (stage_.empty() && take > 0) stage_.resize(kStage);
      if (take > 0) std::memcpy(stage_.data() + stage_end_, *in, take);
      stage_end_ += take;
      *in += take;
      *in_len -= take;
      if (stage_pos_ == stage_end_ || (stage_end_ < kStage && !ended)) return size_t{0};
      at_end_ = false;
      if (auto n = DecodeWhole(out, out_len)) {
        if (*n > 0) return *n;
        continue;  // an empty member
      }
      if (stage_pos_ > 0 && !ended) {  // a member cut by the stage's end: refill, try again
        Compact();
        continue;
      }
      streaming_ = true;  // too big, truncated or corrupt: zlib decides
      inflateReset(&z_);
    }
    // zlib reads the stage's bytes first, then the caller's.
    const bool from_stage = stage_pos_ < stage_end_;
    const char* src = from_stage ? stage_.data() + stage_pos_ : *in;
    size_t src_len = from_stage ? stage_end_ - stage_pos_ : *in_len;
    size_t produced = 0;
    ASSIGN_OR_RETURN(bool member_end, Inflate(&src, &src_len, out, out_len, &produced));
    if (from_stage) {
      stage_pos_ = stage_end_ - src_len;
    } else {
      *in = src;
      *in_len = src_len;
    }
    if (member_end) {
      streaming_ = false;
      at_end_ = true;
    }
    return produced;
  }
  bool AtEnd() const override {
    return at_end_ && !streaming_ && stage_pos_ == stage_end_ && ready_pos_ == ready_.size();
  }

 private:
  // The member at the stage's front, decoded whole into `out` (or ready_
  // when `out` is smaller than a member may be); nullopt when libdeflate
  // cannot (it is incomplete, bigger than kFastMember, or bad).
  std::optional<size_t> DecodeWhole(char* out, size_t out_len) {
    const bool direct = out_len >= kFastMember;
    if (!direct) ready_.resize(kFastMember);
    size_t used = 0, produced = 0;
    libdeflate_result r = libdeflate_gzip_decompress_ex(fast_, stage_.data() + stage_pos_, stage_end_ - stage_pos_,
                                                        direct ? out : ready_.data(), kFastMember, &used, &produced);
    if (r != LIBDEFLATE_SUCCESS) {
      ready_.clear();
      return std::nullopt;
    }
    stage_pos_ += used;
    at_end_ = true;
    if (direct) return produced;
    ready_.resize(produced);
    ready_pos_ = 0;
    return HandOut(out, out_len);
  }

  size_t HandOut(char* out, size_t out_len) {
    size_t n = std::min(out_len, ready_.size() - ready_pos_);
    std::memcpy(out, ready_.data() + ready_pos_, n);
    ready_pos_ += n;
    if (ready_pos_ == ready_.size()) {
      ready_.clear();
      ready_pos_ = 0;
    }
    return n;
  }

  // Moves the undecoded bytes to the stage's start.
  void Compact() {
    std::memmove(stage_.data(), stage_.data() + stage_pos_, stage_end_ - stage_pos_);
    stage_end_ -= stage_pos_;
    stage_pos_ = 0;
  }

  // zlib on one member: true once it ended.
  StatusOr<bool> Inflate(const char** in, size_t* in_len, char* out, size_t out_len, size_t* produced) {
    while (*produced < out_len && *in_len > 0) {
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(*in));
      z_.avail_in = static_cast<uInt>(std::min<size_t>(*in_len, 1u << 30));
      z_.next_out = reinterpret_cast<Bytef*>(out + *produced);
      z_.avail_out = static_cast<uInt>(std::min<size_t>(out_len - *produced, 1u << 30));
      uInt before_in = z_.avail_in, before_out = z_.avail_out;
      int rc = inflate(&z_, Z_NO_FLUSH);
      size_t used = before_in - z_.avail_in;
      *in += used;
      *in_len -= used;
      *produced += before_out - z_.avail_out;
      if (rc == Z_STREAM_END) return true;
      if (rc == Z_BUF_ERROR) break;
      if (rc != Z_OK) return Corrupt(std::string("gzip stream is corrupt: ") + (z_.msg ? z_.msg : "inflate error"));
    }
    return false;
  }

  z_stream z_;
  libdeflate_decompressor* fast_;
  bool ok_ = false, at_end_ = false, checked_magic_ = false;
  bool streaming_ = false;  // zlib is inside a member
  unsigned char magic_[2];
  size_t magic_len_ = 0;
  std::vector<char> stage_;            // compressed bytes [stage_pos_, stage_end_) not yet decoded
  size_t stage_pos_ = 0, stage_end_ = 0;
  std::vector<char> ready_;            // a member decoded for a small `out`, handed out from ready_pos_
  size_t ready_pos_ = 0;
};

class Zstd : public Decompressor {
 public:
  Zstd() : d_(ZSTD_createDStream()) {}
  ~Zstd() override { ZSTD_freeDStream(d_); }
  StatusOr<size_t> Decompress(const char** in, size_t* in_len, char* out, size_t out_len) override {
    if (!checked_magic_ && *in_len > 0) {
      size_t take = std::min<size_t>(4 - magic_len_, *in_len);
      std::memcpy(magic_ + magic_len_, *in, take);
      magic_len_ += take;
      if (magic_len_ == 4) {
        static const unsigned char kMagic[4] = {0x28, 0xb5, 0x2f, 0xfd};
        if (std::memcmp(magic_, kMagic, 4) != 0) return Corrupt("layer is not zstd (bad magic bytes)");
        checked_magic_ = true;
      }
    }
    ZSTD_inBuffer ib{*in, *in_len, 0};
    ZSTD_outBuffer ob{out, out_len, 0};
    while (ob.pos < ob.size && ib.pos < ib.size) {
      size_t rc = ZSTD_decompressStream(d_, &ob, &ib);
      if (ZSTD_isError(rc)) return Corrupt(std::string("zstd stream is corrupt: ") + ZSTD_getErrorName(rc));
      at_end_ = rc == 0;
    }
    *in += ib.pos;
    *in_len -= ib.pos;
    return ob.pos;
  }
  bool AtEnd() const override { return at_end_; }

 private:
  ZSTD_DStream* d_;
  bool at_end_ = false, checked_magic_ = false;
  unsigned char magic_[4];
  size_t magic_len_ = 0;
};

}  // namespace

StatusOr<Codec> CodecForMediaType(std::string_view t) {
  if (t == oci::media::kOciLayerTar || t == "application/vnd.docker.image.rootfs.diff.tar") return Codec::kNone;
  if (t == oci::media::kOciLayerGzip || t == oci::media::kDockerLayerGzip) return Codec::kGzip;
  if (t == oci::media::kOciLayerZstd) return Codec::kZstd;
  return Unsupported("unsupported layer media type " + Quote(t));
}

std::unique_ptr<Decompressor> Decompressor::Create(Codec codec) {
  switch (codec) {
    case Codec::kGzip: return std::make_unique<Gzip>();
    case Codec::kZstd: return std::make_unique<Zstd>();
    case Codec::kNone: break;
  }
  return std::make_unique<Passthrough>();
}

}  // namespace regdisk::layer
