// The chunk store, the fill and Promote against v2 images in OCI layouts
// (the registry and nbdkit are in tests/integration/lazy_nbd_test.cc).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>

#include "lazy/chunk_map.h"
#include "lazy/chunk_store.h"
#include "lazy/fill.h"
#include "lazy_store_fixture.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::lazy {
namespace {

TEST_F(LazyTest, ServesTheDiskFromVerifiedChunksAndZeroExtents) {
  const std::string disk = MakeDisk("a.img", 'a');
  for (auto c : {layer::Compression::kGzip, layer::Compression::kZstd, layer::Compression::kNone}) {
    SCOPED_TRACE(layer::CompressionName(c));
    const std::string key = std::string("k") + layer::CompressionName(c);
    auto src = Entry(disk, key, c);
    auto store = OpenStore(key, *src, /*donors=*/false);  // the other codecs' entries hold the same chunks
    ASSERT_TRUE(store);
    Status s;
    EXPECT_EQ(Sha256::HexOf(ReadAll(*store, &s)), Sha256::HexOf(*ReadFile(disk)));
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(store->stats().source_chunks, 12u);  // each data chunk once, holes never
    EXPECT_EQ(store->Missing(), 0u);
    // Read-ahead and single flight: no chunk was fetched twice.
    EXPECT_EQ(src->ranges, 12);
    // The zero extents stayed holes in disk.partial.
    struct stat st;
    ASSERT_EQ(::stat((EntryDir(root(), key) + "/disk.partial").c_str(), &st), 0);
    EXPECT_LE(static_cast<uint64_t>(st.st_blocks) * 512, 13u * kChunk);
  }
}

TEST_F(LazyTest, ReopenReverifiesMarkedChunksAndRefetchesBadOnes) {
  const std::string disk = MakeDisk("a.img", 'a');
  auto src = Entry(disk, "ka");
  {
    auto store = OpenStore("ka", *src);
    Status s;
    ReadAll(*store, &s);
    ASSERT_TRUE(s.ok());
  }
  // A crash that lost chunk 2's data but kept its bit.
  int fd = ::open((EntryDir(root(), "ka") + "/disk.partial").c_str(), O_WRONLY);
  ASSERT_EQ(::pwrite(fd, "XYZ", 3, 2 * kChunk + 5), 3);
  ::close(fd);
  auto store = OpenStore("ka", *src);
  Status s;
  EXPECT_EQ(Sha256::HexOf(ReadAll(*store, &s)), Sha256::HexOf(*ReadFile(disk)));
  EXPECT_EQ(store->stats().local_chunks, 11u);
  EXPECT_EQ(store->stats().source_chunks, 1u);
}

TEST_F(LazyTest, TamperedChunkIsNeverServedAndOthersAre) {
  const std::string disk = MakeDisk("a.img", 'a');
  auto src = Entry(disk, "ka");
  auto config = ReadServeConfig(EntryDir(root(), "ka"));
  auto index = ReadEntryIndex(EntryDir(root(), "ka"), *config);
  ASSERT_TRUE(index.ok());
  // Flip a byte inside chunk 5's member in the blob.
  const layer::IndexEntry& e = index->entries[5];
  ASSERT_FALSE(e.zero());
  const std::string blob = src->BlobPath(config->layer.digest);
  ::chmod(blob.c_str(), 0644);
  int fd = ::open(blob.c_str(), O_RDWR);
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, e.blob_offset + e.blob_length / 2), 1);
  c ^= 0x20;
  ASSERT_EQ(::pwrite(fd, &c, 1, e.blob_offset + e.blob_length / 2), 1);
  ::close(fd);

  auto store = OpenStore("ka", *src);
  std::string buf(kChunk, '\0');
  Status bad = store->Read(e.disk_offset + 10, 100, buf.data());
  EXPECT_EQ(bad.code(), Code::kCorrupt);
  EXPECT_NE(bad.message().find("chunk 5 of"), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("disk offset " + std::to_string(e.disk_offset)), std::string::npos);
  EXPECT_NE(bad.message().find(layer::ShaHex(e.sha256)), std::string::npos);
  EXPECT_TRUE(store->Read(0, kChunk, buf.data()).ok());
  EXPECT_EQ(buf, ReadFile(disk)->substr(0, kChunk));
  // Nothing of the bad chunk reached disk.partial or the map.
  std::string partial = *ReadFile(EntryDir(root(), "ka") + "/disk.partial");
  EXPECT_EQ(partial.substr(e.disk_offset, e.length), std::string(e.length, '\0'));
  auto map = ChunkMap::Open(EntryDir(root(), "ka") + "/chunks", (*layer::ParseAnchor(config->layer))->digest, index->entries.size());
  EXPECT_TRUE((*map)->Has(0));
  EXPECT_FALSE((*map)->Has(5));
}

