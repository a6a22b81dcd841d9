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
//   3. a peer: another node holding it (StoreOptions::peers,
//      lazy/peer_chunks.h), its bytes re-hashed here too (bytes that do not
//      verify are a miss, as no answer is);
//   4. the source: the layer blob read at the chunk's member (one HTTP
//      Range request through the registry client, with its retries and
//      backoff up to the registry flags' retry_times), decoded, hashed.
// A chunk from 2, 3 or 4 is written into disk.partial in place, then marked
// in the map. Zero extents read as zeros and are never stored (disk.partial
// is sparse). A chunk failing verification is never used: the read fails
// with a kCorrupt error naming the chunk (its number, disk offset, the
// expected digest, and the actual one or why the member did not decode).
//
// Peers (none: the store asks the source alone, as it always did). So that
// a cluster starting one disk everywhere reads each chunk from the
// registry about once:
//   - a read (or read-ahead) that no peer can serve goes to the source at
//     once on the node that owns the chunk (PeerChunks::OwnsChunk); any
//     other node waits a random kPeerSpreadMin..kPeerSpreadMax (the owner
//     is likely loading it that moment), asks the peers once more, and
//     only then reads the source;
//   - the fill (FillMissing) takes the chunks this node owns first, then
//     the others. A chunk no peer has but one reports pending (that node
//     is loading it) is deferred to a later pass, kFillPeerPoll apart; once
//     deferring has gone on for StoreOptions::fill_peer_wait with no chunk
//     arriving, or when no peer is loading it, the chunk comes from the
//     source. The fill's rate counts only bytes from the source.
//
// A registry outage is waited out: a load from the source that fails with
// kUnavailable (no connection, a timeout, 429, 5xx: the registry is down or
// overloaded) is tried again, kOutageFirstRetry after the failure, then at
// twice the interval each time up to kOutageMaxRetry, for up to
// StoreOptions::outage_wait; the read meanwhile simply waits. Only then does
// it fail (kUnavailable). Any other failure (a chunk that does not verify,
// 404, 401/403) fails at once. The first load to wait logs that the outage
// started (with its chunk), and the first to succeed after it logs that it
// ended (StoreOptions::warn). A chunk that failed is not remembered: the
// next read of it tries again.
//
// Concurrency: any number of threads may Read at once. Each chunk is loaded
// by one thread at a time (single flight); others wanting it wait for that
// load. A read that follows on from the chunk before it (a sequential
// reader) queues the next kReadAhead chunks for background threads (at most
// `parallel` of them), as do the chunks of a read spanning several; a
// random read loads its own chunks only. Memory: each load holds one chunk
// and its member (at most 2 x kMaxChunkSize plus a little). Other processes
// (a FillEntry beside the server) may write the same entry: they write the
// same verified bytes, and a lost map bit only costs a refetch.
//
// Once the entry was promoted (ENTRY/disk exists), the store reads `disk`,
// which Promote checked whole, and loads nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "layer/chunk_reader.h"
#include "lazy/chunk_map.h"
#include "lazy/donors.h"
#include "lazy/entry.h"
#include "lazy/peer_chunks.h"
#include "util/status.h"

