#include "layer/compressor.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace regdisk::layer {
namespace {

constexpr size_t kOutBuffer = 1 << 20;

class NoneCompressor final : public Compressor {
 public:
  explicit NoneCompressor(oci::BlobWriter* out) : out_(out) {}
  Status Write(const void* data, size_t len) override { return out_->Write(data, len); }
  Status Finish() override { return OkStatus(); }

 private:
  oci::BlobWriter* out_;
};

// gzip through zlib: one member, zlib's default header (no name, mtime 0,
// OS byte 3), so the same input and level always give the same bytes.
class GzipCompressor final : public Compressor {
 public:
  explicit GzipCompressor(oci::BlobWriter* out) : out_(out), buf_(kOutBuffer) {}
  ~GzipCompressor() override {
    if (initialized_) deflateEnd(&z_);
  }

  Status Init(int level) {
    if (deflateInit2(&z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return Internal("gzip: deflateInit2 failed");
    }
    initialized_ = true;
    return OkStatus();
  }

  Status Write(const void* data, size_t len) override {
    auto* p = static_cast<const Bytef*>(data);
    while (len > 0) {  // avail_in is 32 bits
      const uInt n = static_cast<uInt>(std::min<size_t>(len, 1u << 30));
      z_.next_in = const_cast<Bytef*>(p);
      z_.avail_in = n;
      RETURN_IF_ERROR(Deflate(Z_NO_FLUSH));
      p += n;
      len -= n;
    }
    return OkStatus();
  }

  Status Finish() override { return Deflate(Z_FINISH); }

 private:
  // Runs deflate until the input is consumed (Z_FINISH: until the stream
  // ends), writing out what it produces.
  Status Deflate(int flush) {
    int rc;
    do {
      z_.next_out = buf_.data();
      z_.avail_out = static_cast<uInt>(buf_.size());
      rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) return Internal("gzip: deflate failed");
      const size_t produced = buf_.size() - z_.avail_out;
      if (produced > 0) RETURN_IF_ERROR(out_->Write(buf_.data(), produced));
    } while (flush == Z_FINISH ? rc != Z_STREAM_END : z_.avail_in > 0);
    return OkStatus();
  }

  oci::BlobWriter* out_;
  std::vector<Bytef> buf_;
  z_stream z_{};
  bool initialized_ = false;
};

class ZstdCompressor final : public Compressor {
 public:
  explicit ZstdCompressor(oci::BlobWriter* out)
      : out_(out), buf_(kOutBuffer), cctx_(ZSTD_createCCtx()) {}
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }

  Status Init(int level, int workers) {
    if (cctx_ == nullptr) return Internal("zstd: cannot create a compression context");
    size_t rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, workers);
    if (ZSTD_isError(rc)) return Internal(std::string("zstd: ") + ZSTD_getErrorName(rc));
    return OkStatus();
  }

  Status Write(const void* data, size_t len) override {
    ZSTD_inBuffer in{data, len, 0};
    while (in.pos < in.size) RETURN_IF_ERROR(Compress(&in, ZSTD_e_continue));
    return OkStatus();
  }

  Status Finish() override {
    ZSTD_inBuffer in{nullptr, 0, 0};
    return Compress(&in, ZSTD_e_end);
  }

 private:
  // One ZSTD_compressStream2 call, or for ZSTD_e_end as many as it takes to
  // flush the frame; writes out what it produces.
  Status Compress(ZSTD_inBuffer* in, ZSTD_EndDirective directive) {
    size_t remaining;
    do {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      remaining = ZSTD_compressStream2(cctx_, &out, in, directive);
      if (ZSTD_isError(remaining)) return Internal(std::string("zstd: ") + ZSTD_getErrorName(remaining));
      if (out.pos > 0) RETURN_IF_ERROR(out_->Write(buf_.data(), out.pos));
    } while (directive == ZSTD_e_end && remaining != 0);
    return OkStatus();
  }

  oci::BlobWriter* out_;
  std::vector<char> buf_;
  ZSTD_CCtx* cctx_;
};

}  // namespace

StatusOr<std::unique_ptr<Compressor>> Compressor::Create(const LayerOptions& options,
                                                         oci::BlobWriter* out) {
  const int level = options.level;
  if (options.threads < 0) {
    return InvalidArgument("compression threads " + std::to_string(options.threads) +
                           ": expected 0 (one per core) or more");
  }
  switch (options.compression) {
    case Compression::kNone:
      return std::unique_ptr<Compressor>(new NoneCompressor(out));
    case Compression::kGzip: {
      if (level != -1 && (level < 1 || level > 9)) {
        return InvalidArgument("gzip level " + std::to_string(level) + ": expected 1..9");
      }
      auto c = std::make_unique<GzipCompressor>(out);
      RETURN_IF_ERROR(c->Init(level == -1 ? 6 : level));
      return std::unique_ptr<Compressor>(std::move(c));
    }
    case Compression::kZstd: {
      if (level != -1 && (level < 1 || level > ZSTD_maxCLevel())) {
        return InvalidArgument("zstd level " + std::to_string(level) + ": expected 1.." +
                               std::to_string(ZSTD_maxCLevel()));
      }
      const int workers = options.threads > 0
                              ? options.threads
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
      auto c = std::make_unique<ZstdCompressor>(out);
      RETURN_IF_ERROR(c->Init(level == -1 ? 3 : level, workers));
      return std::unique_ptr<Compressor>(std::move(c));
    }
  }
  return InvalidArgument("unknown compression " +
                         std::to_string(static_cast<int>(options.compression)));
}

}  // namespace regdisk::layer
