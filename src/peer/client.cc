#include "peer/client.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "layer/chunk_reader.h"
#include "layer/disk_index.h"
#include "peer/protocol.h"
#include "registry/http.h"

namespace regdisk::peer {
namespace {

using Clock = std::chrono::steady_clock;

// Transport error causes are shown this long at most in a log line.
constexpr size_t kMaxCauseShown = 200;
// A failure this close to the timeout counts as one: libcurl's timer and
// ours start a little apart.
constexpr std::chrono::milliseconds kTimerSlack{50};

// splitmix64's finalizer: a bijection that mixes every input bit into every
// output bit.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a over the name, mixed.
uint64_t NameHash(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return Mix(h);
}

uint64_t Weight(uint64_t name_hash, const std::array<uint8_t, 32>& digest) {
  uint64_t d = 0;
  for (int i = 0; i < 8; ++i) d = (d << 8) | digest[i];  // a sha256: uniform already
  return Mix(name_hash ^ d);
}

struct PeerState {
  std::string name;
  std::string url;  // "http://NAME"
  uint64_t hash = 0;
  Clock::time_point bad_until{}, down_until{};  // guarded by Client::mu_
};

class Client final : public PeerClient {
 public:
  Client(PeerOptions options, std::vector<SpecItem> items, std::string self)
      : options_(std::move(options)), items_(std::move(items)), self_(std::move(self)),
        self_hash_(NameHash(self_)), http_(registry::http::ClientOptions{}) {
    dynamic_ = std::any_of(items_.begin(), items_.end(),
                           [](const SpecItem& i) { return i.kind != SpecItem::Kind::kPeer; });
    // Now, not at the first Fetch: OwnsChunk (no I/O) must know the peers
    // from the start, or a fill would take every chunk as its own.
    Refresh();
  }

  lazy::PeerResult Fetch(const layer::IndexEntry& e) override {
    lazy::PeerResult result;
    if (e.zero()) return result;
    MaybeRefresh();
    std::vector<std::shared_ptr<PeerState>> order = Ranked(e, /*with_self=*/false);
    if (order.size() > kMaxAskedPerChunk) order.resize(kMaxAskedPerChunk);
    for (const auto& p : order) {
      if (Ask(*p, e, result)) break;
    }
    return result;
  }

  bool OwnsChunk(const layer::IndexEntry& e) override {
    std::string owner = Owner(e);
    return owner.empty() || owner == self_;
  }

  std::string Owner(const layer::IndexEntry& e) override {
    std::vector<std::shared_ptr<PeerState>> order = Ranked(e, /*with_self=*/true);
    return order.empty() ? "" : order.front()->name;
  }

  PeerCounters counters() const override {
    return PeerCounters{asked_, hits_, bad_bytes_, timeouts_, errors_, pending_};
  }

 private:
  void Log(const std::string& line) {
    if (options_.log) options_.log(line);
  }

