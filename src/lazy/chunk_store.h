// The chunk store of one lazy entry ROOT/disks/KEY/ (lazy/entry.h): reads
// of the disk where every byte returned comes from a chunk verified against
// the entry's index (and the index against its anchor in serve.json).
//
// A data chunk is taken, in this order, from
//   1. disk.partial, when the chunk map (lazy/chunk_map.h) marks it: it is
//      re-hashed before its first use in this process (the map is only a
//      hint after a crash);
//   2. a donor: another entry holding a chunk with the same sha256
//      (lazy/donors.h), copied and re-hashed (a delta pull);
//   3. the source: the layer blob read at the chunk's member (one HTTP
//      Range request through the registry client, with its retries and
//      backoff up to the registry flags' retry_times), decoded, hashed.
// A chunk from 2 or 3 is written into disk.partial in place, then marked
// in the map. Zero extents read as zeros and are never stored (disk.partial
// is sparse). A chunk failing verification is never used: the read fails
// with a kCorrupt error naming the chunk (its number, disk offset, the
// expected and the actual digest).
//
// Concurrency: any number of threads may Read at once. Each chunk is loaded
// by one thread at a time (single flight); others wanting it wait for that
// load. A read that follows on from the chunk before it (a sequential
// reader) queues the next kReadAhead chunks for background threads (at most
// `parallel` of them), as do the chunks of a read spanning several; a
// random read loads its own chunks only. Other
// processes (a FillEntry beside the server) may write the same entry: they
// write the same verified bytes, and a lost map bit only costs a refetch.
//
// Once the entry was promoted (ENTRY/disk exists), the store reads `disk`,
// which Promote checked whole, and loads nothing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "layer/chunk_reader.h"
#include "lazy/chunk_map.h"
#include "lazy/donors.h"
#include "lazy/entry.h"
#include "util/status.h"

namespace regdisk::lazy {

// Chunks queued ahead of a sequential reader: a guest reading a file reads
// on; 4 chunks (4 MiB at the default size) is one readahead
// window of a Linux guest's block layer many times over, and bounds what a
// random reader wastes.
inline constexpr size_t kReadAhead = 4;
// Read-ahead requests waiting at most; more are dropped (they are hints).
inline constexpr size_t kMaxQueued = 64;

struct StoreOptions {
  int parallel = 4;             // background loads at once (registry connections)
  bool use_donors = true;
  std::function<void(const std::string&)> log;  // progress and failures, one line each
};

// What the store did, for logs, tests and benches.
struct StoreStats {
  std::atomic<uint64_t> source_chunks{0}, source_bytes{0};  // range reads of the blob and their bytes
  std::atomic<uint64_t> donor_chunks{0}, local_chunks{0};    // copied from donors / re-verified in place
  std::atomic<uint64_t> failed{0};                           // loads that failed
};

class ChunkStore {
 public:
  // Opens ROOT/disks/KEY: reads serve.json and re-checks `index` against
  // its anchor; creates disk.partial (sparse, the disk's size) and the
  // chunk map when missing. `source` reads the layer blob (nullptr: no
  // source; chunks not held locally then fail NotFound).
  static StatusOr<std::unique_ptr<ChunkStore>> Open(const std::string& root, const std::string& key,
                                                    layer::BlobReadAt source, StoreOptions options = {});
  ~ChunkStore();

  uint64_t size() const { return index_.disk_size; }
  const layer::DiskIndex& index() const { return index_; }
  const ServeConfig& config() const { return config_; }
  const StoreStats& stats() const { return stats_; }
  bool promoted() const { return promoted_; }

  // `len` verified disk bytes from `offset` into `buf` (within size()).
  Status Read(uint64_t offset, size_t len, char* buf);
  // Loads data entry `i` (a no-op once verified in this process).
  Status Ensure(size_t i);
  // Stores the bytes of data entry `i` that the caller has verified
  // against the index (layer::CheckChunk, as VerifyLayer does).
  Status PutVerified(size_t i, std::string_view bytes);
  // Loads every data entry not yet verified, with `threads` threads, at
  // most `rate` bytes/s (0: unlimited), until done, `stop`, or the first
  // failure (returned).
  Status FillMissing(int threads, uint64_t rate, const std::atomic<bool>* stop);
  // True when some data chunk is in disk.partial's map or at a donor.
  bool AnyLocal() const;
  // Data entries not yet verified in this process.
  size_t Missing() const;

  // Promotes the entry (lazy/fill.h's Promote) from this store's state:
  // loads what is missing, then the checks and the rename. `locked`: the
  // caller holds the key's lock.
  Status Promote(bool locked);

 private:
  enum class State : uint8_t { kAbsent, kLoading, kVerified };

  ChunkStore(std::string root, std::string key, layer::BlobReadAt source, StoreOptions options)
      : root_(std::move(root)), key_(std::move(key)), source_(std::move(source)), options_(std::move(options)) {}
  Status OpenFiles();
  // Runs `load` for chunk i unless it is verified, one thread at a time
  // (single flight); the chunk is verified when `load` succeeds.
  Status Once(size_t i, const std::function<Status()>& load);
  Status Load(size_t i);
  Status Store(size_t i, std::string_view bytes);
  void Queue(size_t i);
  // Queues the kReadAhead data chunks after `last` when the read of
  // [first, last] follows on from the chunk before it.
  void ReadAhead(size_t first, size_t last);
  void Work();
  std::string ChunkName(size_t i) const;
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  std::string root_, key_, dir_;
  layer::BlobReadAt source_;
  StoreOptions options_;
  ServeConfig config_;
  layer::DiskIndex index_;
  Donors donors_;
  std::unique_ptr<ChunkMap> map_;
  int fd_ = -1;  // disk.partial (read-write) or, promoted, disk (read-only)
  std::atomic<bool> promoted_{false};
  StoreStats stats_;

  mutable std::mutex mu_;
  std::condition_variable loaded_;  // a chunk left kLoading
  std::vector<State> state_;        // per index entry
  std::condition_variable queued_;  // work for the read-ahead threads, or stop
  std::deque<size_t> queue_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

}  // namespace regdisk::lazy
