// Which verified v2 chunks this node holds: what the peer server may serve
// (peer/protocol.h). The chunks of the entries ROOT/disks/*/ (lazy/entry.h)
// that have an `index` re-checked against the anchor in their serve.json
// (lazy::ReadEntryIndex); an entry without one (a v1 disk, a broken entry)
// serves nothing.
//
// A chunk is held when its entry was promoted (`disk` exists: Promote
// checked it whole) or its bit in the entry's `chunks` map is set (both
// re-read on every ask: the map changes as the entry loads), and it is
// served only when the bytes read back from `disk` or `disk.partial` hash
// to the digest, every time (read, hash, then send). A place whose bytes do
// not verify is dropped until the next scan. Nothing a client sends names a
// file: digests are looked up in memory, and only this node's own entries'
// files are opened.
//
// The scan (index files, hashed against their anchors) runs when a digest
// nobody is known to hold is asked and the last scan is older than the
// rescan interval; entries made since are then found, removed ones
// forgotten, and only entries whose index or serve.json changed are read
// again.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lazy/donors.h"

namespace regdisk::peer {

// Entries scanned at most, as for delta pulls: each costs reading and
// hashing its index (up to 128 MiB); a node caches a few dozen disks.
inline constexpr size_t kMaxServedEntries = lazy::kMaxDonorEntries;
// Chunk places kept at most over all entries: 2^22 (4 TiB of disk at the
// default chunk size) at about 60 bytes each bounds the table at 256 MiB.
inline constexpr size_t kMaxHeldPlaces = size_t{1} << 22;
// Places one digest is kept at most, as for delta pulls: more copies of
// one chunk (a block many disks share) add nothing but failed reads.
inline constexpr size_t kMaxPlacesPerDigest = lazy::kMaxPlacesPerChunk;
// The least time between two scans: a client asking for digests this node
// has never held (most asks, on a big cluster) must not make it re-read
// every index each time; a disk this node starts loading is found within
// this long.
inline constexpr std::chrono::seconds kRescanInterval{5};

using ChunkDigest = std::array<uint8_t, 32>;

enum class ChunkState { kHeld, kPending, kAbsent };

struct ChunkRead {
  ChunkState state = ChunkState::kAbsent;
  std::string bytes;  // kHeld: the chunk, re-hashed just now
};

class Holdings {
 public:
  // `log`: one line per entry skipped by a scan and per place whose bytes
  // did not verify.
  Holdings(std::string root, std::chrono::milliseconds rescan_interval = kRescanInterval,
           std::function<void(const std::string&)> log = nullptr);
  ~Holdings();

  // The verified bytes of the chunk, or why not (kPending: an entry lists
  // it but has not verified it yet).
  ChunkRead Read(const ChunkDigest& digest);
  // For each digest, whether Read would find it held (promoted or marked in
  // the map; bytes are hashed only when read). Thread-safe, as is Read.
  std::vector<bool> Have(const std::vector<ChunkDigest>& digests);

  // Digests looked up so far and scans made (tests: a refused request
  // never reaches the files).
  uint64_t lookups() const { return lookups_; }
  uint64_t scans() const { return scans_; }

 private:
  struct Snapshot;
  struct Place;
  struct EntryState;
  // Reads every usable entry of ROOT/disks (at most the limits above).
  // An entry whose index and serve.json did not change since `before` (the
  // last scan, or null) keeps its places without being read again; one it
  // refused is refused again, and logged only the first time.
  static std::shared_ptr<Snapshot> Scan(const std::string& root, const Snapshot* before,
                                        const std::function<void(const std::string&)>& log);
  // The snapshot to look `asked` up in: the last scan's, or a new scan's
  // when one of them is unknown and the interval has passed.
  std::shared_ptr<Snapshot> Current(const std::vector<ChunkDigest>& asked);
  // The places listing `digest` whose chunk the entry verified (`held`)
  // and whether any lists it unverified (`pending`); `states` keeps what
  // this ask read of each entry.
  void Classify(const Snapshot& s, const ChunkDigest& digest, std::map<uint32_t, EntryState>& states,
                std::vector<const Place*>* held, bool* pending);

  std::string root_;
  std::chrono::milliseconds rescan_interval_;
  std::function<void(const std::string&)> log_;
  std::mutex scan_mu_;  // one scan at a time
  std::mutex mu_;       // snapshot_, last_scan_
  std::shared_ptr<Snapshot> snapshot_;
  std::optional<std::chrono::steady_clock::time_point> last_scan_;
  std::atomic<uint64_t> lookups_{0}, scans_{0};
};

}  // namespace regdisk::peer
