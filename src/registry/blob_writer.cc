// The blob writer: uploads as the data comes, in the Distribution protocol.
//   POST /v2/NAME/blobs/uploads/           -> 202, Location: the upload URL
//   PATCH <upload> (Content-Range: A-B)    -> 202, Range: 0-B, a new Location
//   PUT <upload>?digest=sha256:...          -> 201 (the blob exists)
// Data is collected into a chunk of Options::chunk_size; a full chunk goes
// into a small ring (kQueued chunks) that a sender thread drains: it hashes
// each chunk and sends it while the caller (the compressor) fills the next
// one, and keeps it until it is handed over. Write blocks only when the ring
// is full, i.e. when the registry is slower than the producer; a sender's
// failure comes back from the next Write or Commit. A blob that fits in one
// chunk goes as POST then one PUT with the body (Distribution 2.8 has no
// single-request POST ?digest=); Commit hands a larger blob's last bytes to
// the sender, then PUTs ?digest= without a body.
//
// One streamed PATCH (Registry::streams_uploads(), the default): the sender
// sends the whole blob as one PATCH with chunked transfer encoding, its body
// read from the ring as the producer fills it (what skopeo does too). A
// PATCH per 8 MiB chunk costs Distribution an fsync of the upload file per
// request, which dominated big pushes. When that PATCH fails while the ring
// still holds byte 0 (nothing was freed yet: the registry or a proxy in
// front of it refused chunked encoding at once, 400/411/413/416/501, or the
// connection broke early), the sender cancels that upload and starts a new
// one with a PATCH per chunk (below); a refusal also makes every later blob
// to that host go as chunked PATCHes. A failure after the ring freed a
// chunk loses the upload (see below): kUnavailable, and the caller sends
// the blob again. Stalls are caught by http's stall timeout (time spent
// waiting for the producer does not count).
//
// A PATCH per chunk (Content-Range: A-B): if one fails (broken connection,
// 5xx), the writer asks the upload URL how much the registry has (GET ->
// 204, Range: 0-N) and sends the rest of the chunk from there.
//
// Distribution drops an upload whose size no longer matches the offset its
// URL carries (the _state parameter): after a PATCH that arrived in part, or
// whose answer was lost, every later request on that URL fails (400
// BLOB_UPLOAD_INVALID, then 404 BLOB_UPLOAD_UNKNOWN). The writer then starts
// a new upload when it still holds the whole blob (the first chunk, or a
// blob sent in one PUT); otherwise it fails with kUnavailable ("the upload
// was lost"), and the caller sends the blob again (oci::CopyBlob does). A
// final PUT that fails for the network or a 429/5xx is retried the same
// way, after checking (HEAD) whether it worked after all. So a PATCH per
// chunk resumes only after a request that failed before any of its bytes
// arrived, and a streamed PATCH loses no more than chunked ones would.
//
// Commit first checks the digest against `expected`, then asks (HEAD)
// whether the repository has the blob already: if so the upload is
// cancelled and created() is false. An uncommitted writer cancels its
// upload (DELETE on the upload URL) when destroyed.
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "registry/blob_io.h"
#include "registry/errors.h"
#include "util/sha256.h"

namespace regdisk::registry {
namespace {

// Full chunks in the ring, waiting for or in the upload: one, sent while
// the producer fills the next (double buffering), so the producer waits
// only when the registry is slower than it. Held at most: kQueued + 1
// chunks (16 MiB at the 8 MiB default; one more than before the pipeline,
// which keeps a 4 GiB push within P4's 64 MiB RSS).
constexpr size_t kQueued = 1;

// "0-1023" (or "bytes=0-1023") -> 1024 bytes held. Distribution says "0-0"
// both for an empty upload and for one byte: read as 0 (resending a byte is
// caught by the digest check; skipping one would not be), and "0--1" -> 0.
// nullopt when unreadable.
std::optional<uint64_t> RangeEnd(std::string range) {
  if (range.starts_with("bytes=")) range.erase(0, 6);
  if (!range.starts_with("0-")) return std::nullopt;
  std::string end = range.substr(2);
  if (end == "-1" || end == "0") return 0;
  if (end.empty() || end.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : end) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v + 1;
}

class BlobWriter : public oci::BlobWriter {
 public:
  explicit BlobWriter(BlobTarget target)
      : target_(std::move(target)), registry_(*target_.registry), chunk_(std::max<size_t>(registry_.options().chunk_size, 1)) {
    buf_.reserve(chunk_);
  }

  ~BlobWriter() override {
    StopSender();
    if (!committed_) Cancel();
  }

  Status Write(const void* data, size_t len) override {
    RETURN_IF_ERROR(error_);
    if (committed_) return Internal("blob writer used after Commit");
    size_ += len;
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
      size_t take = std::min(len, chunk_ - buf_.size());
      buf_.append(p, take);
      p += take;
      len -= take;
      if (buf_.size() == chunk_) {
        error_ = Enqueue();
        RETURN_IF_ERROR(error_);
      }
    }
    return OkStatus();
  }

