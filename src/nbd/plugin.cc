// regdisk-nbd.so: the nbdkit plugin that serves a lazy cache entry
// (lazy/entry.h) read-only over NBD while it is being downloaded.
//
//   nbdkit -f --log=stderr --unix ROOT/disks/KEY/nbd.sock regdisk-nbd.so root=ROOT key=KEY
//
// Before serving (.get_ready) it reads serve.json and re-checks the entry's
// index against the anchor digest in serve.json's layer annotations; a
// mismatch stops nbdkit before it listens. After nbdkit forks (.after_fork:
// threads and connections must not cross a fork) it opens the chunk store
// (lazy/chunk_store.h), asking serve.json's peers (if any) before the
// registry, and starts the background fill: after serve.json's
// fillDelay, every missing chunk at its fillRate, retried every kFillRetryPause after a failure,
// then lazy Promote (once: its checks of a complete disk do not change);
// it keeps serving from the same file after that.
//
// Every byte returned by pread comes from a chunk verified against the
// index; zero extents read as zeros. A read whose chunk fails verification,
// or that the registry refuses (404, 401/403), is EIO at once (the VM pauses
// with rerror=stop), and the log names the chunk. A registry outage
// (unreachable, timeouts, 429, 5xx) is waited out instead, for up to
// kOutageWait: the read waits, and so the guest's I/O, and it completes
// when the registry is back; the log says when the outage began (with the
// chunk) and when it ended. The background fill waits the same way. The
// waits are nbdkit_nanosleep's, which nbdkit ends at shutdown, so a server
// told to stop stops at once (after a request in flight, which the registry
// flags' stallTimeout bounds). The registry is connected to on the first
// chunk it must give, so a server for a complete entry, or one started
// while the registry is down, still starts.
//
// Logs go to stderr through nbdkit_error/nbdkit_debug, each one line with
// outside data escaped (OneLine).
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lazy/chunk_store.h"
#include "lazy/fill.h"
#include "peer/client.h"
#include "resolve/store.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

