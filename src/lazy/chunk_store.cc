#include "lazy/chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "util/fs.h"

namespace regdisk::lazy {
namespace {

// "2.5 s".
std::string Seconds(std::chrono::milliseconds d) {
  return std::to_string(d.count() / 1000) + "." + std::to_string(d.count() % 1000 / 100) + " s";
}

// A random wait in [kPeerSpreadMin, kPeerSpreadMax].
std::chrono::milliseconds PeerSpread() {
  thread_local std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<int64_t> pick(kPeerSpreadMin.count(), kPeerSpreadMax.count());
  return std::chrono::milliseconds(pick(random));
}

}  // namespace

StatusOr<std::unique_ptr<ChunkStore>> ChunkStore::Open(const std::string& root, const std::string& key,
                                                       layer::BlobReadAt source, StoreOptions options) {
  std::unique_ptr<ChunkStore> s(new ChunkStore(root, key, std::move(source), std::move(options)));
  RETURN_IF_ERROR(s->OpenFiles());
  return s;
}

Status ChunkStore::OpenFiles() {
  dir_ = EntryDir(root_, key_);
  ASSIGN_OR_RETURN(config_, ReadServeConfig(dir_));
  ASSIGN_OR_RETURN(index_, ReadEntryIndex(dir_, config_));
  state_.assign(index_.entries.size(), State::kAbsent);
  const std::string disk = dir_ + "/" + kDiskFile;
  fd_ = ::open(disk.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ >= 0) {  // promoted: checked whole by Promote
    promoted_ = true;
    state_.assign(index_.entries.size(), State::kVerified);
    return OkStatus();
  }
  const std::string partial = dir_ + "/" + kPartialFile;
  fd_ = ::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return IoError("opening " + partial, errno);
  struct stat st;
  if (::fstat(fd_, &st) != 0) return IoError("stat " + partial, errno);
  if (static_cast<uint64_t>(st.st_size) != index_.disk_size) {
    // New, or not this disk's: start afresh, with an empty map.
    if (::ftruncate(fd_, 0) != 0 || ::ftruncate(fd_, static_cast<off_t>(index_.disk_size)) != 0) {
      return IoError("sizing " + partial, errno);
    }
    ::unlink((dir_ + "/" + kChunksFile).c_str());
  }
  ASSIGN_OR_RETURN(std::optional<layer::IndexAnchor> anchor, layer::ParseAnchor(config_.layer));
  ASSIGN_OR_RETURN(map_, ChunkMap::Open(dir_ + "/" + kChunksFile, anchor->digest, index_.entries.size()));
  if (options_.use_donors) donors_ = Donors::Scan(root_, key_, index_);
  return OkStatus();
}

ChunkStore::~ChunkStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  queued_.notify_all();
  stopping_.notify_all();
  for (std::thread& t : workers_) t.join();
  if (fd_ >= 0) ::close(fd_);
}

std::string ChunkStore::ChunkName(size_t i) const {
  return "chunk " + std::to_string(i) + " of " + std::to_string(index_.entries.size()) + " (disk offset " +
         std::to_string(index_.entries[i].disk_offset) + ")";
}

Status ChunkStore::Read(uint64_t offset, size_t len, char* buf) {
  if (offset > index_.disk_size || len > index_.disk_size - offset) {
    return InvalidArgument("read past the end of the disk");
  }
  if (len == 0) return OkStatus();
  // The chunks the read spans: all but the first are started in the
  // background at once, so that a long read fetches in parallel.
  std::vector<size_t> spans;
  for (uint64_t at = offset; at < offset + len;) {
    std::optional<size_t> i = layer::FindEntry(index_, at);
    if (!i) return Internal("no index entry for disk offset " + std::to_string(at));
    spans.push_back(*i);
    at = index_.entries[*i].disk_offset + index_.entries[*i].length;
  }
  for (size_t k = 1; k < spans.size(); ++k) Queue(spans[k]);
  ReadAhead(spans.front(), spans.back());
  for (size_t i : spans) {
    const layer::IndexEntry& e = index_.entries[i];
    const uint64_t from = std::max(offset, e.disk_offset);
    const uint64_t to = std::min(offset + len, e.disk_offset + e.length);
    char* out = buf + (from - offset);
    if (e.zero()) {
      std::memset(out, 0, to - from);
      continue;
    }
    RETURN_IF_ERROR(Ensure(i));
    RETURN_IF_ERROR(PreadAll(fd_, out, to - from, from, dir_ + "/" + kPartialFile));
  }
  return OkStatus();
}

