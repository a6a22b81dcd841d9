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
#include "lazy_entry.h"
#include "layout/layout.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::lazy {
namespace {

constexpr uint32_t kChunk = 64 << 10;

// A layout that counts what is read from it.
class CountingStore : public oci::Store {
 public:
  static std::unique_ptr<CountingStore> Open(const std::string& root) {
    auto l = layout::Layout::Open(root, false);
    EXPECT_TRUE(l.ok());
    auto s = std::make_unique<CountingStore>();
    s->inner = std::move(*l);
    return s;
  }
  oci::StoreId id() const override { return inner->id(); }
  StatusOr<bool> HasBlob(const oci::Digest& d) override { return inner->HasBlob(d); }
  StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest& d) override {
    ++opened;
    return inner->OpenBlob(d);
  }
  Status ReadAt(const oci::Digest& d, uint64_t offset, char* buf, size_t len) override {
    ++ranges;
    return inner->ReadAt(d, offset, buf, len);
  }
  StatusOr<std::unique_ptr<oci::BlobWriter>> CreateBlob() override { return inner->CreateBlob(); }
  Status DeleteBlob(const oci::Digest& d) override { return inner->DeleteBlob(d); }
  StatusOr<oci::RawManifest> GetManifest(const std::string& r) override { return inner->GetManifest(r); }
  Status PutManifest(const oci::RawManifest& m, const std::string& t) override { return inner->PutManifest(m, t); }
  StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> ListTags() override { return inner->ListTags(); }
  std::string BlobPath(const oci::Digest& d) const { return inner->BlobPath(d); }

  std::unique_ptr<layout::Layout> inner;
  std::atomic<int> opened{0}, ranges{0};
};

class LazyTest : public ::testing::Test {
 protected:
  // A sparse raw disk of 32 chunks: data in chunks 0-9 and 20-21, holes
  // elsewhere; `variant` changes the bytes of chunk 3 only.
  std::string MakeDisk(const std::string& name, char variant) {
    const std::string path = dir_.path() + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, 32 * kChunk), 0);
    for (int c : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21}) {
      std::string data(kChunk, '\0');
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 31 + c * 7) % 251);
      if (c == 3) data[100] = variant;
      EXPECT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(c) * kChunk), kChunk);
    }
    ::close(fd);
    return path;
  }

  // A lazy entry KEY for `disk` built into its own layout.
  std::unique_ptr<CountingStore> Entry(const std::string& disk, const std::string& key,
                                       layer::Compression compression = layer::Compression::kGzip) {
    const std::string layout = dir_.path() + "/layout-" + key;
    auto m = testing::BuildV2Image(**layout::Layout::Open(layout, true), disk, kChunk, compression);
    EXPECT_TRUE(m.ok()) << m.status().message();
    auto store = CountingStore::Open(layout);
    Status s = testing::WriteLazyEntry(*store, *m, "oci:" + layout + "@" + m->str(), root(), key);
    EXPECT_TRUE(s.ok()) << s.message();
    store->opened = 0;  // the index's range read and the config are the node cache's
    store->ranges = 0;
    return store;
  }

  // `fault`, when given, runs before each read of the blob; a failure it
  // returns is the read's.
  std::unique_ptr<ChunkStore> OpenStore(const std::string& key, CountingStore& src, bool donors = true,
                                        StoreOptions options = {}, std::function<Status()> fault = nullptr) {
    auto config = ReadServeConfig(EntryDir(root(), key));
    EXPECT_TRUE(config.ok());
    oci::Digest blob = config->layer.digest;
    options.use_donors = donors;
    auto store = ChunkStore::Open(
        root(), key,
        [&src, blob, fault](uint64_t off, char* buf, size_t len) {
          if (fault) RETURN_IF_ERROR(fault());
          return src.ReadAt(blob, off, buf, len);
        },
        std::move(options));
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string ReadAll(ChunkStore& s, Status* status) {
    std::string out(s.size(), '\x55');
    // Odd pieces, crossing chunk and hole boundaries.
    for (uint64_t at = 0; at < s.size();) {
      size_t n = std::min<uint64_t>(100000, s.size() - at);
      *status = s.Read(at, n, out.data() + at);
      if (!status->ok()) return "";
      at += n;
    }
    return out;
  }

  std::string root() const { return dir_.path() + "/root"; }
  TempDir dir_{"regdisk-lazy"};
};

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