namespace regdisk::nbd {
namespace {

// After a failed fill pass (the registry is down), the wait before the
// next: reads in between still try the registry themselves.
constexpr auto kFillRetryPause = std::chrono::seconds(10);
// How long a read waits out a registry outage before it fails (EIO; with
// rerror=stop the VM pauses): longer than a registry takes to restart or
// fail over (seconds to a few minutes), shorter than anyone waits for a VM
// whose disk does not answer. serve.json's outageWait (tests) shortens it.
constexpr auto kOutageWait = std::chrono::minutes(10);
// A cache key is 32 hex digits, '-', and 16 more (or "only"); anything
// longer is not one.
constexpr size_t kMaxKeyBytes = 64;

struct Server {
  std::string root, key;
  lazy::ServeConfig config;
  int parallel = 4;
  std::mutex source_mu;
  std::unique_ptr<oci::Store> source;  // connected on first use
  std::unique_ptr<lazy::ChunkStore> store;
  std::thread fill;
  std::atomic<bool> stop{false};
  std::mutex stop_mu;
  std::condition_variable stopped;
};
Server* g = nullptr;

void LogError(const std::string& s) { nbdkit_error("%s", OneLine(s, 4096).c_str()); }
void LogDebug(const std::string& s) { nbdkit_debug("%s", OneLine(s, 4096).c_str()); }

bool ValidKey(const std::string& k) {
  if (k.empty() || k.size() > kMaxKeyBytes) return false;
  for (char c : k) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Status ReadBlob(uint64_t offset, char* buf, size_t len) {
  oci::Store* store;
  {
    std::lock_guard<std::mutex> lock(g->source_mu);
    if (!g->source) {
      ASSIGN_OR_RETURN(g->source, resolve::OpenServeSource(g->config.image, g->config.registry, g->config.auth_file));
    }
    store = g->source.get();
  }
  return store->ReadAt(g->config.layer.digest, offset, buf, len);
}

void Fill() {
  // The guest's boot has the link to itself first (serve.json's fillDelay).
  {
    std::unique_lock<std::mutex> lock(g->stop_mu);
    if (g->stopped.wait_for(lock, std::chrono::seconds(g->config.fill_delay), [] { return g->stop.load(); })) return;
  }
  for (;;) {
    Status s = g->store->FillMissing(g->parallel, g->config.fill_rate, &g->stop);
    if (g->stop) return;
    if (!s.ok()) {
      LogError("background fill: " + s.message() + "; trying again in " +
               std::to_string(kFillRetryPause.count()) + " s");
      std::unique_lock<std::mutex> lock(g->stop_mu);
      if (g->stopped.wait_for(lock, kFillRetryPause, [] { return g->stop.load(); })) return;
      continue;
    }
    // Every chunk is verified: a check of the whole disk that fails will
    // fail the same way again; the entry then stays lazy and keeps serving.
    if (Status p = g->store->Promote(/*locked=*/false); !p.ok()) {
      LogError("the complete disk was not promoted: " + p.message());
      return;
    }
    const lazy::StoreStats& st = g->store->stats();
    LogDebug("fill done: " + std::to_string(st.source_chunks) + " chunks (" + std::to_string(st.source_bytes) +
             " bytes) from the registry, " + std::to_string(st.peer_chunks) + " (" + std::to_string(st.peer_bytes) +
             " bytes) from peers, " + std::to_string(st.donor_chunks) + " from donors, " +
             std::to_string(st.local_chunks) + " re-verified in place");
    return;
  }
}

int Config(const char* key, const char* value) {
  if (std::string(key) == "root") {
    g->root = value;
  } else if (std::string(key) == "key") {
    g->key = value;
  } else {
    LogError("unknown parameter " + Quote(key) + " (expected root= and key=)");
    return -1;
  }
  return 0;
}

int ConfigComplete() {
  if (g->root.empty() || !ValidKey(g->key)) {
    LogError("root=ROOT and key=KEY (a cache key) are required");
    return -1;
  }
  return 0;
}

// Refuses, before nbdkit listens, an entry whose index is not the anchored one.
int GetReady() {
  const std::string dir = lazy::EntryDir(g->root, g->key);
  auto config = lazy::ReadServeConfig(dir);
  if (!config.ok()) {
    LogError(config.status().message());
    return -1;
  }
  g->config = std::move(*config);
  if (auto index = lazy::ReadEntryIndex(dir, g->config); !index.ok()) {
    LogError("refusing to serve: " + index.status().message());
    return -1;
  }
  auto flags = resolve::ParseRegistryFlagsJson(g->config.registry);
  if (!flags.ok()) {
    LogError(dir + "/serve.json: " + flags.status().message());
    return -1;
  }
  g->parallel = flags->parallel;
  return 0;
}

// The store's wait between tries in an outage: false once nbdkit shuts
// down (or, in a client's request, when the client went away).
bool Pause(std::chrono::milliseconds d) {
  const auto ms = static_cast<unsigned>(d.count());
  return nbdkit_nanosleep(ms / 1000, (ms % 1000) * 1000000) == 0 && !g->stop;
}

std::chrono::milliseconds OutageWait() {
  const uint64_t limit = std::chrono::duration_cast<std::chrono::seconds>(kOutageWait).count();
  const uint64_t test = g->config.outage_wait;
  return std::chrono::seconds(test != 0 && test < limit ? test : limit);
}

int AfterFork() {
  lazy::StoreOptions options{.parallel = g->parallel,
                             .use_donors = true,
                             .log = LogDebug,
                             .warn = LogError,
                             .outage_wait = OutageWait(),
                             .pause = Pause};
  // serve.json's peers (none: nullptr, the store asks the registry alone).
  auto peers = peer::OpenServePeers(g->config, LogError);
  if (!peers.ok()) {
    LogError(peers.status().message());
    return -1;
  }
  options.peers = *peers;
  auto store = lazy::ChunkStore::Open(g->root, g->key, ReadBlob, options);
  if (!store.ok()) {
    LogError(store.status().message());
    return -1;
  }
  g->store = std::move(*store);
  if (!g->store->promoted()) g->fill = std::thread(Fill);
  return 0;
}

void Load() { g = new Server; }

void Unload() {
  if (g == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(g->stop_mu);
    g->stop = true;
  }
  g->stopped.notify_all();
  if (g->fill.joinable()) g->fill.join();
  g->store.reset();  // its read-ahead threads may still be in Pause, which reads g
  delete g;
  g = nullptr;
}

void* Open(int readonly) {
  (void)readonly;
  return g;
}

int64_t GetSize(void* handle) {
  (void)handle;
  return static_cast<int64_t>(g->store->size());
}

int CanMultiConn(void* handle) {
  (void)handle;
  return 1;  // read-only: every connection sees the same bytes
}

int Pread(void* handle, void* buf, uint32_t count, uint64_t offset, uint32_t flags) {
  (void)handle, (void)flags;
  Status s = g->store->Read(offset, count, static_cast<char*>(buf));
  if (s.ok()) return 0;
  LogError("read of " + std::to_string(count) + " bytes at " + std::to_string(offset) + ": " + s.message());
  nbdkit_set_error(EIO);
  return -1;
}

nbdkit_plugin MakePlugin() {
  nbdkit_plugin p{};
  p.name = "regdisk";
  p.longname = "regdisk lazy disk server";
  p.description = "Serves a regdisk v2 disk from the node cache, fetching verified chunks from the registry";
  p.load = Load;
  p.unload = Unload;
  p.config = Config;
  p.config_complete = ConfigComplete;
  p.config_help = "root=<DIR>  the node root (ROOT)\nkey=<KEY>   the cache entry ROOT/disks/KEY";
  p.get_ready = GetReady;
  p.after_fork = AfterFork;
  p.open = Open;
  p.get_size = GetSize;
  p.can_multi_conn = CanMultiConn;
  p.pread = Pread;
  p.errno_is_preserved = 0;
  return p;
}

nbdkit_plugin plugin = MakePlugin();

}  // namespace
}  // namespace regdisk::nbd

NBDKIT_REGISTER_PLUGIN(regdisk::nbd::plugin)
