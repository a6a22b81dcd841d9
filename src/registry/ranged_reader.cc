// A blob downloaded over several connections at once, as HTTP Range
// requests (Options::parallel): cloud registries and the blob stores behind
// them cap the speed of each stream, not of the client.
//
// The first GET asks for "Range: bytes=0-<kMinSegment-1>". A 200 answer
// means the registry ignores Range: that answer is read as one stream
// (OpenStreamReader), exactly as with parallel = 1. A 206 answer's
// Content-Range gives the size; the rest of the blob is cut into segments,
// fetched by up to `parallel` threads, each segment by its own Range request
// into memory.
//
// Read() hands the segments out in order and hashes the bytes as they join
// the contiguous prefix; the size and the digest are checked at the end, as
// by the single-stream reader (Read returns Corrupt instead of the final 0).
// Memory is bounded: the fetchers never run more than kWindowPerConnection
// segments per connection ahead of the reader, they wait instead. Nothing
// is spilled anywhere: the reader's consumer (the node cache's work file,
// a layout's blob) is where the bytes go, once, in order.
//
// Every segment answer must be a 206 whose Content-Range is exactly the
// range asked for (else bytes would land at the wrong offset) and whose body
// has exactly that many bytes. A wrong range, a short or long body, a 200, or
// a broken connection is retried with a new Range request for the rest of
// that segment, up to retry_times times in a row without progress; then the
// download fails with that error.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "registry/blob_io.h"
#include "registry/errors.h"
#include "util/sha256.h"

namespace regdisk::registry {
namespace {

// The first request's range, and the smallest segment: below this a
// request's own cost (a round trip, headers) is a large share of its time.
constexpr uint64_t kMinSegment = 1 << 20;
// The largest segment: at a capped 50 MiB/s one takes ~40 ms, so a round
// trip per segment (one on loopback or within a region) is a small share,
// while a retried segment costs little.
constexpr uint64_t kMaxSegment = 2 << 20;
// Segments held per connection, fetched or being fetched ahead of the
// reader: one in flight and one waiting its turn keeps every connection
// busy while the reader catches up. Memory: parallel * 2 * kMaxSegment at
// most (16 MiB at the default 4 connections), in buffers reused for the
// whole download; with libcurl's buffers (kStreamBuffer per connection)
// a pull stays within P4's 64 MiB RSS.
constexpr uint64_t kWindowPerConnection = 2;
// The most segments one download is cut into (each costs a small record):
// 1 TiB at kMaxSegment, far past any disk regdisk takes (--max-disk-size).
// A larger size, which only a descriptor can vouch for, is refused rather
// than allocated.
constexpr uint64_t kMaxSegments = 1 << 19;
// Requests for one segment, in all: failures without progress are bounded
// by retry_times, and this bounds a server that trickles a few bytes per
// answer (progress each time) from keeping a segment going for ever.
constexpr int kMaxAttemptsPerSegment = 32;

std::string RangeHeader(uint64_t begin, uint64_t end) {
  return "Range: bytes=" + std::to_string(begin) + "-" + std::to_string(end - 1);
}

Call BlobCall(const BlobTarget& target, const oci::Digest& digest) {
  return Call{.url = target.BlobPath(digest), .scopes = target.scopes, .follow_redirects = true,
              .repository = target.repository, .what = "blob " + digest.str()};
}

// A failed attempt, and whether another may help.
struct Attempt {
  Status status;
  bool retry = false;
};

// Bytes [begin, end) of a blob being read into `data` (end - begin bytes),
// `got` of them received so far.
struct Range {
  uint64_t begin = 0, end = 0;
  char* data = nullptr;
  uint64_t got = 0;
  std::unique_ptr<http::Stream> stream;  // an answer already open for the rest
};

std::string Where(const BlobTarget& target, const oci::Digest& digest) {
  return Prefix(target.registry->host(), target.repository) + "blob " + digest.str();
}

// A request for the bytes of `r` from r.got on, read into r.data. `total`:
// the blob's size the answer must state, or 0 when not known.
Attempt FetchOnce(const BlobTarget& target, const oci::Digest& digest, Range& r, uint64_t total) {
  Registry& registry = *target.registry;
  Call call = BlobCall(target, digest);
  uint64_t from = r.begin + r.got;
  call.headers.push_back(RangeHeader(from, r.end));
  std::unique_ptr<http::Stream> stream = std::move(r.stream);
  if (!stream) {
    auto opened = registry.Open(call);
    if (!opened.ok()) return {opened.status(), opened.status().code() == Code::kUnavailable};
    stream = std::move(*opened);
    const http::Response& head = stream->head();
    std::string asked = std::to_string(from) + "-" + std::to_string(r.end - 1);
    if (head.status == 200) {
      return {Corrupt(Where(target, digest) + ": asked for bytes " + asked + ", got the whole blob"), true};
    }
    if (head.status != 206) return {registry.ResponseError(call, head), false};
    auto range = ParseContentRange(head.Header("content-range"));
    if (!range || range->first != from || range->last != r.end - 1 || (total != 0 && range->total != total)) {
      return {Corrupt(Where(target, digest) + ": asked for bytes " + asked + ", got \"" +
                      OneLine(head.Header("content-range"), 80) + "\""), true};
    }
  }
  uint64_t want = r.end - r.begin;
  for (;;) {
    char extra;
    char* into = r.got < want ? r.data + r.got : &extra;
    auto n = stream->Read(into, r.got < want ? want - r.got : 1);
    if (!n.ok()) {
      return {registry.TransportError(call, n.status()), n.status().code() == Code::kUnavailable};
    }
    if (*n == 0 && r.got < want) {
      return {Corrupt(Where(target, digest) + ": bytes " + std::to_string(from) + "-" + std::to_string(r.end - 1) +
                      " ended after " + std::to_string(r.begin + r.got - from)), true};
    }
    if (*n == 0) return {OkStatus()};
    if (r.got == want) {
      return {Corrupt(Where(target, digest) + ": more bytes than asked for from " + std::to_string(from)), true};
    }
    r.got += *n;
  }
}

// All of `r`, resumed after failures from the bytes it has: failures without
// progress are bounded by retry_times, all requests by
// kMaxAttemptsPerSegment; `stop` (when given) ends the retries early.
Status FetchRange(const BlobTarget& target, const oci::Digest& digest, Range& r, uint64_t total,
                  const std::atomic<bool>* stop) {
  Registry& registry = *target.registry;
  for (int failures = 0, attempts = 1;; ++attempts) {
    uint64_t had = r.got;
    Attempt a = FetchOnce(target, digest, r, total);
    if (a.status.ok()) return OkStatus();
    if (r.got > had) failures = 0;
    if (!a.retry || failures >= registry.options().retry_times || attempts >= kMaxAttemptsPerSegment ||
        (stop != nullptr && *stop)) {
      return a.status;
    }
    registry.Backoff(failures++, nullptr);
  }
}

class RangedReader : public oci::BlobReader {
 public:
  RangedReader(BlobTarget target, const oci::Digest& digest, int parallel)
      : target_(std::move(target)), digest_(digest), parallel_(parallel) {}