Status ChunkStore::Ensure(size_t i) {
  if (i >= index_.entries.size() || index_.entries[i].zero()) return InvalidArgument("not a data chunk");
  Status s = Once(i, [&]() -> StatusOr<bool> {
    RETURN_IF_ERROR(Load(i));
    return true;
  });
  if (!s.ok()) stats_.failed++;
  return s;
}

Status ChunkStore::Once(size_t i, const std::function<StatusOr<bool>()>& load) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    loaded_.wait(lock, [&] { return state_[i] != State::kLoading; });
    if (state_[i] == State::kVerified) return OkStatus();
    state_[i] = State::kLoading;
  }
  StatusOr<bool> loaded = load();
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_[i] = loaded.ok() && *loaded ? State::kVerified : State::kAbsent;
  }
  loaded_.notify_all();
  return loaded.status();
}

bool ChunkStore::Verified(size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_[i] == State::kVerified;
}

Status ChunkStore::Load(size_t i) {
  bool pending = false;
  ASSIGN_OR_RETURN(bool nearby, LoadNearby(i, &pending));
  if (nearby) return OkStatus();
  // Not the owner: the owner is likely loading it now (kPeerSpreadMin).
  if (options_.peers && !options_.peers->OwnsChunk(index_.entries[i]) && Pause(PeerSpread())) {
    ASSIGN_OR_RETURN(bool from_peer, FromPeers(i, &pending));
    if (from_peer) return OkStatus();
  }
  return LoadFromSource(i);
}

StatusOr<bool> ChunkStore::LoadNearby(size_t i, bool* pending) {
  const layer::IndexEntry& e = index_.entries[i];
  if (map_->Has(i)) {
    std::string bytes(e.length, '\0');
    Status s = PreadAll(fd_, bytes.data(), bytes.size(), e.disk_offset, dir_ + "/" + kPartialFile);
    if (s.ok()) s = layer::CheckChunk(e, bytes);
    if (s.ok()) {
      stats_.local_chunks++;
      return true;
    }
    Log(ChunkName(i) + " in disk.partial did not verify; loading it again: " + s.message());
  }
  if (auto bytes = donors_.Fetch(e); bytes.ok()) {
    RETURN_IF_ERROR(Store(i, *bytes));
    stats_.donor_chunks++;
    return true;
  }
  if (!options_.peers) return false;
  return FromPeers(i, pending);
}

StatusOr<bool> ChunkStore::FromPeers(size_t i, bool* pending) {
  const layer::IndexEntry& e = index_.entries[i];
  PeerResult got = options_.peers->Fetch(e);
  *pending = got.pending;
  if (!got.bytes) return false;
  // The client verified them; a store serves nothing it has not checked.
  if (Status s = layer::CheckChunk(e, *got.bytes); !s.ok()) {
    Log(ChunkName(i) + " from a peer did not verify; loading it elsewhere: " + s.message());
    return false;
  }
  RETURN_IF_ERROR(Store(i, *got.bytes));
  stats_.peer_chunks++;
  stats_.peer_bytes += got.bytes->size();
  return true;
}

Status ChunkStore::LoadFromSource(size_t i) {
  if (!source_) return NotFound(ChunkName(i) + " is not held locally and there is no source");
  ASSIGN_OR_RETURN(std::string bytes, FromSource(i));
  return Store(i, bytes);
}

StatusOr<std::string> ChunkStore::FromSource(size_t i) {
  const layer::IndexEntry& e = index_.entries[i];
  const auto start = std::chrono::steady_clock::now();
  std::chrono::milliseconds retry = kOutageFirstRetry;
  bool paused = false;
  for (;;) {
    auto bytes = layer::ReadChunk(source_, index_.codec, e);
    stats_.source_chunks++;
    stats_.source_bytes += e.blob_length;
    if (bytes.ok()) {
      OutageEnds(i);
      return bytes;
    }
    const Status& s = bytes.status();
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    bool stopping = false;
    if (s.code() == Code::kUnavailable && waited < options_.outage_wait) {
      OutageBegins(i, s);
      paused = true;
      if (Pause(std::min(retry, options_.outage_wait - waited))) {
        retry = std::min(retry * 2, kOutageMaxRetry);
        continue;
      }
      stopping = true;
    }
    // A chunk that is not what the index says (kCorrupt: it does not
    // decode, or its digest differs) names the digest it should have; one
    // that waited for the registry says how long, or why it stopped.
    std::string context = ChunkName(i);
    if (s.code() == Code::kCorrupt) context += ", expected sha256 " + layer::ShaHex(e.sha256);
    if (stopping) {
      context += ", the wait for the registry cut short (the server is stopping, or the client left)";
    } else if (paused && s.code() == Code::kUnavailable) {
      context += ", the registry unavailable for " + Seconds(waited) + " (reads wait " + Seconds(options_.outage_wait) +
                 " at most)";
    }
    Status failed = s.Annotate(context);
    Log(failed.message());
    return failed;
  }
}