  StatusOr<oci::Descriptor> Commit(const std::string& media_type,
                                   const std::optional<oci::Digest>& expected) override {
    RETURN_IF_ERROR(error_);
    if (committed_) return Internal("blob writer committed twice");
    committed_ = true;  // from here on the destructor leaves the upload alone
    Status drained = sender_.joinable() && !buf_.empty() ? Enqueue() : OkStatus();  // the last bytes
    if (drained.ok()) drained = Drain();
    if (!drained.ok()) {
      Cancel();
      return drained;
    }
    hash_.Update(buf_.data(), buf_.size());  // a blob sent in one PUT (else empty)
    oci::Digest got = oci::Digest::FromHex(hash_.FinishHex());
    oci::Descriptor desc{.media_type = media_type, .digest = got, .size = size_};
    Status s = Finish(got, expected);
    if (!s.ok()) {
      Cancel();
      return s;
    }
    return desc;
  }

  bool created() const override { return created_; }

 private:
  Call MakeCall(std::string method, std::string url, std::string what) const {
    return Call{.method = std::move(method), .url = std::move(url), .scopes = target_.scopes,
                .repository = target_.repository, .what = std::move(what)};
  }

  std::string Where() const { return Prefix(registry_.host(), target_.repository); }

  // Hands the full buf_ to the sender, waiting while the ring is full.
  Status Enqueue() {
    std::unique_lock<std::mutex> lock(mu_);
    ring_.wait(lock, [&] { return queue_.size() < kQueued || !send_error_.ok(); });
    RETURN_IF_ERROR(send_error_);
    queue_.push_back(std::move(buf_));
    buf_ = std::move(spare_);
    buf_.clear();
    buf_.reserve(chunk_);
    if (!sender_.joinable()) sender_ = std::thread([this] { Sender(); });
    ring_.notify_all();
    return OkStatus();
  }

  // The sender thread: streams the ring's chunks in one PATCH, or PATCHes
  // them one by one.
  void Sender() {
    bool chunked = !registry_.streams_uploads();
    Status s = chunked ? OkStatus() : StreamUpload(&chunked);
    while (s.ok() && chunked) {
      std::string* chunk = Front();
      if (chunk == nullptr) break;
      s = SendChunk(*chunk);
      if (s.ok()) Pop();
    }
    if (s.ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    send_error_ = s;
    queue_.clear();
    ring_.notify_all();
  }

  // The ring's oldest chunk, hashed the first time it is seen; nullptr once
  // the ring is empty after Drain, or on StopSender.
  std::string* Front() {
    std::string* chunk;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ring_.wait(lock, [&] { return stopping_ || finishing_ || !queue_.empty(); });
      if (stopping_ || queue_.empty()) return nullptr;
      chunk = &queue_.front();  // a deque keeps it in place while the producer appends
    }
    if (!front_hashed_) hash_.Update(chunk->data(), chunk->size());
    front_hashed_ = true;
    return chunk;
  }

  // The front chunk was handed over: its buffer goes back to the producer.
  void Pop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      spare_ = std::move(queue_.front());
      queue_.pop_front();
    }
    front_hashed_ = false;
    freed_ = true;
    ring_.notify_all();
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  // The whole blob as one PATCH whose body is read from the ring. On a
  // failure while the ring still holds byte 0, sets *chunked (the upload
  // is cancelled; the ring is as before).
  Status StreamUpload(bool* chunked) {
    RETURN_IF_ERROR(StartUpload());
    uint64_t taken = 0;
    size_t pos = 0;  // in the front chunk
    Call patch = MakeCall("PATCH", location_, "uploading a blob in one request");
    patch.headers = {"Content-Type: application/octet-stream"};
    patch.retry = false;
    patch.body_source = [&](char* buf, size_t len) -> std::optional<size_t> {
      std::string* chunk = Front();
      if (chunk == nullptr) return Stopping() ? std::nullopt : std::optional<size_t>(0);
      size_t n = std::min(len, chunk->size() - pos);
      std::memcpy(buf, chunk->data() + pos, n);
      pos += n;
      taken += n;
      if (pos == chunk->size()) {
        Pop();
        pos = 0;
      }
      return n;
    };
    auto r = registry_.Do(patch);
    if (r.ok() && r->status == 202) return Accepted(*r, taken);
    Status error = r.ok() ? registry_.ResponseError(patch, *r) : r.status();
    if (Stopping()) return error;
    bool refused = r.ok() && Refusal(r->status) && !Lost(*r);
    if (refused) registry_.RefuseStreamedUploads();
    if (!refused && !Retryable(r) && !(r.ok() && Lost(*r))) return error;
    if (freed_) return UploadLost(error);
    Cancel();  // SendChunk starts a new upload
    *chunked = true;
    return OkStatus();
  }

