// The chunk store and the fill with peers (lazy/chunk_store.h's policy):
// the peers are another node's entry, fully loaded, behind an in-process
// lazy::PeerChunks; the registry is a layout that counts its range reads.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "lazy/fill.h"
#include "lazy_store_fixture.h"
#include "util/sha256.h"

namespace regdisk::lazy {
namespace {

using std::chrono::milliseconds;

class PeerStoreTest : public LazyTest {
 protected:
  void SetUp() override {
    disk_ = MakeDisk("a.img", 'a');
    // The other node holds the whole disk, from its own copy of the image.
    const std::string other = dir_.path() + "/other";
    auto other_src = Entry(disk_, "peer", layer::Compression::kGzip, other);
    ASSERT_TRUE(FillEntry(other, "peer", *other_src).ok());
    auto node = ChunkStore::Open(other, "peer", nullptr);
    ASSERT_TRUE(node.ok()) << node.status().message();
    ASSERT_TRUE((*node)->promoted());
    peers_ = std::make_shared<StorePeers>(std::move(*node));
    src_ = Entry(disk_, "ka", layer::Compression::kZstd);
  }

  // The store of "ka" asking peers_; its pauses (the spread) are recorded
  // and not slept.
  std::unique_ptr<ChunkStore> Store(StoreOptions options = {}) {
    options.peers = peers_;
    options.pause = [this](milliseconds d) {
      std::lock_guard<std::mutex> lock(mu_);
      pauses_.push_back(d);
      return true;
    };
    return OpenStore("ka", *src_, /*donors=*/false, std::move(options));
  }

  const layer::IndexEntry& Chunk(ChunkStore& s, size_t i) { return s.index().entries[i]; }

  void ExpectReadsTheDisk(ChunkStore& store) {
    Status s;
    EXPECT_EQ(Sha256::HexOf(ReadAll(store, &s)), Sha256::HexOf(*ReadFile(disk_)));
    EXPECT_TRUE(s.ok()) << s.message();
  }

  // FillMissing, stopped after 30 s: a fill that does not end fails the
  // test instead of hanging it.
  Status FillWithin30s(ChunkStore& store, int threads, uint64_t rate) {
    std::atomic<bool> stop{false};
    std::thread watchdog([&] {
      for (int i = 0; i < 300 && !stop; ++i) std::this_thread::sleep_for(milliseconds(100));
      stop = true;
    });
    Status s = store.FillMissing(threads, rate, &stop);
    stop = true;
    watchdog.join();
    return s;
  }