TEST_F(LazyTest, RegistryOutageIsWaitedOutWithBackoffAndLoggedOnce) {
  const std::string disk = MakeDisk("a.img", 'a');
  auto src = Entry(disk, "ka");
  std::vector<std::chrono::milliseconds> pauses;
  std::vector<std::string> warnings;
  int down = 5;  // reads of the blob that fail before the registry is back
  StoreOptions options{.warn = [&](const std::string& l) { warnings.push_back(l); },
                       .outage_wait = std::chrono::minutes(10),
                       .pause = [&](std::chrono::milliseconds d) {
                         pauses.push_back(d);
                         return true;
                       }};
  auto store = OpenStore("ka", *src, false, options, [&]() -> Status {
    return down-- > 0 ? Unavailable("registry 127.0.0.1:1 is unreachable: Connection refused") : OkStatus();
  });
  std::string buf(100, '\0');
  Status s = store->Read(2 * kChunk + 10, buf.size(), buf.data());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(buf, ReadFile(disk)->substr(2 * kChunk + 10, buf.size()));
  using std::chrono::milliseconds;
  EXPECT_EQ(pauses, (std::vector<milliseconds>{milliseconds(500), milliseconds(1000), milliseconds(2000),
                                                milliseconds(4000), milliseconds(8000)}));
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("the registry is unavailable (loading chunk 2 of"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("Connection refused"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("the registry is back after"), std::string::npos) << warnings[1];
  // The interval stops doubling at kOutageMaxRetry.
  down = 8;
  pauses.clear();
  ASSERT_TRUE(store->Read(4 * kChunk, buf.size(), buf.data()).ok());
  EXPECT_EQ(pauses.back(), kOutageMaxRetry);
  EXPECT_EQ(pauses[pauses.size() - 2], kOutageMaxRetry);
}

TEST_F(LazyTest, RefusalsFailAtOnceAndAnOutageFailsAfterTheLimit) {
  auto src = Entry(MakeDisk("a.img", 'a'), "ka");
  int pauses = 0, reads = 0;
  Status answer;
  auto store = OpenStore("ka", *src, false,
                         {.outage_wait = std::chrono::minutes(10),
                          .pause = [&](std::chrono::milliseconds) { return ++pauses, true; }},
                         [&] { return ++reads, answer; });
  std::string buf(100, '\0');
  for (const Status& refusal : {NotFound("blob unknown"), Unauthorized("HTTP 403"), Corrupt("digest mismatch")}) {
    SCOPED_TRACE(refusal.message());
    reads = pauses = 0;
    answer = refusal;
    EXPECT_EQ(store->Read(0, buf.size(), buf.data()).code(), refusal.code());
    EXPECT_EQ(reads, 1);
    EXPECT_EQ(pauses, 0);
  }
  // The limit, with the store's own sleep: still down after it, the read fails.
  auto limited = OpenStore("ka", *src, false, {.outage_wait = std::chrono::milliseconds(300)},
                           [&] { return ++reads, Unavailable("registry down"); });
  reads = 0;
  Status down = limited->Read(0, buf.size(), buf.data());
  EXPECT_EQ(down.code(), Code::kUnavailable);
  EXPECT_NE(down.message().find("chunk 0 of 14 (disk offset 0), the registry unavailable for "), std::string::npos)
      << down.message();
  EXPECT_NE(down.message().find(" s (reads wait 0.3 s at most): "), std::string::npos) << down.message();
  EXPECT_EQ(reads, 2);  // at once, then at the limit (before kOutageFirstRetry)
  // A pause cut short (the server is stopping) ends the wait at once.
  auto stopping = OpenStore("ka", *src, false,
                            {.outage_wait = std::chrono::minutes(10),
                             .pause = [](std::chrono::milliseconds) { return false; }},
                            [&] { return ++reads, Unavailable("registry down"); });
  reads = 0;
  Status stopped = stopping->Read(0, buf.size(), buf.data());
  EXPECT_EQ(stopped.code(), Code::kUnavailable);
  EXPECT_NE(stopped.message().find("the wait for the registry cut short"), std::string::npos) << stopped.message();
  EXPECT_EQ(reads, 1);
}

TEST_F(LazyTest, IndexNotMatchingItsAnchorIsRefused) {
  auto src = Entry(MakeDisk("a.img", 'a'), "ka");
  const std::string index = EntryDir(root(), "ka") + "/index";
  std::string bytes = *ReadFile(index);
  bytes[40] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(index, bytes).ok());
  auto store = ChunkStore::Open(root(), "ka", nullptr);
  EXPECT_EQ(store.status().code(), Code::kCorrupt);
  EXPECT_NE(store.status().message().find("digest mismatch"), std::string::npos) << store.status().message();
}

