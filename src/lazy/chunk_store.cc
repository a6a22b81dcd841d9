#include "lazy/chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "util/fs.h"

namespace regdisk::lazy {
namespace {

// How often a rate-limited fill looks at its stop flag while it waits.
constexpr auto kStopPoll = std::chrono::milliseconds(100);

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
  Status s = Once(i, [&] { return Load(i); });
  if (!s.ok()) stats_.failed++;
  return s;
}

Status ChunkStore::Once(size_t i, const std::function<Status()>& load) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    loaded_.wait(lock, [&] { return state_[i] != State::kLoading; });
    if (state_[i] == State::kVerified) return OkStatus();
    state_[i] = State::kLoading;
  }
  Status s = load();
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_[i] = s.ok() ? State::kVerified : State::kAbsent;
  }
  loaded_.notify_all();
  return s;
}

Status ChunkStore::Load(size_t i) {
  const layer::IndexEntry& e = index_.entries[i];
  if (map_->Has(i)) {
    std::string bytes(e.length, '\0');
    Status s = PreadAll(fd_, bytes.data(), bytes.size(), e.disk_offset, dir_ + "/" + kPartialFile);
    if (s.ok()) s = layer::CheckChunk(e, bytes);
    if (s.ok()) {
      stats_.local_chunks++;
      return OkStatus();
    }
    Log(ChunkName(i) + " in disk.partial did not verify; loading it again: " + s.message());
  }
  if (auto bytes = donors_.Fetch(e); bytes.ok()) {
    RETURN_IF_ERROR(Store(i, *bytes));
    stats_.donor_chunks++;
    return OkStatus();
  }
  if (!source_) return NotFound(ChunkName(i) + " is not held locally and there is no source");
  auto bytes = layer::ReadChunk(source_, index_.codec, e);
  stats_.source_chunks++;
  stats_.source_bytes += e.blob_length;
  if (!bytes.ok()) {
    Status s = bytes.status().Annotate(ChunkName(i) + ", expected sha256 " + layer::ShaHex(e.sha256));
    Log(s.message());
    return s;
  }
  return Store(i, *bytes);
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
  return Once(i, [&] { return Store(i, bytes); });
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

Status ChunkStore::FillMissing(int threads, uint64_t rate, const std::atomic<bool>* stop) {
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex failure_mu;
  Status failure;
  const auto start = std::chrono::steady_clock::now();
  auto run = [&] {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (!failure.ok() || (stop != nullptr && *stop)) return;
      }
      const size_t i = next++;
      if (i >= index_.entries.size()) return;
      const layer::IndexEntry& e = index_.entries[i];
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (e.zero() || state_[i] == State::kVerified) continue;
      }
      // Only what comes from the source counts against the rate.
      if (rate > 0 && !map_->Has(i) && !donors_.Lists(e)) {  // the chunk may start once the bytes up to its end fit the rate
        const uint64_t ahead = bytes.fetch_add(e.length) + e.length;
        const auto due = start + std::chrono::microseconds(ahead / rate * 1000000 + ahead % rate * 1000000 / rate);
        while (std::chrono::steady_clock::now() < due && !(stop != nullptr && *stop)) {
          std::this_thread::sleep_for(kStopPoll);
        }
      }
      Status s = Ensure(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (failure.ok()) failure = s;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(run);
  run();
  for (std::thread& t : pool) t.join();
  if (failure.ok() && stop != nullptr && *stop) return Unavailable("the fill was stopped");
  return failure;
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