namespace regdisk::lazy {

// Chunks queued ahead of a sequential reader: a guest reading a file reads
// on; 4 chunks (4 MiB at the default size) is a Linux guest's readahead
// window many times over, and bounds what a reader that stops wastes.
inline constexpr size_t kReadAhead = 4;
// Read-ahead requests waiting at most; more are dropped (they are hints).
inline constexpr size_t kMaxQueued = 64;

// The first wait after a load failed for an outage: a registry restarting
// or failing over is often back within a second; half of one catches that
// without asking it more than twice a second.
inline constexpr std::chrono::milliseconds kOutageFirstRetry{500};
// The longest wait between tries in an outage: a registry that is back is
// noticed within 10 s, and a registry that is down gets at most one
// request per 10 s from each load waiting (at most `parallel` + readers).
inline constexpr std::chrono::milliseconds kOutageMaxRetry{10'000};

// A read on a node that does not own its chunk, which no peer could serve,
// waits a random time in [kPeerSpreadMin, kPeerSpreadMax] and asks the
// peers once more: the owner is likely loading the chunk that moment
// (every node reads chunk 0 first when a replica set starts), and the
// spread keeps the nodes asking again from asking, and then going to the
// registry, all at once. A quarter second is about a 1 MiB chunk's load
// from a busy registry, and the most a guest's read waits for it.
inline constexpr std::chrono::milliseconds kPeerSpreadMin{50};
inline constexpr std::chrono::milliseconds kPeerSpreadMax{250};
// How long the fill goes on deferring chunks that a peer is loading while
// none arrives, before it loads them from the registry: long enough for
// the node that owns them to get through a pass at a fill rate, short
// enough that a stuck or stopped peer delays the disk by little.
inline constexpr std::chrono::milliseconds kFillPeerWait{30'000};
// The pause between the fill's passes over deferred chunks: a peer loading
// a chunk has it in well under a second, and a pass asks every peer-held
// chunk again, so not more often.
inline constexpr std::chrono::milliseconds kFillPeerPoll{1'000};

struct StoreOptions {
  int parallel = 4;             // background loads at once (registry connections)
  bool use_donors = true;
  std::function<void(const std::string&)> log;  // progress and failures, one line each
  // What an operator must see: a registry outage starting and ending.
  // Unset: `log`.
  std::function<void(const std::string&)> warn;
  // How long a load waits out a registry outage (above); 0: it fails
  // after the registry client's own retries.
  std::chrono::milliseconds outage_wait{0};
  // Sleeps `d` between the tries of a load waiting out an outage; false
  // when the wait must end now (the server is stopping): the load then
  // fails. Unset: a sleep that the store's destructor cuts short.
  std::function<bool(std::chrono::milliseconds d)> pause;
  // Other nodes' verified chunks (above); nullptr: none.
  std::shared_ptr<PeerChunks> peers;
  // How long the fill defers chunks a peer is loading with none arriving
  // (above); tests shorten it.
  std::chrono::milliseconds fill_peer_wait = kFillPeerWait;
};

// What the store did, for logs, tests and benches.
struct StoreStats {
  std::atomic<uint64_t> source_chunks{0}, source_bytes{0};  // range reads of the blob and their bytes
  std::atomic<uint64_t> donor_chunks{0}, local_chunks{0};    // copied from donors / re-verified in place
  std::atomic<uint64_t> peer_chunks{0}, peer_bytes{0};       // from peers, verified, and their bytes
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
  // most `rate` bytes/s from the source (0: unlimited), until done, `stop`,
  // or the first failure (returned); with peers, in the order and passes
  // above.
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
  // (single flight); the chunk is verified when `load` returns true, and
  // stays absent when it returns false or fails.
  Status Once(size_t i, const std::function<StatusOr<bool>()>& load);
  bool Verified(size_t i) const;
  // A read's load of chunk i: the four places in order (above).
  Status Load(size_t i);
  // Chunk i from disk.partial, a donor or the peers (asked once), stored:
  // true; false when none has it (`*pending`: a peer is loading it).
  StatusOr<bool> LoadNearby(size_t i, bool* pending);
  // Chunk i from the peers (one PeerChunks::Fetch), verified and stored.
  StatusOr<bool> FromPeers(size_t i, bool* pending);
  // Chunk i from the source, stored.
  Status LoadFromSource(size_t i);
  // Chunk i from the source, verified, waiting out an outage (above).
  StatusOr<std::string> FromSource(size_t i);
  // The data chunks not yet verified, the ones this node owns first.
  std::vector<size_t> FillOrder() const;
  // One pass of FillMissing over `todo` with `threads` threads: chunks to
  // ask peers for again later go to `*deferred` (none when `last`);
  // `before_source` runs before each load from the source (the rate).
  Status FillPass(const std::vector<size_t>& todo, int threads, bool last,
                  const std::function<void(const layer::IndexEntry&)>& before_source, const std::atomic<bool>* stop,
                  std::vector<size_t>* deferred);
  // Sleeps `d` (StoreOptions::pause); false: stop waiting.
  bool Pause(std::chrono::milliseconds d);
  // The outage log: the first load to wait says it began, the first
  // success after it says it ended.
  void OutageBegins(size_t i, const Status& why);
  void OutageEnds(size_t i);
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
  void Warn(const std::string& line) const {
    if (options_.warn) {
      options_.warn(line);
    } else {
      Log(line);
    }
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
  std::condition_variable stopping_;  // stop_ was set (default Pause)
  // When the outage being waited out began (no value: none is).
  std::optional<std::chrono::steady_clock::time_point> outage_since_;
};

}  // namespace regdisk::lazy