  std::string disk_;
  std::shared_ptr<StorePeers> peers_;
  std::unique_ptr<CountingStore> src_;
  std::mutex mu_;
  std::vector<milliseconds> pauses_;
};

TEST_F(PeerStoreTest, ReadsTakeChunksFromPeersBeforeTheRegistry) {
  auto store = Store();
  ExpectReadsTheDisk(*store);
  EXPECT_EQ(src_->ranges, 0);
  EXPECT_EQ(store->stats().peer_chunks, 12u);
  EXPECT_EQ(store->stats().peer_bytes, 12u * kChunk);
  EXPECT_EQ(store->stats().source_chunks, 0u);
  EXPECT_TRUE(pauses_.empty());  // each peer answered at the first ask
  // Stored: a new store re-verifies them in place and asks nobody.
  store.reset();
  peers_->answer = StorePeers::Answer::kNothing;
  store = Store();
  ExpectReadsTheDisk(*store);
  EXPECT_EQ(store->stats().local_chunks, 12u);
  EXPECT_EQ(src_->ranges, 0);
}

TEST_F(PeerStoreTest, TheOwnerGoesToTheRegistryAtOnce) {
  peers_->answer = StorePeers::Answer::kNothing;
  peers_->owns = [](const layer::IndexEntry&) { return true; };
  auto store = Store();
  std::string buf(100, '\0');
  ASSERT_TRUE(store->Read(2 * kChunk, buf.size(), buf.data()).ok());
  EXPECT_EQ(buf, ReadFile(disk_)->substr(2 * kChunk, buf.size()));
  EXPECT_EQ(peers_->Asks(2 * kChunk), 1);
  EXPECT_TRUE(pauses_.empty());
  EXPECT_EQ(src_->ranges, 1);
  EXPECT_EQ(store->stats().source_chunks, 1u);
  EXPECT_EQ(store->stats().peer_chunks, 0u);
}

TEST_F(PeerStoreTest, OthersWaitTheSpreadAndAskOnceMoreBeforeTheRegistry) {
  peers_->answer = StorePeers::Answer::kNothing;
  auto store = Store();
  std::string buf(100, '\0');
  ASSERT_TRUE(store->Read(2 * kChunk, buf.size(), buf.data()).ok());
  EXPECT_EQ(buf, ReadFile(disk_)->substr(2 * kChunk, buf.size()));
  EXPECT_EQ(peers_->Asks(2 * kChunk), 2);
  ASSERT_EQ(pauses_.size(), 1u);
  EXPECT_GE(pauses_[0], kPeerSpreadMin);
  EXPECT_LE(pauses_[0], kPeerSpreadMax);
  EXPECT_EQ(src_->ranges, 1);
  // The owner had it by the second ask: nothing from the registry.
  peers_->answer = StorePeers::Answer::kBytes;
  peers_->pending_asks = 1;
  ASSERT_TRUE(store->Read(5 * kChunk, buf.size(), buf.data()).ok());
  EXPECT_EQ(buf, ReadFile(disk_)->substr(5 * kChunk, buf.size()));
  EXPECT_EQ(peers_->Asks(5 * kChunk), 2);
  EXPECT_EQ(src_->ranges, 1);
  EXPECT_EQ(store->stats().peer_chunks, 1u);
}

TEST_F(PeerStoreTest, BytesThatDoNotVerifyAreAMiss) {
  peers_->answer = StorePeers::Answer::kCorrupt;
  auto store = Store();
  ExpectReadsTheDisk(*store);
  EXPECT_EQ(src_->ranges, 12);
  EXPECT_EQ(store->stats().peer_chunks, 0u);
}

// Owned chunks first, from the registry; the others wait for the peer
// loading them, and come from it.
TEST_F(PeerStoreTest, FillTakesOwnedChunksFirstAndDefersPendingOnes) {
  auto store = Store();
  const uint64_t owned = Chunk(*store, 9).disk_offset;
  peers_->owns = [owned](const layer::IndexEntry& e) { return e.disk_offset == owned; };
  peers_->pending_asks = 2;
  ASSERT_TRUE(store->FillMissing(1, 0, nullptr).ok());
  EXPECT_EQ(store->Missing(), 0u);
  EXPECT_EQ(peers_->Order().front(), owned);
  EXPECT_EQ(peers_->Asks(owned), 1);  // pending, but its own: the registry at once
  EXPECT_EQ(src_->ranges, 1);
  EXPECT_EQ(store->stats().peer_chunks, 11u);
  EXPECT_EQ(peers_->Asks(0), 3);  // two passes deferred it
  ASSERT_TRUE(store->Promote(false).ok());
  EXPECT_EQ(Sha256::HexOf(*ReadFile(EntryDir(root(), "ka") + "/disk")), Sha256::HexOf(*ReadFile(disk_)));
}

// A peer that says pending for ever delays the fill by fill_peer_wait,
// then the registry gives the chunks.
TEST_F(PeerStoreTest, FillStopsWaitingForAPeerThatNeverLoads) {
  peers_->answer = StorePeers::Answer::kPending;
  auto store = Store({.fill_peer_wait = milliseconds(500)});
  const auto start = std::chrono::steady_clock::now();
  Status s = FillWithin30s(*store, 2, 0);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_GE(took, milliseconds(500));
  EXPECT_EQ(store->Missing(), 0u);
  EXPECT_EQ(src_->ranges, 12);
  EXPECT_GE(peers_->Asks(0), 2);
  // Nobody pending: no deferring, the registry at once.
  peers_->answer = StorePeers::Answer::kNothing;
  auto other = Entry(MakeDisk("b.img", 'b'), "kb");
  auto fresh = OpenStore("kb", *other, false, {.peers = peers_, .fill_peer_wait = std::chrono::hours(1)});
  ASSERT_TRUE(fresh->FillMissing(2, 0, nullptr).ok());
  EXPECT_EQ(other->ranges, 12);
}

// The rate is the registry's: at one byte per second, a fill the peers
// serve whole still ends at once.
TEST_F(PeerStoreTest, FillRateCountsOnlyRegistryBytes) {
  auto store = Store();
  Status s = FillWithin30s(*store, 2, 1);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(store->stats().peer_chunks, 12u);
  EXPECT_EQ(src_->ranges, 0);
}

// Without peers the fill reads what it always did: each data chunk once.
TEST_F(PeerStoreTest, WithoutPeersTheRegistryReadsAreUnchanged) {
  auto store = OpenStore("ka", *src_, false);
  ASSERT_TRUE(store->FillMissing(2, 0, nullptr).ok());
  EXPECT_EQ(src_->ranges, 12);
  EXPECT_EQ(store->stats().source_chunks, 12u);
  EXPECT_EQ(store->stats().peer_chunks, 0u);
}

TEST_F(PeerStoreTest, FullFillUsesPeersWhenSomePeerMayHoldChunks) {
  // Every chunk at a peer: nothing from the registry, not even a stream.
  Status s = FillEntry(root(), "ka", *src_, {.peers = peers_});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(src_->opened, 0);
  EXPECT_EQ(src_->ranges, 0);
  EXPECT_EQ(Sha256::HexOf(*ReadFile(EntryDir(root(), "ka") + "/disk")), Sha256::HexOf(*ReadFile(disk_)));
  // This node owns every chunk (no other peer is up): the one stream, as
  // without peers (on a node of its own: "ka" would be a donor here).
  const std::string third = dir_.path() + "/third";
  auto other = Entry(disk_, "kb", layer::Compression::kGzip, third);
  peers_->owns = [](const layer::IndexEntry&) { return true; };
  s = FillEntry(third, "kb", *other, {.peers = peers_});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(other->opened, 1);
  EXPECT_EQ(other->ranges, 0);
}

}  // namespace
}  // namespace regdisk::lazy