bool ChunkStore::Pause(std::chrono::milliseconds d) {
  if (options_.pause) {
    if (!options_.pause(d)) return false;
    std::lock_guard<std::mutex> lock(mu_);
    return !stop_;
  }
  std::unique_lock<std::mutex> lock(mu_);
  return !stopping_.wait_for(lock, d, [&] { return stop_; });
}

void ChunkStore::OutageBegins(size_t i, const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outage_since_) return;
    outage_since_ = std::chrono::steady_clock::now();
  }
  Warn("the registry is unavailable (loading " + ChunkName(i) + ": " + why.message() + "); reads wait for it, " +
       Seconds(options_.outage_wait) + " at most");
}

void ChunkStore::OutageEnds(size_t i) {
  std::chrono::steady_clock::duration lasted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!outage_since_) return;
    lasted = std::chrono::steady_clock::now() - *outage_since_;
    outage_since_.reset();
  }
  Warn("the registry is back after " + Seconds(std::chrono::duration_cast<std::chrono::milliseconds>(lasted)) + " (" +
       ChunkName(i) + " loaded)");
}

Status ChunkStore::Store(size_t i, std::string_view bytes) {
  const layer::IndexEntry& e = index_.entries[i];
  RETURN_IF_ERROR(PwriteAll(fd_, bytes.data(), bytes.size(), e.disk_offset, dir_ + "/" + kPartialFile));
  return map_->Set(i);
}

Status ChunkStore::PutVerified(size_t i, std::string_view bytes) {
  if (i >= index_.entries.size() || index_.entries[i].zero() || bytes.size() != index_.entries[i].length) {
    return InvalidArgument("not the bytes of a data chunk");
  }
  return Once(i, [&]() -> StatusOr<bool> {
    RETURN_IF_ERROR(Store(i, bytes));
    return true;
  });
}

void ChunkStore::ReadAhead(size_t first, size_t last) {
  // Sequential: the data chunk before the read is in already.
  size_t before = first;
  while (before > 0 && index_.entries[before - 1].zero()) --before;
  if (before == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_[before - 1] != State::kVerified) return;
  }
  size_t queued = 0;
  for (size_t j = last + 1; j < index_.entries.size() && queued < kReadAhead; ++j) {
    if (index_.entries[j].zero()) continue;
    Queue(j);
    ++queued;
  }
}

void ChunkStore::Queue(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_ || state_[i] != State::kAbsent || queue_.size() >= kMaxQueued || index_.entries[i].zero()) return;
  queue_.push_back(i);
  if (workers_.size() < static_cast<size_t>(std::max(1, options_.parallel))) {
    workers_.emplace_back([this] { Work(); });
  }
  queued_.notify_one();
}

void ChunkStore::Work() {
  for (;;) {
    size_t i;
    {
      std::unique_lock<std::mutex> lock(mu_);
      queued_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      i = queue_.front();
      queue_.pop_front();
    }
    (void)Ensure(i);  // a failure is logged by Load; the reader that needs the chunk gets it
  }
}

bool ChunkStore::AnyLocal() const {
  for (size_t i = 0; i < index_.entries.size(); ++i) {
    const layer::IndexEntry& e = index_.entries[i];
    if (!e.zero() && (promoted_ || map_->Has(i) || donors_.Lists(e))) return true;
  }
  return false;
}

size_t ChunkStore::Missing() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (size_t i = 0; i < index_.entries.size(); ++i) {
    if (!index_.entries[i].zero() && state_[i] != State::kVerified) ++n;
  }
  return n;
}

}  // namespace regdisk::lazy
