// The streaming blob reader: a GET whose body is pulled by Read() (memory
// stays bounded, see http::Stream), hashed as it goes, and checked at the
// end: Read returns a Corrupt error instead of the final 0 when the size or
// the digest differ. A connection that breaks (or goes quiet for
// stall_timeout) is replaced by a new GET with "Range: bytes=OFFSET-", up to
// retry_times times in a row without progress.
#include <cctype>
#include <cstring>

#include "registry/blob_io.h"
#include "registry/errors.h"
#include "util/sha256.h"

namespace regdisk::registry {

std::optional<uint64_t> ParseSize(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

namespace {

class BlobReader : public oci::BlobReader {
 public:
  BlobReader(BlobTarget target, const oci::Digest& digest)
      : target_(std::move(target)), digest_(digest),
        call_{.url = target_.BlobPath(digest), .scopes = target_.scopes, .follow_redirects = true,
              .repository = target_.repository, .what = "blob " + digest.str()} {}

  // The first GET (or `first`, a whole-body answer already open): learns
  // the size.
  Status Start(std::unique_ptr<http::Stream> first) {
    if (first) {
      stream_ = std::move(first);
    } else {
      ASSIGN_OR_RETURN(stream_, Connect());
    }
    auto size = ParseSize(stream_->head().Header("content-length"));
    if (!size) return Unsupported(Prefix(target_.registry->host(), target_.repository) + call_.what +
                                  ": the answer has no Content-Length");
    size_ = *size;
    return OkStatus();
  }

  uint64_t size() const override { return size_; }
  std::optional<oci::Digest> verifies() const override { return digest_; }

  StatusOr<size_t> Read(void* buf, size_t len) override {
    RETURN_IF_ERROR(error_);
    if (finished_) return 0;
    auto n = ReadSome(buf, len);
    if (!n.ok()) error_ = n.status();
    return n;
  }

 private:
  StatusOr<size_t> ReadSome(void* buf, size_t len) {
    Registry& registry = *target_.registry;
    for (int failures = 0;;) {
      if (!stream_) {
        ASSIGN_OR_RETURN(stream_, Connect());
      }
      StatusOr<size_t> n = stream_->Read(buf, len);
      if (!n.ok()) {
        stream_.reset();
        if (n.status().code() == Code::kUnavailable && failures < registry.options().retry_times) {
          registry.Backoff(failures++, nullptr);
          continue;  // resume from offset_
        }
        return registry.TransportError(call_, n.status());
      }
      if (*n == 0) return Finish();
      if (*n > size_ - offset_) return Corrupt(Where() + " is longer than its size " + std::to_string(size_));
      hash_.Update(buf, *n);
      offset_ += *n;
      return *n;
    }
  }

  // A GET from offset_, positioned there even if the server ignores Range.
  StatusOr<std::unique_ptr<http::Stream>> Connect() {
    Call call = call_;
    if (offset_ > 0) call.headers.push_back("Range: bytes=" + std::to_string(offset_) + "-");
    Registry& registry = *target_.registry;
    ASSIGN_OR_RETURN(std::unique_ptr<http::Stream> s, registry.Open(call));
    long status = s->head().status;
    if (status == 200 && offset_ > 0) {  // the whole blob again: skip what we have
      std::vector<char> skip(64 << 10);
      for (uint64_t left = offset_; left > 0;) {
        auto n = s->Read(skip.data(), std::min<uint64_t>(left, skip.size()));
        if (!n.ok()) return registry.TransportError(call, n.status());
        if (*n == 0) return Corrupt(Where() + " ended early when read again");
        left -= *n;
      }
    } else if (status == 206 && offset_ > 0) {
      std::string range = s->head().Header("content-range");
      if (!range.starts_with("bytes " + std::to_string(offset_) + "-")) {
        return Corrupt(Where() + ": asked for bytes from " + std::to_string(offset_) + ", got \"" +
                       OneLine(range, 80) + "\"");
      }
    } else if (status != 200) {
      return registry.ResponseError(call, s->head());
    }
    return s;
  }

  // At the end of the body: the size and digest decide.
  StatusOr<size_t> Finish() {
    stream_.reset();
    if (offset_ != size_) {
      return Corrupt(Where() + " ended after " + std::to_string(offset_) + " of " + std::to_string(size_) + " bytes");
    }
    oci::Digest got = oci::Digest::FromHex(hash_.FinishHex());
    if (got != digest_) return Corrupt(Where() + " does not match its digest: the content has digest " + got.str());
    finished_ = true;
    return size_t{0};
  }

  std::string Where() const {
    return Prefix(target_.registry->host(), target_.repository) + "blob " + digest_.str();
  }

  BlobTarget target_;
  oci::Digest digest_;
  Call call_;
  std::unique_ptr<http::Stream> stream_;
  uint64_t size_ = 0, offset_ = 0;
  Sha256 hash_;
  bool finished_ = false;
  Status error_;
};

}  // namespace

StatusOr<bool> BlobExists(const BlobTarget& target, const oci::Digest& digest) {
  Call call{.method = "HEAD", .url = target.BlobPath(digest), .scopes = target.scopes, .follow_redirects = true,
            .repository = target.repository, .what = "blob " + digest.str()};
  ASSIGN_OR_RETURN(http::Response r, target.registry->Do(call));
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  return target.registry->ResponseError(call, r);
}

StatusOr<std::unique_ptr<oci::BlobReader>> OpenStreamReader(BlobTarget target, const oci::Digest& digest,
                                                             std::unique_ptr<http::Stream> first) {
  auto reader = std::make_unique<BlobReader>(std::move(target), digest);
  RETURN_IF_ERROR(reader->Start(std::move(first)));
  return std::unique_ptr<oci::BlobReader>(std::move(reader));
}

StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlobReader(BlobTarget target, const oci::Digest& digest) {
  int parallel = target.registry->options().parallel;
  if (parallel > 1) return OpenRangedReader(std::move(target), digest, parallel);
  return OpenStreamReader(std::move(target), digest, nullptr);
}

}  // namespace regdisk::registry