  ~RangedReader() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    room_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  // `first`: the 206 answer for bytes 0..range.last. Nothing else is
  // requested and nothing sized by the answer is allocated until the first
  // Read: the caller checks size() against the blob's descriptor first
  // (oci::OpenBlob), so a server's word about the size costs nothing.
  void Start(std::unique_ptr<http::Stream> first, const ContentRange& range) {
    size_ = range.total;
    first_ = std::move(first);
    first_end_ = range.last + 1;
  }

  uint64_t size() const override { return size_; }

  StatusOr<size_t> Read(void* buf, size_t len) override {
    if (first_) RETURN_IF_ERROR(Launch());
    return ReadSegments(buf, len);
  }

 private:
  // Cuts the rest of the blob into segments and starts the fetchers.
  Status Launch() {
    uint64_t rest = size_ - first_end_;
    uint64_t seg = std::clamp<uint64_t>(rest / (parallel_ * kWindowPerConnection) + 1, kMinSegment, kMaxSegment);
    uint64_t count = 1 + (rest + seg - 1) / seg;
    if (count > kMaxSegments) {
      return InvalidArgument(Where() + " is " + std::to_string(size_) + " bytes, more than a ranged download takes (" +
                             std::to_string(kMaxSegments * kMaxSegment) + "); use --parallel 1");
    }
    segs_.resize(count);
    segs_[0].range = Range{.begin = 0, .end = first_end_, .stream = std::move(first_)};
    for (size_t i = 1; i < segs_.size(); ++i) {
      segs_[i].range.begin = segs_[i - 1].range.end;
      segs_[i].range.end = std::min(size_, segs_[i].range.begin + seg);
    }
    window_ = static_cast<size_t>(parallel_) * kWindowPerConnection;
    size_t threads = std::min<size_t>(static_cast<size_t>(parallel_), segs_.size());
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
    return OkStatus();
  }

  StatusOr<size_t> ReadSegments(void* buf, size_t len) {
    if (cur_ == segs_.size()) return Finish();
    Segment* s = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ready_.wait(lock, [&] { return !failure_.ok() || segs_[cur_].done; });
      if (!failure_.ok()) return failure_;
      s = &segs_[cur_];
    }
    // A done segment is the reader's alone: no fetcher touches it again.
    size_t n = std::min<uint64_t>(len, s->data.size() - pos_);
    std::memcpy(buf, s->data.data() + pos_, n);
    hash_.Update(buf, n);
    pos_ += n;
    if (pos_ == s->data.size()) {
      pos_ = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        pool_.push_back(std::move(s->data));
        ++cur_;
      }
      room_.notify_all();
    }
    return n;
  }

  struct Segment {
    Range range;        // its stream: an answer already open (the first segment's)
    std::string data;   // range.end - range.begin bytes once fetching starts
    bool done = false;
  };

