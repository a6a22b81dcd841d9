#include "peer/client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "layer/disk_index.h"
#include "peer/hostile_peer_test_util.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::peer {
namespace {

using std::chrono::milliseconds;
using testing::Behaviour;
using testing::HostilePeer;
using Clock = std::chrono::steady_clock;

// Generous room for a loaded CI machine on top of a timeout: these bound
// behaviour (a timeout paid once, not per chunk), not speed.
constexpr milliseconds kSlack{3000};

struct Chunk {
  layer::IndexEntry entry;
  std::string bytes;
};

Chunk MakeChunk(int i) {
  Chunk c;
  c.bytes = std::string(4096 + i, static_cast<char>('a' + i % 26)) + std::to_string(i);
  c.entry.disk_offset = static_cast<uint64_t>(i) << 20;
  c.entry.length = c.bytes.size();
  c.entry.blob_offset = 1;
  c.entry.blob_length = 1;
  c.entry.sha256 = layer::ShaFromHex(Sha256::HexOf(c.bytes));
  return c;
}

std::vector<Chunk> MakeChunks(int n) {
  std::vector<Chunk> out;
  for (int i = 0; i < n; ++i) out.push_back(MakeChunk(i));
  return out;
}

std::map<std::string, std::string> Held(const std::vector<Chunk>& chunks) {
  std::map<std::string, std::string> m;
  for (const Chunk& c : chunks) m[layer::ShaHex(c.entry.sha256)] = c.bytes;
  return m;
}

struct Opened {
  std::shared_ptr<PeerClient> client;
  std::shared_ptr<std::vector<std::string>> logs = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
};

Opened Open(const std::string& spec, milliseconds timeout = kDefaultPeerTimeout, const std::string& self = "") {
  Opened o;
  PeerOptions options;
  options.peers = spec;
  options.self = self;
  options.timeout = timeout;
  options.log = [logs = o.logs, mu = o.mu](const std::string& line) {
    std::lock_guard<std::mutex> lock(*mu);
    logs->push_back(line);
  };
  auto peers = OpenPeers(options);
  EXPECT_TRUE(peers.ok()) << peers.status().message();
  if (peers.ok()) o.client = std::dynamic_pointer_cast<PeerClient>(*peers);
  EXPECT_NE(o.client, nullptr);
  return o;
}

// The chunks of `chunks` for which `first` outranks every one of `others`.
std::vector<Chunk> RankedFirst(const std::vector<Chunk>& chunks, const std::string& first,
                               const std::vector<std::string>& others) {
  std::vector<Chunk> out;
  for (const Chunk& c : chunks) {
    bool top = true;
    for (const std::string& o : others) {
      top = top && RendezvousWeight(first, c.entry.sha256) > RendezvousWeight(o, c.entry.sha256);
    }
    if (top) out.push_back(c);
  }
  return out;
}

TEST(PeerClient, NoPeersIsNoClient) {
  PeerOptions options;
  auto none = OpenPeers(options);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  options.peers = "127.0.0.1:7480";
  options.self = "127.0.0.1:7480";
  ASSERT_TRUE(OpenPeers(options).ok());
  EXPECT_EQ(*OpenPeers(options), nullptr);  // only itself
  options.peers = "127.0.0.1:7480,nope";
  EXPECT_EQ(OpenPeers(options).status().code(), Code::kInvalidArgument);
  options.peers = "127.0.0.1:7480";
  options.self = "127.0.0.1:0";
  EXPECT_EQ(OpenPeers(options).status().code(), Code::kInvalidArgument);
  options.self = "";
  options.timeout = milliseconds(0);
  EXPECT_EQ(OpenPeers(options).status().code(), Code::kInvalidArgument);
}

TEST(PeerClient, HonestPeerServesVerifiedBytesOverOneConnection) {
  std::vector<Chunk> chunks = MakeChunks(8);
  HostilePeer peer(Held({chunks.begin(), chunks.begin() + 6}), Behaviour::kHonest);
  Opened o = Open(peer.name());
  for (int i = 0; i < 6; ++i) {
    lazy::PeerResult r = o.client->Fetch(chunks[i].entry);
    ASSERT_TRUE(r.bytes) << i;
    EXPECT_EQ(*r.bytes, chunks[i].bytes);
  }
  lazy::PeerResult missing = o.client->Fetch(chunks[7].entry);
  EXPECT_FALSE(missing.bytes);
  EXPECT_FALSE(missing.pending);
  EXPECT_EQ(peer.connections(), 1);  // kept alive
  PeerCounters c = o.client->counters();
  EXPECT_EQ(c.asked, 7u);
  EXPECT_EQ(c.hits, 6u);
  EXPECT_EQ(c.bad_bytes + c.timeouts + c.errors, 0u);
}

TEST(PeerClient, PeersAreAskedDirectlyNeverThroughAProxy) {
  std::vector<Chunk> chunks = MakeChunks(1);
  HostilePeer peer(Held(chunks), Behaviour::kHonest);
  int dead_port;
  {
    HostilePeer gone({}, Behaviour::kHonest);
    dead_port = gone.port();
  }
  std::string proxy = "http://127.0.0.1:" + std::to_string(dead_port);
  ::setenv("http_proxy", proxy.c_str(), 1);
  ::setenv("no_proxy", "", 1);
  Opened o = Open(peer.name());
  lazy::PeerResult r = o.client->Fetch(chunks[0].entry);
  ::unsetenv("http_proxy");
  ::unsetenv("no_proxy");
  EXPECT_TRUE(r.bytes);
}

TEST(PeerClient, CorruptPeerGivesNoBytesIsMarkedBadAndTheOtherIsUsed) {
  std::vector<Chunk> chunks = MakeChunks(64);
  HostilePeer liar(Held(chunks), Behaviour::kCorrupt);
  HostilePeer honest(Held(chunks), Behaviour::kHonest);
  Opened o = Open(liar.name() + "," + honest.name());
  std::vector<Chunk> liar_first = RankedFirst(chunks, liar.name(), {honest.name()});
  ASSERT_GE(liar_first.size(), 8u);
  for (const Chunk& c : liar_first) EXPECT_EQ(o.client->Owner(c.entry), liar.name());
  for (const Chunk& c : liar_first) {
    lazy::PeerResult r = o.client->Fetch(c.entry);
    ASSERT_TRUE(r.bytes);
    EXPECT_EQ(*r.bytes, c.bytes);  // the honest peer's, verified
  }
  EXPECT_EQ(liar.requests(), 1);  // bad after its first answer
  EXPECT_EQ(o.client->counters().bad_bytes, 1u);
  for (const Chunk& c : chunks) EXPECT_EQ(o.client->Owner(c.entry), honest.name());
  ASSERT_EQ(o.logs->size(), 1u);  // logged once
  EXPECT_NE((*o.logs)[0].find(liar.name()), std::string::npos) << (*o.logs)[0];
  EXPECT_NE((*o.logs)[0].find("did not verify"), std::string::npos) << (*o.logs)[0];
}

TEST(PeerClient, HangingPeerCostsItsTimeoutOnce) {
  constexpr milliseconds kTimeout{300};
  std::vector<Chunk> chunks = MakeChunks(96);
  HostilePeer hang(Held(chunks), Behaviour::kHang);
  HostilePeer honest(Held(chunks), Behaviour::kHonest);
  Opened o = Open(hang.name() + "," + honest.name(), kTimeout);
  std::vector<Chunk> hang_first = RankedFirst(chunks, hang.name(), {honest.name()});
  ASSERT_GE(hang_first.size(), 16u);
  auto start = Clock::now();
  lazy::PeerResult first = o.client->Fetch(hang_first[0].entry);
  EXPECT_LE(Clock::now() - start, kTimeout + kSlack);
  ASSERT_TRUE(first.bytes);
  EXPECT_EQ(*first.bytes, hang_first[0].bytes);
  start = Clock::now();
  for (const Chunk& c : hang_first) {
    lazy::PeerResult r = o.client->Fetch(c.entry);
    ASSERT_TRUE(r.bytes);
  }
  EXPECT_LE(Clock::now() - start, kSlack);  // not asked again: well under 16 timeouts
  EXPECT_EQ(hang.requests(), 1);
  EXPECT_EQ(o.client->counters().timeouts, 1u);
  EXPECT_FALSE(o.client->OwnsChunk(hang_first[0].entry));  // no self: the honest peer owns
  EXPECT_EQ(o.client->Owner(hang_first[0].entry), honest.name());
}

TEST(PeerClient, SlowPeerWithinItsTimeoutIsUsedBeyondItIsNot) {
  std::vector<Chunk> chunks = MakeChunks(2);
  HostilePeer slow(Held(chunks), Behaviour::kSlow, milliseconds(100));
  Opened patient = Open(slow.name(), milliseconds(5000));
  EXPECT_TRUE(patient.client->Fetch(chunks[0].entry).bytes);
  HostilePeer slower(Held(chunks), Behaviour::kSlow, milliseconds(2000));
  Opened hasty = Open(slower.name(), milliseconds(200));
  auto start = Clock::now();
  EXPECT_FALSE(hasty.client->Fetch(chunks[0].entry).bytes);
  EXPECT_LE(Clock::now() - start, milliseconds(200) + kSlack);
  EXPECT_EQ(hasty.client->counters().timeouts, 1u);
}

TEST(PeerClient, MisbehavingBodiesAreNeverReturned) {
  std::vector<Chunk> chunks = MakeChunks(2);
  struct Case {
    Behaviour behaviour;
    bool bad;  // marked bad (else down)
  };
  for (Case k : {Case{Behaviour::kOversize, true}, Case{Behaviour::kUnbounded, true},
                 Case{Behaviour::kShort, true}, Case{Behaviour::kCorrupt, true},
                 Case{Behaviour::kCloseMidBody, false}}) {
    SCOPED_TRACE(static_cast<int>(k.behaviour));
    HostilePeer peer(Held(chunks), k.behaviour);
    Opened o = Open(peer.name());
    lazy::PeerResult r = o.client->Fetch(chunks[0].entry);
    EXPECT_FALSE(r.bytes);
    EXPECT_FALSE(r.pending);
    PeerCounters c = o.client->counters();
    EXPECT_EQ(c.bad_bytes, k.bad ? 1u : 0u);
    EXPECT_EQ(c.errors, k.bad ? 0u : 1u);
    EXPECT_EQ(o.client->Owner(chunks[0].entry), "");  // out: nobody left
    EXPECT_TRUE(o.client->OwnsChunk(chunks[0].entry));
    EXPECT_FALSE(o.client->Fetch(chunks[1].entry).bytes);
    EXPECT_EQ(peer.requests(), 1);
  }
  // Bytes after a right Content-Length are not the chunk's: the chunk is.
  HostilePeer extra(Held(chunks), Behaviour::kExtra);
  Opened o = Open(extra.name());
  for (const Chunk& c : chunks) {
    lazy::PeerResult r = o.client->Fetch(c.entry);
    ASSERT_TRUE(r.bytes);
    EXPECT_EQ(*r.bytes, c.bytes);
  }
}

TEST(PeerClient, PendingAbsentBusyAndRefused) {
  std::vector<Chunk> chunks = MakeChunks(1);
  HostilePeer pending({}, Behaviour::kPending);
  HostilePeer absent({}, Behaviour::kHonest);
  HostilePeer busy({}, Behaviour::kBusy);
  int port;
  {
    HostilePeer gone({}, Behaviour::kHonest);
    port = gone.port();
  }
  Opened p = Open(pending.name() + "," + absent.name());
  lazy::PeerResult r = p.client->Fetch(chunks[0].entry);
  EXPECT_FALSE(r.bytes);
  EXPECT_TRUE(r.pending);
  EXPECT_EQ(p.client->counters().pending, 1u);
  Opened a = Open(absent.name() + "," + busy.name());
  r = a.client->Fetch(chunks[0].entry);
  EXPECT_FALSE(r.bytes || r.pending);
  EXPECT_FALSE(a.client->Owner(chunks[0].entry).empty());  // neither is out
  Opened refused = Open("127.0.0.1:" + std::to_string(port));
  EXPECT_FALSE(refused.client->Fetch(chunks[0].entry).bytes);
  EXPECT_EQ(refused.client->counters().errors, 1u);
  EXPECT_EQ(refused.client->Owner(chunks[0].entry), "");  // down
}

TEST(PeerClient, AsksAtMostMaxAskedPerChunkInRendezvousOrder) {
  std::vector<Chunk> chunks = MakeChunks(1);
  std::vector<std::unique_ptr<HostilePeer>> peers;
  std::string spec;
  for (int i = 0; i < 6; ++i) {
    peers.push_back(std::make_unique<HostilePeer>(std::map<std::string, std::string>{}, Behaviour::kHonest));
    spec += (spec.empty() ? "" : ",") + peers.back()->name();
  }
  Opened o = Open(spec);
  EXPECT_FALSE(o.client->Fetch(chunks[0].entry).bytes);
  std::vector<std::pair<uint64_t, int>> ranked;
  for (int i = 0; i < 6; ++i) ranked.emplace_back(RendezvousWeight(peers[i]->name(), chunks[0].entry.sha256), i);
  std::sort(ranked.rbegin(), ranked.rend());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(peers[ranked[i].second]->requests(), i < 3 ? 1 : 0) << i;
  EXPECT_EQ(o.client->counters().asked, kMaxAskedPerChunk);
}

TEST(PeerClient, OwnershipIsStableEvenAndMovesOnlyTheLeaversShare) {
  std::string spec;
  for (int i = 1; i <= 8; ++i) spec += (spec.empty() ? "" : ",") + ("10.254.0." + std::to_string(10 + i) + ":7480");
  const std::string self = "10.254.0.11:7480";  // listed too: never asked, owns its share
  Opened a = Open(spec, kDefaultPeerTimeout, self);
  Opened b = Open(spec, kDefaultPeerTimeout, self);
  Opened without8 = Open(spec.substr(0, spec.rfind(',')), kDefaultPeerTimeout, self);
  std::mt19937_64 rng(15);
  std::map<std::string, int> owned;
  int moved = 0;
  for (int i = 0; i < 1024; ++i) {
    layer::IndexEntry e;
    e.length = e.blob_length = 1;
    for (uint8_t& byte : e.sha256) byte = static_cast<uint8_t>(rng());
    std::string owner = a.client->Owner(e);
    ++owned[owner];
    EXPECT_EQ(b.client->Owner(e), owner);
    EXPECT_EQ(a.client->OwnsChunk(e), owner == self);
    if (without8.client->Owner(e) != owner) {
      ++moved;
      EXPECT_EQ(owner, "10.254.0.18:7480");
    }
  }
  ASSERT_EQ(owned.size(), 8u);
  for (const auto& [name, n] : owned) {
    EXPECT_GE(n, 64) << name;
    EXPECT_LE(n, 192) << name;
  }
  EXPECT_EQ(moved, owned["10.254.0.18:7480"]);
}

TEST(PeerClient, ConcurrentFetchesAllVerify) {
  std::vector<Chunk> chunks = MakeChunks(32);
  HostilePeer one(Held(chunks), Behaviour::kHonest);
  HostilePeer two(Held(chunks), Behaviour::kHonest);
  Opened o = Open(one.name() + "," + two.name());
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (const Chunk& c : chunks) {
        lazy::PeerResult r = o.client->Fetch(c.entry);
        if (r.bytes && *r.bytes == c.bytes) ++good;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(good, 4 * 32);
  EXPECT_EQ(o.client->counters().hits, 4u * 32);
}

TEST(PeerClient, DnsNamesArePeers) {
  std::vector<Chunk> chunks = MakeChunks(1);
  HostilePeer peer(Held(chunks), Behaviour::kHonest);
  // localhost may also be ::1, where nothing listens: that one is down.
  Opened o = Open("dns:localhost:" + std::to_string(peer.port()));
  lazy::PeerResult r = o.client->Fetch(chunks[0].entry);
  ASSERT_TRUE(r.bytes);
  EXPECT_EQ(*r.bytes, chunks[0].bytes);
}

TEST(PeerClient, PeerFilesAreReadAtOpenThenAtMostEveryRefresh) {
  std::vector<Chunk> chunks = MakeChunks(1);
  HostilePeer peer(Held(chunks), Behaviour::kHonest);
  char tmpl[] = "/tmp/peer_client_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string file = std::string(tmpl) + "/peers";
  ASSERT_TRUE(WriteFileAtomic(file, "# one peer\n" + peer.name() + "\n").ok());
  Opened o = Open("@" + file);
  EXPECT_EQ(o.client->Owner(chunks[0].entry), peer.name());  // known before any Fetch
  ASSERT_TRUE(o.client->Fetch(chunks[0].entry).bytes);
  ASSERT_TRUE(WriteFileAtomic(file, "127.0.0.1:1\n").ok());
  ASSERT_TRUE(o.client->Fetch(chunks[0].entry).bytes);  // not read again within kPeerRefresh
  EXPECT_EQ(peer.requests(), 2);
  EXPECT_TRUE(o.logs->empty());
  (void)RemoveAll(tmpl);
}

}  // namespace
}  // namespace regdisk::peer