  // The peers not bad or down (and self, if asked for and set), highest
  // rendezvous weight for `e` first; ties (equal weights) by name.
  std::vector<std::shared_ptr<PeerState>> Ranked(const layer::IndexEntry& e, bool with_self) {
    std::vector<std::pair<uint64_t, std::shared_ptr<PeerState>>> ranked;
    auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& p : peers_) {
        if (p->bad_until > now || p->down_until > now) continue;
        ranked.emplace_back(Weight(p->hash, e.sha256), p);
      }
    }
    if (with_self && !self_.empty()) {
      auto me = std::make_shared<PeerState>();
      me->name = self_;
      ranked.emplace_back(Weight(self_hash_, e.sha256), std::move(me));
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second->name < b.second->name;
    });
    std::vector<std::shared_ptr<PeerState>> out;
    out.reserve(ranked.size());
    for (auto& [w, p] : ranked) out.push_back(std::move(p));
    return out;
  }

  // Marks `p` out until now + `time` (its bad or down clock); logs when it
  // was in.
  void MarkOut(PeerState& p, bool bad, const std::string& why) {
    auto now = Clock::now();
    bool was_in;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_in = p.bad_until <= now && p.down_until <= now;
      if (bad) p.bad_until = now + kBadPeerTime;
      else p.down_until = now + kDownPeerTime;
    }
    if (was_in) {
      auto secs = bad ? kBadPeerTime.count() : kDownPeerTime.count();
      Log("peer " + p.name + ": " + OneLine(why, kMaxCauseShown) + "; not asked for " +
          std::to_string(secs) + " s");
    }
  }

  // One request; true when it ends the Fetch (verified bytes in `result`).
  bool Ask(PeerState& p, const layer::IndexEntry& e, lazy::PeerResult& result) {
    registry::http::Request req;
    req.url = p.url + kChunkPathPrefix + layer::ShaHex(e.sha256);
    req.max_body = e.length;
    req.total_timeout = options_.timeout;
    req.direct = true;
    ++asked_;
    auto start = Clock::now();
    auto resp = http_.Do(req);
    if (!resp.ok()) {
      if (resp.status().code() == Code::kInvalidArgument) {  // more than the chunk's bytes
        ++bad_bytes_;
        MarkOut(p, true, "sent more than the " + std::to_string(e.length) + " bytes of a chunk");
      } else {
        bool timed_out = Clock::now() - start + kTimerSlack >= options_.timeout;
        ++(timed_out ? timeouts_ : errors_);
        MarkOut(p, false, (timed_out ? "no answer within " + std::to_string(options_.timeout.count()) + " ms"
                                     : resp.status().message()));
      }
      return false;
    }
    if (resp->status == 200) {
      if (Status st = layer::CheckChunk(e, resp->body); !st.ok()) {
        ++bad_bytes_;
        MarkOut(p, true, "bytes of chunk sha256:" + layer::ShaHex(e.sha256) + " did not verify");
        return false;
      }
      ++hits_;
      result.bytes = std::move(resp->body);
      return true;
    }
    if (resp->status == 404) {
      // kChunkStateHeader, lowercase as Response keeps header names.
      if (resp->Header("regdisk-chunk") == kPending) {
        ++pending_;
        result.pending = true;
      }
      return false;
    }
    ++errors_;  // 503 (busy) and the like: ask the next one, the peer stays in
    return false;
  }

  void MaybeRefresh() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!dynamic_ || refreshing_ || Clock::now() < next_refresh_) return;
      refreshing_ = true;
    }
    Refresh();
  }

  // Reads the spec's items again (last_ and the result are this thread's:
  // refreshing_ keeps others out); peer states survive by name.
  void Refresh() {
    std::vector<std::string> errors;
    std::vector<PeerAddr> addrs = ResolvePeers(items_, last_, errors);
    for (const std::string& err : errors) Log(err);
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, std::shared_ptr<PeerState>> old;
    for (auto& p : peers_) old[p->name] = p;
    peers_.clear();
    for (const PeerAddr& a : addrs) {
      std::string name = a.Name();
      if (name == self_) continue;
      auto it = old.find(name);
      if (it != old.end()) {
        peers_.push_back(it->second);
        continue;
      }
      auto p = std::make_shared<PeerState>();
      p->name = name;
      p->url = "http://" + name;
      p->hash = NameHash(name);
      peers_.push_back(std::move(p));
    }
    next_refresh_ = Clock::now() + kPeerRefresh;
    refreshing_ = false;
  }

  const PeerOptions options_;
  const std::vector<SpecItem> items_;
  const std::string self_;
  const uint64_t self_hash_;
  bool dynamic_ = false;
  registry::http::Client http_;
  std::vector<std::vector<PeerAddr>> last_;  // ResolvePeers' memory; the refreshing thread's
  std::mutex mu_;
  std::vector<std::shared_ptr<PeerState>> peers_;
  Clock::time_point next_refresh_{};
  bool refreshing_ = false;
  std::atomic<uint64_t> asked_{0}, hits_{0}, bad_bytes_{0}, timeouts_{0}, errors_{0}, pending_{0};
};

}  // namespace

uint64_t RendezvousWeight(std::string_view peer, const std::array<uint8_t, 32>& digest) {
  return Weight(NameHash(peer), digest);
}

StatusOr<std::shared_ptr<lazy::PeerChunks>> OpenPeers(const PeerOptions& options) {
  auto parsed = ParsePeerSpec(options.peers);
  if (!parsed.ok()) return parsed.status().Annotate("--peers");
  std::vector<SpecItem> items = std::move(*parsed);
  std::string self;
  if (!options.self.empty()) {
    auto addr = ParsePeerAddr(options.self);
    if (!addr.ok()) {
      return InvalidArgument("--peer-self " + Quote(options.self, 80) + ": " + addr.status().message());
    }
    self = addr->Name();
  }
  if (options.timeout.count() <= 0) return InvalidArgument("--peer-timeout must be more than 0 ms");
  bool any = std::any_of(items.begin(), items.end(), [&](const SpecItem& i) {
    return i.kind != SpecItem::Kind::kPeer || i.addr.Name() != self;
  });
  if (!any) return std::shared_ptr<lazy::PeerChunks>();
  return std::shared_ptr<lazy::PeerChunks>(std::make_shared<Client>(options, std::move(items), std::move(self)));
}

StatusOr<std::shared_ptr<lazy::PeerChunks>> OpenServePeers(const lazy::ServeConfig& serve,
                                                          std::function<void(const std::string&)> log) {
  return OpenPeers({.peers = serve.peers,
                    .self = serve.peer_self,
                    .timeout = serve.peer_timeout_ms != 0 ? std::chrono::milliseconds(serve.peer_timeout_ms)
                                                          : kDefaultPeerTimeout,
                    .log = std::move(log)});
}

}  // namespace regdisk::peer