  // Waits until the ring is sent (the sender sees finishing_ once it is
  // empty), then ends the sender: from here on the caller's thread owns the
  // upload state again.
  Status Drain() {
    if (!sender_.joinable()) return OkStatus();
    {
      std::lock_guard<std::mutex> lock(mu_);
      finishing_ = true;
    }
    ring_.notify_all();
    sender_.join();
    return send_error_;
  }

  // Ends the sender after the chunk it is sending, if any (a streamed
  // PATCH is aborted).
  void StopSender() {
    if (!sender_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    ring_.notify_all();
    sender_.join();
  }

  Status Finish(const oci::Digest& got, const std::optional<oci::Digest>& expected) {
    if (expected && *expected != got) {
      return Corrupt(Where() + "blob digest mismatch: expected " + expected->str() + ", got " + got.str());
    }
    ASSIGN_OR_RETURN(bool exists, BlobExists(target_, got));
    if (exists) {  // created_ stays false
      Cancel();
      return OkStatus();
    }
    bool single = location_.empty();  // the whole blob is in buf_: one PUT
    if (single) {
      RETURN_IF_ERROR(StartUpload());
    }
    for (int attempt = 0;; ++attempt) {
      std::string url = location_ + (location_.find('?') == std::string::npos ? "?" : "&") +
                        "digest=" + http::Escape(got.str());
      Call put = MakeCall("PUT", url, "uploading blob " + got.str());
      put.headers.push_back("Content-Type: application/octet-stream");
      if (single) put.body = buf_;
      put.retry = false;  // retried below: the upload URL is spent once the PUT succeeded
      auto r = registry_.Do(put);
      if (r.ok() && (r->status == 201 || r->status == 204)) {
        if (std::string d = r->Header("docker-content-digest"); !d.empty() && d != got.str()) {
          return Corrupt(Where() + "the registry stored blob " + OneLine(d, 80) + " for " + got.str());
        }
        break;
      }
      Status error = r.ok() ? registry_.ResponseError(put, *r) : r.status();
      bool lost = r.ok() && Lost(*r);
      if (!Retryable(r) && !lost) return error;
      // A PUT that worked but whose answer was lost leaves the blob there.
      auto there = BlobExists(target_, got);
      if (there.ok() && *there) break;
      if (lost && !single) return UploadLost(error);
      if (attempt >= registry_.options().retry_times) return lost ? UploadLost(error) : error;
      registry_.Backoff(attempt, r.ok() ? &*r : nullptr);
      if (single) {
        // The body may have arrived in part, which spoils the upload: a new one.
        Cancel();
        RETURN_IF_ERROR(StartUpload());
      }
    }
    location_.clear();
    created_ = true;
    return OkStatus();
  }

  // A failure worth another try: no answer, 429 or 5xx.
  static bool Retryable(const StatusOr<http::Response>& r) {
    return r.ok() ? (r->status == 429 || r->status >= 500) : r.status().code() == Code::kUnavailable;
  }

  // An answer to a streamed PATCH that says the registry (or a proxy) will
  // not take a body of unknown length, or not so much in one request.
  static bool Refusal(long status) {
    return status == 400 || status == 411 || status == 413 || status == 416 || status == 501;
  }

  // The registry no longer accepts the upload (see the top of the file).
  // libcurl re-sends a request once by itself when a reused connection
  // breaks before the answer, so this can be the answer to a request that
  // seemed to be sent once.
  static bool Lost(const http::Response& r) {
    return r.status == 404 || (r.status == 400 && (r.body.find("BLOB_UPLOAD_INVALID") != std::string::npos ||
                                                   r.body.find("BLOB_UPLOAD_UNKNOWN") != std::string::npos));
  }

  // The error for an upload lost midway: kUnavailable, so that the blob is
  // sent again from the start.
  Status UploadLost(const Status& cause) const {
    return Unavailable(Where() + "the upload was lost after a failed request, the blob must be sent again (" +
                       OneLine(cause.message(), 200) + ")");
  }

  Status StartUpload() {
    Call post = MakeCall("POST", "/v2/" + target_.repository + "/blobs/uploads/", "starting an upload");
    ASSIGN_OR_RETURN(http::Response r, registry_.Do(post));
    if (r.status != 202) return registry_.ResponseError(post, r);
    std::string location = r.Header("location");
    if (location.empty()) return Unsupported(Where() + "the upload answer has no Location");
    location_ = registry_.Resolve(location);
    return OkStatus();
  }

  // PATCHes `chunk` (the bytes from sent_ on), resuming after failures.
  Status SendChunk(const std::string& chunk) {
    if (location_.empty()) {
      RETURN_IF_ERROR(StartUpload());
    }
    uint64_t from = sent_;  // the first byte the registry does not have
    for (int attempt = 0;; ++attempt) {
      std::string_view part = std::string_view(chunk).substr(from - sent_);
      Call patch = MakeCall("PATCH", location_, "uploading a chunk at byte " + std::to_string(from));
      patch.headers = {"Content-Type: application/octet-stream",
                       "Content-Range: " + std::to_string(from) + "-" + std::to_string(from + part.size() - 1)};
      patch.body = part;
      patch.retry = false;  // resumed below, from where the registry is
      auto r = registry_.Do(patch);
      if (r.ok() && r->status == 202) return Accepted(*r, sent_ + chunk.size());
      Status error = r.ok() ? registry_.ResponseError(patch, *r) : r.status();
      bool lost = r.ok() && Lost(*r);
      if ((!Retryable(r) && !lost) || attempt >= registry_.options().retry_times) {
        return lost ? UploadLost(error) : error;
      }
      registry_.Backoff(attempt, r.ok() ? &*r : nullptr);
      std::optional<uint64_t> offset;
      if (!lost) {
        ASSIGN_OR_RETURN(offset, UploadOffset());
      }
      if (!offset) {
        // The registry dropped the upload. With the whole blob still here
        // (the first chunk), start again; else the caller must.
        if (sent_ > 0) return UploadLost(error);
        location_.clear();
        RETURN_IF_ERROR(StartUpload());
        from = 0;
        continue;
      }
      from = *offset;
      if (from < sent_ || from > sent_ + chunk.size()) {
        return Corrupt(Where() + "the upload is at byte " + std::to_string(from) + ", outside the chunk " +
                       std::to_string(sent_) + "-" + std::to_string(sent_ + chunk.size()));
      }
      if (from == sent_ + chunk.size()) {  // it all arrived; only the answer was lost
        sent_ = from;
        return OkStatus();
      }
    }
  }

  // After a 202 to a PATCH: the new Location, and the registry's offset.
  Status Accepted(const http::Response& r, uint64_t want) {
    if (std::string location = r.Header("location"); !location.empty()) location_ = registry_.Resolve(location);
    auto end = RangeEnd(r.Header("range"));
    if (end && *end != want && !(*end == 0 && want == 1)) {
      return Corrupt(Where() + "the registry holds " + std::to_string(*end) + " bytes of the upload, expected " +
                     std::to_string(want));
    }
    sent_ = want;
    return OkStatus();
  }

  // GET on the upload URL: how many bytes the registry has; nullopt when
  // it dropped the upload.
  StatusOr<std::optional<uint64_t>> UploadOffset() {
    Call get = MakeCall("GET", location_, "checking an upload");
    ASSIGN_OR_RETURN(http::Response r, registry_.Do(get));
    if (Lost(r)) return std::optional<uint64_t>();
    if (r.status != 204 && r.status != 200) return registry_.ResponseError(get, r);
    auto end = RangeEnd(r.Header("range"));
    if (!end) return Unsupported(Where() + "the upload status has no readable Range header");
    if (std::string location = r.Header("location"); !location.empty()) location_ = registry_.Resolve(location);
    return std::optional<uint64_t>(*end);
  }

  void Cancel() {
    if (location_.empty()) return;
    Call cancel = MakeCall("DELETE", location_, "cancelling an upload");
    cancel.scopes = {DeleteScope(target_.repository)};
    cancel.retry = false;
    location_.clear();
    (void)registry_.Do(cancel);  // best effort: the registry expires it anyway
  }

  BlobTarget target_;
  Registry& registry_;
  size_t chunk_;
  std::string buf_;       // the chunk being filled (the caller's)
  uint64_t size_ = 0;     // bytes written
  Status error_;
  bool committed_ = false, created_ = false;
  // The upload state: the sender's while it runs, the caller's after Drain.
  uint64_t sent_ = 0;     // bytes the registry has accepted
  std::string location_;  // the upload URL; empty before POST and after the end
  Sha256 hash_;           // over the chunks sent, in order
  // The ring, under mu_.
  std::mutex mu_;
  std::condition_variable ring_;  // a chunk was queued or sent, or stop
  std::deque<std::string> queue_;  // full chunks, oldest (being sent) first
  std::string spare_;              // a sent chunk's buffer, for reuse
  Status send_error_;
  bool finishing_ = false;  // Commit queued the last bytes
  bool stopping_ = false;
  // The sender's: the front chunk is in hash_; a chunk left the ring.
  bool front_hashed_ = false, freed_ = false;
  std::thread sender_;
};

}  // namespace

std::unique_ptr<oci::BlobWriter> NewBlobWriter(BlobTarget target) {
  return std::make_unique<BlobWriter>(std::move(target));
}

}  // namespace regdisk::registry
