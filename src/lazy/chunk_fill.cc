// ChunkStore::FillMissing: every chunk not yet verified, in passes when
// peers are loading some of them (lazy/chunk_store.h).
#include <algorithm>
#include <chrono>
#include <thread>

#include "lazy/chunk_store.h"

namespace regdisk::lazy {
namespace {

// How often a fill looks at its stop flag while it waits (for its rate,
// or between passes).
constexpr auto kStopPoll = std::chrono::milliseconds(100);

bool Stopped(const std::atomic<bool>* stop) { return stop != nullptr && *stop; }

// Sleeps until `until` or `stop`.
void SleepUntil(std::chrono::steady_clock::time_point until, const std::atomic<bool>* stop) {
  while (std::chrono::steady_clock::now() < until && !Stopped(stop)) std::this_thread::sleep_for(kStopPoll);
}

}  // namespace

std::vector<size_t> ChunkStore::FillOrder() const {
  std::vector<size_t> owned, others;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < index_.entries.size(); ++i) {
    const layer::IndexEntry& e = index_.entries[i];
    if (e.zero() || state_[i] == State::kVerified) continue;
    (!options_.peers || options_.peers->OwnsChunk(e) ? owned : others).push_back(i);
  }
  owned.insert(owned.end(), others.begin(), others.end());
  return owned;
}

Status ChunkStore::FillMissing(int threads, uint64_t rate, const std::atomic<bool>* stop) {
  const auto start = std::chrono::steady_clock::now();
  std::atomic<uint64_t> bytes{0};
  // Only what comes from the source counts against the rate: a chunk may
  // start once the bytes up to its end fit it.
  auto before_source = [&](const layer::IndexEntry& e) {
    if (rate == 0) return;
    const uint64_t ahead = bytes.fetch_add(e.length) + e.length;
    SleepUntil(start + std::chrono::microseconds(ahead / rate * 1000000 + ahead % rate * 1000000 / rate), stop);
  };
  std::vector<size_t> todo = FillOrder();
  size_t missing = Missing();
  auto progress = start;  // when a chunk last arrived
  bool last = false;
  while (!todo.empty() && !Stopped(stop)) {
    std::vector<size_t> deferred;
    RETURN_IF_ERROR(FillPass(todo, threads, last, before_source, stop, &deferred));
    const auto now = std::chrono::steady_clock::now();
    if (const size_t left = Missing(); left < missing) {
      missing = left;
      progress = now;
    }
    last = now - progress >= options_.fill_peer_wait;
    if (!last && !deferred.empty()) SleepUntil(now + kFillPeerPoll, stop);
    todo = std::move(deferred);
  }
  if (Stopped(stop)) return Unavailable("the fill was stopped");
  return OkStatus();
}

Status ChunkStore::FillPass(const std::vector<size_t>& todo, int threads, bool last,
                            const std::function<void(const layer::IndexEntry&)>& before_source,
                            const std::atomic<bool>* stop, std::vector<size_t>* deferred) {
  std::atomic<size_t> next{0};
  std::vector<char> again(todo.size(), 0);  // todo[k] is deferred
  std::mutex mu;  // guards failure
  Status failure;
  auto fill = [&](size_t k) -> Status {
    const size_t i = todo[k];
    if (Verified(i)) return OkStatus();
    const layer::IndexEntry& e = index_.entries[i];
    bool pending = false;
    RETURN_IF_ERROR(Once(i, [&] { return LoadNearby(i, &pending); }));
    if (Verified(i)) return OkStatus();
    if (pending && !last && !options_.peers->OwnsChunk(e)) {  // a peer is loading it: ask again later
      again[k] = 1;
      return OkStatus();
    }
    before_source(e);
    if (Stopped(stop)) return OkStatus();
    return Once(i, [&]() -> StatusOr<bool> {
      RETURN_IF_ERROR(LoadFromSource(i));
      return true;
    });
  };
  auto run = [&] {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failure.ok() || Stopped(stop)) return;
      }
      const size_t k = next++;
      if (k >= todo.size()) return;
      if (Status s = fill(k); !s.ok()) {
        stats_.failed++;
        std::lock_guard<std::mutex> lock(mu);
        if (failure.ok()) failure = s;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(run);
  run();
  for (std::thread& t : pool) t.join();
  for (size_t k = 0; k < todo.size(); ++k) {
    if (again[k]) deferred->push_back(todo[k]);
  }
  return failure;
}

}  // namespace regdisk::lazy