  std::string Where() const { return registry::Where(target_, digest_); }

  // A fetcher: takes the next segment within the window until none is left.
  void Work() {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(mu_);
        room_.wait(lock, [&] { return stop_ || !failure_.ok() || next_ >= segs_.size() || next_ < cur_ + window_; });
        if (stop_ || !failure_.ok() || next_ >= segs_.size()) return;
        i = next_++;
        // At most window_ segments are between cur_ and next_, so at most
        // window_ buffers ever exist; reusing them keeps the memory fixed.
        if (!pool_.empty()) {
          segs_[i].data = std::move(pool_.back());
          pool_.pop_back();
        }
      }
      Status s = Fetch(segs_[i]);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!s.ok() && failure_.ok()) failure_ = s;
        segs_[i].done = s.ok();
      }
      ready_.notify_all();
      room_.notify_all();
    }
  }

  // One segment, into its buffer.
  Status Fetch(Segment& seg) {
    seg.data.resize(seg.range.end - seg.range.begin);
    seg.range.data = seg.data.data();
    return FetchRange(target_, digest_, seg.range, size_, &stop_);
  }

  // After the last segment: the digest decides.
  StatusOr<size_t> Finish() {
    if (!checked_) {
      oci::Digest got = oci::Digest::FromHex(hash_.FinishHex());
      if (got != digest_) return Corrupt(Where() + " does not match its digest: the content has digest " + got.str());
      checked_ = true;
    }
    return size_t{0};
  }

  BlobTarget target_;
  oci::Digest digest_;
  int parallel_;
  uint64_t size_ = 0;
  std::unique_ptr<http::Stream> first_;  // until Launch: the first answer, bytes [0, first_end_)
  uint64_t first_end_ = 0;
  std::vector<Segment> segs_;  // sized by Launch, never again
  size_t window_ = 0;
  // The reader's: the segment being read and the offset in it; cur_ is
  // also read by fetchers, under mu_.
  size_t cur_ = 0;
  uint64_t pos_ = 0;
  Sha256 hash_;
  bool checked_ = false;

  std::mutex mu_;
  std::condition_variable ready_;  // a segment is done, or a fetch failed
  std::condition_variable room_;   // the reader moved on, or stop
  size_t next_ = 0;                // the next segment to fetch
  std::vector<std::string> pool_;  // buffers of segments read, for reuse
  Status failure_;
  std::atomic<bool> stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

std::optional<ContentRange> ParseContentRange(std::string_view s) {
  if (!s.starts_with("bytes ")) return std::nullopt;
  s.remove_prefix(6);
  size_t dash = s.find('-'), slash = s.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
  auto first = ParseSize(s.substr(0, dash));
  auto last = ParseSize(s.substr(dash + 1, slash - dash - 1));
  auto total = ParseSize(s.substr(slash + 1));
  if (!first || !last || !total || *first > *last || *last >= *total) return std::nullopt;
  return ContentRange{*first, *last, *total};
}

Status ReadBlobRange(const BlobTarget& target, const oci::Digest& digest, uint64_t offset, char* buf, size_t len) {
  if (len == 0) return OkStatus();
  if (offset > UINT64_MAX - len) return InvalidArgument(Where(target, digest) + ": range past 2^64");
  Range r{.begin = offset, .end = offset + len, .data = buf};
  return FetchRange(target, digest, r, 0, nullptr);
}

StatusOr<std::unique_ptr<oci::BlobReader>> OpenRangedReader(BlobTarget target, const oci::Digest& digest,
                                                             int parallel) {
  parallel = std::clamp(parallel, 1, kMaxParallel);
  Registry& registry = *target.registry;
  Call call = BlobCall(target, digest);
  call.headers.push_back(RangeHeader(0, kMinSegment));
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::unique_ptr<http::Stream> stream, registry.Open(call));
    const http::Response& head = stream->head();
    if (head.status == 200) return OpenStreamReader(std::move(target), digest, std::move(stream));
    if (head.status == 416) return OpenStreamReader(std::move(target), digest, nullptr);  // an empty blob
    if (head.status != 206) return registry.ResponseError(call, head);
    auto range = ParseContentRange(head.Header("content-range"));
    if (range && range->first == 0 && range->last == std::min(kMinSegment, range->total) - 1) {
      auto reader = std::make_unique<RangedReader>(std::move(target), digest, parallel);
      reader->Start(std::move(stream), *range);
      return std::unique_ptr<oci::BlobReader>(std::move(reader));
    }
    Status wrong = Corrupt(Prefix(registry.host(), target.repository) + "blob " + digest.str() +
                           ": asked for bytes 0-" + std::to_string(kMinSegment - 1) + ", got \"" +
                           OneLine(head.Header("content-range"), 80) + "\"");
    if (attempt >= registry.options().retry_times) return wrong;
    registry.Backoff(attempt, nullptr);
  }
}

}  // namespace regdisk::registry
