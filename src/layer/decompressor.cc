#include "layer/decompressor.h"

#include <zlib.h>
#include <zstd.h>

#include <cstring>

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

class Gzip : public Decompressor {
 public:
  Gzip() {
    std::memset(&z_, 0, sizeof z_);
    ok_ = inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;  // gzip only
  }
  ~Gzip() override { inflateEnd(&z_); }
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
    size_t produced = 0;
    while (produced < out_len && *in_len > 0) {
      if (at_end_) {
        // Another gzip member follows.
        inflateReset(&z_);
        at_end_ = false;
      }
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(*in));
      z_.avail_in = static_cast<uInt>(std::min<size_t>(*in_len, 1u << 30));
      z_.next_out = reinterpret_cast<Bytef*>(out + produced);
      z_.avail_out = static_cast<uInt>(std::min<size_t>(out_len - produced, 1u << 30));
      uInt before_in = z_.avail_in, before_out = z_.avail_out;
      int rc = inflate(&z_, Z_NO_FLUSH);
      size_t used = before_in - z_.avail_in;
      *in += used;
      *in_len -= used;
      produced += before_out - z_.avail_out;
      if (rc == Z_STREAM_END) {
        at_end_ = true;
      } else if (rc == Z_BUF_ERROR) {
        break;
      } else if (rc != Z_OK) {
        return Corrupt(std::string("gzip stream is corrupt: ") + (z_.msg ? z_.msg : "inflate error"));
      }
    }
    return produced;
  }
  bool AtEnd() const override { return at_end_; }

 private:
  z_stream z_;
  bool ok_ = false, at_end_ = false, checked_magic_ = false;
  unsigned char magic_[2];
  size_t magic_len_ = 0;
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
