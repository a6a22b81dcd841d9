#include "peer/holdings.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "layer/chunk_reader.h"
#include "layer/disk_index.h"
#include "lazy/chunk_map.h"
#include "lazy/entry.h"
#include "util/fs.h"

namespace regdisk::peer {

struct Holdings::Place {
  ChunkDigest digest;
  uint32_t entry;  // in Snapshot::entries
  uint32_t chunk;  // index entry number
  uint64_t offset, length;
};

struct Holdings::Snapshot {
  struct Entry {
    std::string dir;
    std::string stamp;         // Stamp() when it was read
    oci::Digest index_digest;  // the anchored one, as the chunk map records it
    uint64_t chunks;           // index entries
  };
  std::vector<Entry> entries;
  std::vector<Place> places;  // sorted by digest, at most kMaxPlacesPerDigest each
  std::unique_ptr<std::atomic<bool>[]> dropped;  // per place: its bytes did not verify
  // Entries the scan could not use, with their Stamp(): each is logged
  // once, and read again only once it changed. "": the limits were hit.
  std::map<std::string, std::string> skipped;

  std::pair<const Place*, const Place*> Find(const ChunkDigest& d) const {
    auto [lo, hi] = std::equal_range(places.begin(), places.end(), d, Less{});
    return {places.data() + (lo - places.begin()), places.data() + (hi - places.begin())};
  }
  struct Less {
    bool operator()(const Place& a, const ChunkDigest& b) const { return a.digest < b; }
    bool operator()(const ChunkDigest& a, const Place& b) const { return a < b.digest; }
  };
};

namespace {

// Which versions of an entry's index and serve.json a scan read: a file
// rewritten (even in place) changes its inode, size or change time. "" when
// the entry has no index (not a v2 entry).
std::string Stamp(const std::string& dir) {
  std::string out;
  for (const char* name : {lazy::kIndexFile, lazy::kServeFile}) {
    struct stat st;
    if (::stat((dir + "/" + name).c_str(), &st) != 0) {
      if (out.empty()) return "";
      out += "-";
      continue;
    }
    for (uint64_t v : {uint64_t(st.st_ino), uint64_t(st.st_size), uint64_t(st.st_mtim.tv_sec),
                       uint64_t(st.st_mtim.tv_nsec), uint64_t(st.st_ctim.tv_sec), uint64_t(st.st_ctim.tv_nsec)}) {
      out += std::to_string(v) + ":";
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<Holdings::Snapshot> Holdings::Scan(const std::string& root, const Snapshot* before,
                                                   const std::function<void(const std::string&)>& log) {
  auto s = std::make_shared<Snapshot>();
  std::map<std::string, uint32_t> known;  // dir -> its entry in `before`
  std::vector<int64_t> kept_as;           // an entry of `before` -> its entry in `s`, or -1
  if (before) {
    for (uint32_t i = 0; i < before->entries.size(); ++i) known[before->entries[i].dir] = i;
    kept_as.assign(before->entries.size(), -1);
  }
  auto skip = [&](const std::string& key, const std::string& stamp, const std::string& why) {
    bool again = before && before->skipped.count(key);
    s->skipped[key] = stamp;
    if (log && !again) log(why);
  };
  bool full = false;
  for (const std::string& key : ListDir(root + "/disks")) {
    if (s->entries.size() >= kMaxServedEntries || full) {
      skip("", "", "serving the chunks of the first " + std::to_string(s->entries.size()) +
                       " entries only (limits: entries " + std::to_string(kMaxServedEntries) + ", chunks " +
                       std::to_string(kMaxHeldPlaces) + ")");
      break;
    }
    const std::string dir = lazy::EntryDir(root, key);
    const std::string stamp = Stamp(dir);
    if (stamp.empty()) continue;  // not a v2 entry
    if (before) {
      if (auto it = before->skipped.find(key); it != before->skipped.end() && it->second == stamp) {
        s->skipped.insert(*it);  // unchanged since it was refused
        continue;
      }
      if (auto it = known.find(dir); it != known.end() && before->entries[it->second].stamp == stamp) {
        kept_as[it->second] = static_cast<int64_t>(s->entries.size());  // unchanged: its places are kept below
        s->entries.push_back(before->entries[it->second]);
        continue;
      }
    }
    auto config = lazy::ReadServeConfig(dir);
    auto index = config.ok() ? lazy::ReadEntryIndex(dir, *config) : config.status();
    if (!index.ok()) {
      skip(key, stamp, "not serving the chunks of " + OneLine(index.status().message(), 300));
      continue;
    }
    auto anchor = layer::ParseAnchor(config->layer);  // ReadEntryIndex checked it
    const auto entry = static_cast<uint32_t>(s->entries.size());
    s->entries.push_back({dir, stamp, (*anchor)->digest, index->entries.size()});
    for (size_t i = 0; i < index->entries.size(); ++i) {
      const layer::IndexEntry& e = index->entries[i];
      if (e.zero()) continue;
      if (s->places.size() == kMaxHeldPlaces) {
        full = true;
        break;
      }
      s->places.push_back({e.sha256, entry, static_cast<uint32_t>(i), e.disk_offset, e.length});
    }
  }
  if (before) {
    for (const Place& p : before->places) {
      if (kept_as[p.entry] < 0) continue;
      if (s->places.size() == kMaxHeldPlaces) break;
      s->places.push_back(p);
      s->places.back().entry = static_cast<uint32_t>(kept_as[p.entry]);
    }
  }
  std::stable_sort(s->places.begin(), s->places.end(),
                   [](const Place& a, const Place& b) { return a.digest < b.digest; });
  // At most kMaxPlacesPerDigest of each digest.
  size_t kept = 0, run = 0;
  for (const Place& p : s->places) {
    if (kept > 0 && s->places[kept - 1].digest == p.digest) {
      if (run == kMaxPlacesPerDigest) continue;
      ++run;
    } else {
      run = 1;
    }
    s->places[kept++] = p;
  }
  s->places.resize(kept);
  s->dropped = std::make_unique<std::atomic<bool>[]>(kept);
  return s;
}

Holdings::Holdings(std::string root, std::chrono::milliseconds rescan_interval,
                   std::function<void(const std::string&)> log)
    : root_(std::move(root)), rescan_interval_(rescan_interval), log_(std::move(log)) {}

Holdings::~Holdings() = default;

std::shared_ptr<Holdings::Snapshot> Holdings::Current(const std::vector<ChunkDigest>& asked) {
  auto due = [&] {
    return !last_scan_ || std::chrono::steady_clock::now() - *last_scan_ >= rescan_interval_;
  };
  auto unknown = [&](const Snapshot& s) {
    return std::any_of(asked.begin(), asked.end(), [&](const ChunkDigest& d) {
      auto [lo, hi] = s.Find(d);
      return lo == hi;
    });
  };
  std::shared_ptr<Snapshot> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = snapshot_;
    if (s && (!unknown(*s) || !due())) return s;
  }
  std::lock_guard<std::mutex> scanning(scan_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshot_ != s) return snapshot_;  // another thread scanned meanwhile
  }
  auto fresh = Scan(root_, s.get(), log_);
  ++scans_;
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = fresh;
  last_scan_ = std::chrono::steady_clock::now();
  return fresh;
}

// What one ask learnt of an entry's state: read once per ask, however many
// of its chunks the ask names.
struct Holdings::EntryState {
  bool gone = false;  // removed since the scan (gc): it lists nothing now
  bool promoted = false;
  std::vector<uint8_t> bits;  // the chunk map; empty when missing or bad
};

void Holdings::Classify(const Snapshot& s, const ChunkDigest& digest, std::map<uint32_t, EntryState>& states,
                        std::vector<const Place*>* held, bool* pending) {
  ++lookups_;
  auto [lo, hi] = s.Find(digest);
  for (const Place* p = lo; p != hi; ++p) {
    auto [it, fresh] = states.try_emplace(p->entry);
    EntryState& state = it->second;
    if (fresh) {
      const Snapshot::Entry& e = s.entries[p->entry];
      state.gone = !PathExists(e.dir + "/" + lazy::kIndexFile);
      state.promoted = !state.gone && PathExists(e.dir + "/" + lazy::kDiskFile);
      if (!state.gone && !state.promoted) {
        auto bits = lazy::ReadChunkMap(e.dir + "/" + lazy::kChunksFile, e.index_digest, e.chunks);
        if (bits.ok()) state.bits = std::move(*bits);
      }
    }
    if (state.gone) continue;
    if (!state.promoted && !lazy::ChunkMapBit(state.bits, p->chunk)) {
      *pending = true;
    } else if (!s.dropped[p - s.places.data()]) {
      held->push_back(p);
    }
  }
}

ChunkRead Holdings::Read(const ChunkDigest& digest) {
  auto s = Current({digest});
  std::map<uint32_t, EntryState> states;
  std::vector<const Place*> held;
  bool pending = false;
  Classify(*s, digest, states, &held, &pending);
  for (const Place* p : held) {
    const Snapshot::Entry& e = s->entries[p->entry];
    // Promoted since the map was read, or not: whichever file exists now.
    std::string file = e.dir + "/" + lazy::kDiskFile;
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      file = e.dir + "/" + lazy::kPartialFile;
      fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) continue;
    ChunkRead r;
    r.bytes.resize(p->length);
    Status read = PreadAll(fd, r.bytes.data(), r.bytes.size(), p->offset, file);
    ::close(fd);
    layer::IndexEntry want;
    want.length = p->length;
    want.sha256 = digest;
    if (read.ok()) read = layer::CheckChunk(want, r.bytes);
    if (read.ok()) {
      r.state = ChunkState::kHeld;
      return r;
    }
    s->dropped[p - s->places.data()] = true;
    if (log_) log_("not serving a chunk whose bytes do not verify: " + OneLine(read.message(), 300));
  }
  return ChunkRead{pending ? ChunkState::kPending : ChunkState::kAbsent, {}};
}

std::vector<bool> Holdings::Have(const std::vector<ChunkDigest>& digests) {
  auto s = Current(digests);
  std::vector<bool> out;
  out.reserve(digests.size());
  std::map<uint32_t, EntryState> states;
  for (const ChunkDigest& d : digests) {
    std::vector<const Place*> held;
    bool pending = false;
    Classify(*s, d, states, &held, &pending);
    out.push_back(!held.empty());
  }
  return out;
}

}  // namespace regdisk::peer