TEST_F(LazyTest, ChunkMapRefusesAnythingButItsOwnFormat) {
  const oci::Digest d = oci::Digest::Of("index");
  std::vector<uint8_t> bits = {0x05, 0x80};
  const std::string good = EncodeChunkMap(bits, d, 16);
  EXPECT_EQ(*DecodeChunkMap(good, d, 16), bits);
  EXPECT_FALSE(DecodeChunkMap(good, d, 15).ok());                      // size
  EXPECT_FALSE(DecodeChunkMap(good, oci::Digest::Of("other"), 16).ok());  // another index
  EXPECT_FALSE(DecodeChunkMap(good + "x", d, 16).ok());
  EXPECT_FALSE(DecodeChunkMap(good.substr(0, 20), d, 16).ok());
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_FALSE(DecodeChunkMap(magic, d, 16).ok());
  std::string count = good;
  count[8] = 17;
  EXPECT_FALSE(DecodeChunkMap(count, d, 16).ok());
  EXPECT_FALSE(DecodeChunkMap(good, d, layer::kMaxIndexEntries + 1).ok());
  // A malformed file is replaced by an empty map.
  const std::string path = dir_.path() + "/chunks";
  ASSERT_TRUE(WriteFileAtomic(path, "garbage").ok());
  auto map = ChunkMap::Open(path, d, 16);
  ASSERT_TRUE(map.ok());
  EXPECT_FALSE((*map)->Has(0));
  ASSERT_TRUE((*map)->Set(9).ok());
  EXPECT_EQ((*DecodeChunkMap(*ReadFile(path), d, 16))[1], 0x02);
}

TEST(ServeConfig, RoundTripsAndRefusesMalformedFiles) {
  ServeConfig c;
  c.layer = {.media_type = "application/vnd.oci.image.layer.v1.tar+gzip", .digest = oci::Digest::Of("l"), .size = 9,
             .annotations = {{"io.regdisk.disk.chunk-size", "65536"}}};
  c.diff_id = oci::Digest::Of("d");
  c.image = "docker://127.0.0.1:5000/a@" + oci::Digest::Of("m").str();
  c.registry = R"({"parallel":2})";
  c.auth_file = "/root/secrets/x.json";
  c.fill_rate = 1000;
  c.fill_delay = 7;
  c.outage_wait = 3;
  auto back = ParseServeConfig(EncodeServeConfig(c));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(EncodeServeConfig(*back), EncodeServeConfig(c));
  EXPECT_EQ(back->layer.annotations.at("io.regdisk.disk.chunk-size"), "65536");
  EXPECT_EQ(back->fill_rate, 1000u);
  EXPECT_EQ(back->fill_delay, 7u);
  EXPECT_EQ(back->outage_wait, 3u);
  // The node does not write outageWait (tests do).
  EXPECT_EQ(EncodeServeConfig(ServeConfig{}).find("outageWait"), std::string::npos);
  std::string good = EncodeServeConfig(c);
  auto without = [&](const std::string& key) {
    auto j = good;
    j.replace(j.find("\"" + key + "\""), key.size() + 2, "\"x" + key + "\"");
    return j;
  };
  for (const std::string& bad :
       {std::string("[]"), std::string("{"), without("layer"), without("diffId"), without("image"),
        std::string(R"({"layer": {"mediaType": "x", "digest": "sha256:00", "size": 1}, "diffId": "x", "image": ""})"),
        good.substr(0, good.size() - 3), std::string(kMaxEntryJsonBytes + 1, ' '),
        std::string(200, '[') + std::string(200, ']')}) {
    EXPECT_FALSE(ParseServeConfig(bad).ok()) << bad.substr(0, 80);
  }
  std::string rate = good;
  rate.replace(rate.find("1000"), 4, "-1");
  EXPECT_FALSE(ParseServeConfig(rate).ok());
  std::string wait = good;
  wait.replace(wait.find("\"outageWait\": 3"), 16, "\"outageWait\": 1.5");
  EXPECT_FALSE(ParseServeConfig(wait).ok()) << wait;
}

// A node without peers writes the serve.json it always did; the peer
// fields are bounded like the others.
TEST(ServeConfig, PeersAreWrittenOnlyWhenSetAndChecked) {
  ServeConfig c;
  c.layer = {.media_type = "application/vnd.oci.image.layer.v1.tar+gzip", .digest = oci::Digest::Of("l"), .size = 9};
  c.diff_id = oci::Digest::Of("d");
  c.image = "oci:/l@" + oci::Digest::Of("m").str();
  const std::string plain = EncodeServeConfig(c);
  for (const char* key : {"peers", "peerSelf", "peerTimeoutMs"}) {
    EXPECT_EQ(plain.find(key), std::string::npos) << key;
  }
  c.peers = "10.254.0.11:7480,dns:regdisk-peers.kube-system.svc.cluster.local:7480";
  c.peer_self = "10.254.0.12:7480";
  c.peer_timeout_ms = 1500;
  auto back = ParseServeConfig(EncodeServeConfig(c));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->peers, c.peers);
  EXPECT_EQ(back->peer_self, c.peer_self);
  EXPECT_EQ(back->peer_timeout_ms, 1500u);
  EXPECT_EQ(EncodeServeConfig(*back), EncodeServeConfig(c));
  auto with = [&](const std::string& field) { return plain.substr(0, plain.rfind('}')) + "," + field + "}"; };
  ASSERT_TRUE(ParseServeConfig(with(R"("peerTimeoutMs": 60000)")).ok());
  for (const std::string& bad :
       {with(R"("peers": 5)"), with(R"("peerSelf": ["a"])"), with(R"("peerTimeoutMs": 0)"),
        with(R"("peerTimeoutMs": 60001)"), with(R"("peerTimeoutMs": -1)"), with(R"("peerTimeoutMs": "1")"),
        with("\"peers\": \"" + std::string(kMaxPeerSpecBytes + 1, 'a') + "\""),
        with("\"peerSelf\": \"" + std::string(kMaxPeerAddressBytes + 1, 'a') + "\"")}) {
    EXPECT_EQ(ParseServeConfig(bad).status().code(), Code::kCorrupt) << bad.substr(bad.size() - 60);
  }
}

TEST_F(LazyTest, FillFromNothingStreamsOnceThenPromotes) {
  const std::string disk = MakeDisk("a.img", 'a');
  auto src = Entry(disk, "ka");
  uint64_t fetched = 0;
  Status s = FillEntry(root(), "ka", *src, {.on_bytes = [&](uint64_t n) { fetched += n; }});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(fetched, ReadServeConfig(EntryDir(root(), "ka"))->layer.size);
  EXPECT_EQ(src->opened, 1);
  EXPECT_EQ(src->ranges, 0);
  const std::string dir = EntryDir(root(), "ka");
  EXPECT_EQ(Sha256::HexOf(*ReadFile(dir + "/disk")), Sha256::HexOf(*ReadFile(disk)));
  EXPECT_FALSE(PathExists(dir + "/disk.partial"));
  EXPECT_FALSE(PathExists(dir + "/chunks"));
  struct stat st;
  ASSERT_EQ(::stat((dir + "/disk").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(ReadFile(dir + "/meta.json")->find("\"lazy\""), std::string::npos);
  EXPECT_NE(ReadFile(dir + "/meta.json")->find("virtualSize"), std::string::npos);
  // Promoted: filled again, nothing happens; a store serves the file.
  EXPECT_TRUE(FillEntry(root(), "ka", *src).ok());
  auto store = OpenStore("ka", *src);
  EXPECT_TRUE(store->promoted());
  EXPECT_EQ(Sha256::HexOf(ReadAll(*store, &s)), Sha256::HexOf(*ReadFile(disk)));
}

TEST_F(LazyTest, DeltaFillFetchesOnlyTheChangedChunk) {
  auto a = Entry(MakeDisk("a.img", 'a'), "ka");
  ASSERT_TRUE(FillEntry(root(), "ka", *a).ok());
  const std::string disk_b = MakeDisk("b.img", 'b');
  auto b = Entry(disk_b, "kb");
  std::atomic<uint64_t> fetched{0};
  Status s = FillEntry(root(), "kb", *b, {.on_bytes = [&](uint64_t n) { fetched += n; }});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(b->opened, 0);  // no whole-blob stream
  EXPECT_EQ(b->ranges, 1);  // chunk 3 only
  auto config = ReadServeConfig(EntryDir(root(), "kb"));
  auto index = ReadEntryIndex(EntryDir(root(), "kb"), *config);
  EXPECT_EQ(fetched, index->entries[3].blob_length);
  EXPECT_EQ(Sha256::HexOf(*ReadFile(EntryDir(root(), "kb") + "/disk")), Sha256::HexOf(*ReadFile(disk_b)));
}

TEST_F(LazyTest, PromoteRefusesAnIncompleteEntry) {
  auto src = Entry(MakeDisk("a.img", 'a'), "ka");
  Status s = Promote(root(), "ka");
  EXPECT_EQ(s.code(), Code::kNotFound) << s.message();
  EXPECT_FALSE(PathExists(EntryDir(root(), "ka") + "/disk"));
}

}  // namespace
}  // namespace regdisk::lazy
