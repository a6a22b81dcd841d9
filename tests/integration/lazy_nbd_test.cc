// Lazy serving for real: a v2 image pushed to the real registry, a lazy
// entry written as the node cache writes one, served by nbdkit with
// regdisk-nbd.so, read by qemu-img and qemu-io over the unix socket.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "harness.h"
#include "lazy/chunk_map.h"
#include "lazy/chunk_store.h"
#include "lazy/entry.h"
#include "lazy/fill.h"
#include "lazy_entry.h"
#include "lazy_store_fixture.h"
#include "layout/layout.h"
#include "oci/copy.h"
#include "registry/repository.h"
#include "registry_server.h"
#include "util/base64.h"
#include "util/sha256.h"

namespace regdisk::testing {
namespace {

constexpr uint32_t kChunk = 64 << 10;
constexpr int kChunks = 100;  // all data: 1% of the disk is one chunk

// A disk of kChunks chunks of data, chunk `changed` made different.
void MakeDisk(const std::string& path, int changed) {
  std::string data(kChunks * kChunk, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131 + i / 4096) % 253 + 1);
  if (changed >= 0) data[static_cast<size_t>(changed) * kChunk + 77] ^= 0x5a;
  ASSERT_TRUE(WriteFileAtomic(path, data).ok());
}

class LazyNbdTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef REGDISK_PLUGIN_SANITIZED
    GTEST_SKIP() << "nbdkit cannot load a plugin built with the sanitizers";
#endif
    ASSERT_TRUE(server_.error().empty()) << server_.error();
    for (const char* tool : {"nbdkit", "qemu-img", "qemu-io"}) {
      if (!HaveProgram(tool)) GTEST_SKIP() << tool << " is not installed";
    }
    root_ = dir_.path() + "/root";
  }
  void TearDown() override { StopNbd(); }

  // Builds `disk` as v2 (64 KiB chunks), pushes it as REPO:v2 and
  // writes the lazy entry `key` for it. Returns the layer's blob digest.
  oci::Digest PushAndMakeEntry(const std::string& disk, const std::string& repo, const std::string& key,
                               layer::Compression compression = layer::Compression::kGzip) {
    return PushAndMakeEntryOn(server_, {}, disk, repo, key, compression);
  }
  // The same on `server`, pushing with `options`.
  oci::Digest PushAndMakeEntryOn(RegistryServer& server, const registry::Options& options, const std::string& disk,
                                 const std::string& repo, const std::string& key,
                                 layer::Compression compression = layer::Compression::kGzip) {
    const std::string layout = dir_.path() + "/layout-" + key;
    auto store = layout::Layout::Open(layout, true);
    auto built = BuildV2Image(**store, disk, kChunk, compression);
    EXPECT_TRUE(built.ok()) << built.status().message();
    auto ref = oci::Reference::Parse(server.host() + "/" + repo + ":v2");
    auto r = registry::Repository::Open(*ref, options);
    EXPECT_TRUE(r.ok()) << r.status().message();
    repo_ = std::move(*r);
    auto copied = oci::CopyImage(**store, "v2", *repo_, "v2");
    EXPECT_TRUE(copied.ok()) << copied.status().message();
    const oci::Digest m = *built;
    Status s = WriteLazyEntry(*repo_, m, "docker://" + server.host() + "/" + repo + "@" + m.str(), root_, key,
                              R"({"retryTimes": 1, "parallel": 2})");
    EXPECT_TRUE(s.ok()) << s.message();
    return lazy::ReadServeConfig(lazy::EntryDir(root_, key))->layer.digest;
  }

  // The background fill's rate in the entry's serve.json: 1 byte/s keeps
  // it from fetching anything while a test counts requests. `outage_wait`
  // (seconds; 0: the server's own limit) is serve.json's test-only
  // outageWait.
  void SetFillRate(const std::string& key, uint64_t rate, uint64_t outage_wait = 0) {
    const std::string dir = lazy::EntryDir(root_, key);
    auto config = lazy::ReadServeConfig(dir);
    ASSERT_TRUE(config.ok());
    config->fill_rate = rate;
    config->outage_wait = outage_wait;
    ASSERT_TRUE(lazy::WriteServeConfig(dir, *config).ok());
  }

  // Starts nbdkit on the entry; false (with the log) when it does not
  // listen within 10 s.
  bool StartNbd(const std::string& key) {
    sock_ = dir_.path() + "/" + key + ".sock";
    log_ = dir_.path() + "/" + key + ".log";
    nbd_ = SpawnLogged({"/usr/bin/nbdkit", "-f", "--log=stderr", "--unix", sock_, REGDISK_NBD_PLUGIN,
                        "root=" + root_, "key=" + key},
                       log_);
    for (int i = 0; i < 1000 && nbd_ > 0; ++i) {
      if (PathExists(sock_)) return true;
      if (::waitpid(nbd_, nullptr, WNOHANG) == nbd_) nbd_ = -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void StopNbd() {
    if (nbd_ <= 0) return;
    ::kill(nbd_, SIGTERM);
    ::waitpid(nbd_, nullptr, 0);
    nbd_ = -1;
  }
  std::string Url() const { return "nbd+unix:///?socket=" + sock_; }
  std::string NbdLog() const {
    auto log = ReadFile(log_);
    return log.ok() ? *log : "";
  }

  // qemu-io reads [offset, offset+len) of the export.
  ProcessResult ReadRange(uint64_t offset, uint64_t len) {
    return RunCmd({"qemu-io", "-r", "-f", "raw", "-c",
                   "read " + std::to_string(offset) + " " + std::to_string(len), Url()});
  }
  bool ReadOk(const ProcessResult& r) {
    return r.exit_code == 0 && r.out.find("read ") != std::string::npos && r.out.find("failed") == std::string::npos;
  }

  // Every chunk the entry's map marks holds the disk's own bytes in
  // disk.partial (with no server running); returns how many are marked.
  int MarkedChunksAreTheDisks(const std::string& key, const std::string& disk) {
    const std::string dir = lazy::EntryDir(root_, key);
    auto config = lazy::ReadServeConfig(dir);
    auto index = lazy::ReadEntryIndex(dir, *config);
    auto map = lazy::ChunkMap::Open(dir + "/chunks", (*layer::ParseAnchor(config->layer))->digest,
                                    index->entries.size());
    const std::string partial = *ReadFile(dir + "/disk.partial", 1 << 30), want = *ReadFile(disk, 1 << 30);
    int marked = 0;
    for (size_t i = 0; i < index->entries.size(); ++i) {
      const layer::IndexEntry& e = index->entries[i];
      if (!(*map)->Has(i)) continue;
      ++marked;
      EXPECT_EQ(partial.substr(e.disk_offset, e.length), want.substr(e.disk_offset, e.length)) << "chunk " << i;
    }
    return marked;
  }

  int RangeGets(const oci::Digest& blob) { return server_.CountRequests("GET", "/blobs/" + blob.str(), 206); }

  RegistryServer server_{RegistryServer::Flavour::kOpen};
  TempDir dir_{"regdisk-lazy-nbd"};
  std::string root_, sock_, log_;
  pid_t nbd_ = -1;
  std::unique_ptr<registry::Repository> repo_;
};

TEST_F(LazyNbdTest, ServesTheDiskByteIdenticalFromRangeReads) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  const oci::Digest blob = PushAndMakeEntry(disk, "lazy/a", "ka");
  SetFillRate("ka", 1);
  const int before = RangeGets(blob);  // the index's range read
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  auto info = RunCmd({"qemu-img", "info", "-f", "raw", Url()});
  ASSERT_EQ(info.exit_code, 0) << Describe(info);
  std::cout << "range GETs for qemu-img info: " << RangeGets(blob) - before << "\n";
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", disk, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
  // Every chunk once (single flight, read-ahead included), nothing else.
  EXPECT_EQ(RangeGets(blob) - before, kChunks) << NbdLog();
}

TEST_F(LazyNbdTest, QemuImgInfoOfAQcow2FetchesOnlyItsMetadataChunks) {
  const std::string raw = dir_.path() + "/a.img", qcow2 = dir_.path() + "/a.qcow2";
  MakeDisk(raw, -1);
  auto conv = RunCmd({"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2});
  ASSERT_EQ(conv.exit_code, 0) << Describe(conv);
  const oci::Digest blob = PushAndMakeEntry(qcow2, "lazy/q", "kq");
  SetFillRate("kq", 1);
  const int before = RangeGets(blob);
  ASSERT_TRUE(StartNbd("kq")) << NbdLog();
  auto info = RunCmd({"qemu-img", "info", "-f", "qcow2", Url()});
  ASSERT_EQ(info.exit_code, 0) << Describe(info) << NbdLog();
  EXPECT_NE(info.out.find("virtual size: 6.25 MiB"), std::string::npos) << info.out;
  const int gets = RangeGets(blob) - before;
  std::cout << "qcow2 qemu-img info over NBD: " << gets << " range GETs of " << kChunk << "-byte chunks\n";
  // The header and tables are in the first two clusters (chunks); reading
  // the second after the first looks sequential, so read-ahead adds its own.
  EXPECT_LE(gets, 2 + static_cast<int>(lazy::kReadAhead)) << NbdLog();
  // The guest's view through the qcow2 is the raw disk.
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"nbd\",\"path\":\"" + sock_ + "\"}}"});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
}

TEST_F(LazyNbdTest, ServesFromATokenAuthRegistryWithThePullSecretsAuthFile) {
  RegistryServer token(RegistryServer::Flavour::kToken);
  ASSERT_TRUE(token.error().empty()) << token.error();
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  registry::Options push;
  push.credentials = std::string(RegistryServer::kUser) + ":" + RegistryServer::kPassword;
  PushAndMakeEntryOn(token, push, disk, "lazy/t", "kt");
  const std::string auth = dir_.path() + "/auth.json";
  ASSERT_TRUE(WriteFileAtomic(auth, "{\"auths\": {\"" + token.host() + "\": {\"auth\": \"" +
                                        Base64Encode(push.credentials) + "\"}}}").ok());
  const std::string dir = lazy::EntryDir(root_, "kt");
  auto config = lazy::ReadServeConfig(dir);
  config->auth_file = auth;
  ASSERT_TRUE(lazy::WriteServeConfig(dir, *config).ok());
  ASSERT_TRUE(StartNbd("kt")) << NbdLog();
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", disk, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog() << token.Log();
}

TEST_F(LazyNbdTest, FlippedByteInTheRegistrysBlobFailsThatChunkOnly) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  // Uncompressed, so that the flipped byte decodes and only its digest differs.
  const oci::Digest blob = PushAndMakeEntry(disk, "lazy/a", "ka", layer::Compression::kNone);
  auto config = lazy::ReadServeConfig(lazy::EntryDir(root_, "ka"));
  auto index = lazy::ReadEntryIndex(lazy::EntryDir(root_, "ka"), *config);
  ASSERT_TRUE(index.ok());
  const layer::IndexEntry& e = index->entries[40];
  const std::string want = *ReadFile(disk, 1 << 30);
  const std::string stored = server_.BlobDataPath(blob.hex());
  std::string bytes = *ReadFile(stored, 1 << 30);
  bytes[e.blob_offset + e.blob_length / 2] ^= 0x01;
  ASSERT_TRUE(WriteFileAtomic(stored, bytes).ok());

  SetFillRate("ka", 1);
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  auto bad = ReadRange(e.disk_offset + 4096, 4096);
  EXPECT_FALSE(ReadOk(bad)) << Describe(bad);
  EXPECT_NE(NbdLog().find("chunk 40 of 100 (disk offset " + std::to_string(e.disk_offset) + ")"), std::string::npos)
      << NbdLog();
  EXPECT_NE(NbdLog().find("expected sha256 " + layer::ShaHex(e.sha256)), std::string::npos);
  std::string flipped = want.substr(e.disk_offset, e.length);
  flipped[e.length / 2] ^= 0x01;
  EXPECT_NE(NbdLog().find("sha256 " + Sha256::HexOf(flipped) + " does not match"), std::string::npos) << NbdLog();
  auto good = ReadRange(0, 3 * kChunk);
  EXPECT_TRUE(ReadOk(good)) << Describe(good);
  auto also = ReadRange(e.disk_offset + e.length, kChunk);
  EXPECT_TRUE(ReadOk(also)) << Describe(also);
  StopNbd();
  // The bad chunk never reached disk.partial.
  const std::string partial = *ReadFile(lazy::EntryDir(root_, "ka") + "/disk.partial", 1 << 30);
  EXPECT_EQ(partial.substr(e.disk_offset, e.length), std::string(e.length, '\0'));
}

TEST_F(LazyNbdTest, IndexNotMatchingItsAnchorIsRefusedBeforeServing) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  PushAndMakeEntry(disk, "lazy/a", "ka");
  const std::string index = lazy::EntryDir(root_, "ka") + "/index";
  std::string bytes = *ReadFile(index);
  bytes[32 + 64 * 3 + 40] ^= 0x01;  // a chunk digest
  ASSERT_TRUE(WriteFileAtomic(index, bytes).ok());
  EXPECT_FALSE(StartNbd("ka"));
  EXPECT_FALSE(PathExists(sock_));
  EXPECT_NE(NbdLog().find("refusing to serve"), std::string::npos) << NbdLog();
  EXPECT_NE(NbdLog().find("digest mismatch"), std::string::npos) << NbdLog();
}

// Chunk `chunk` of the export on `sock` copied into the file `out` by
// qemu-img, started in the background: a client whose read may wait.
std::future<ProcessResult> ReadChunkAsync(const std::string& sock, int chunk, const std::string& out) {
  const std::string window = "json:{\"driver\":\"raw\",\"offset\":" + std::to_string(uint64_t{kChunk} * chunk) +
                             ",\"size\":" + std::to_string(kChunk) + ",\"file\":{\"driver\":\"nbd\",\"path\":\"" +
                             sock + "\"}}";
  return std::async(std::launch::async,
                    [=] { return RunCmd({"qemu-img", "convert", "-f", "raw", "-O", "raw", window, out}); });
}

TEST_F(LazyNbdTest, RegistryOutageMidReadIsWaitedOutAndTheReadCompletesWhenItIsBack) {
  const std::string disk = dir_.path() + "/a.img", out = dir_.path() + "/chunk50";
  MakeDisk(disk, -1);
  PushAndMakeEntry(disk, "lazy/a", "ka");
  SetFillRate("ka", 1, /*outage_wait=*/120);  // far past this outage; bounds a failing test
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  ASSERT_TRUE(ReadOk(ReadRange(0, kChunk)));
  server_.Kill();
  const auto start = std::chrono::steady_clock::now();
  auto read = ReadChunkAsync(sock_, 50, out);
  // The registry client's own retries (retryTimes 1) are long over: the
  // read waits for the registry rather than failing.
  ASSERT_EQ(read.wait_for(std::chrono::seconds(3)), std::future_status::timeout) << Describe(read.get()) << NbdLog();
  ASSERT_TRUE(server_.Restart()) << server_.Log();
  const ProcessResult r = read.get();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << Describe(r) << NbdLog();
  EXPECT_EQ(*ReadFile(out, 1 << 30), ReadFile(disk, 1 << 30)->substr(50 * kChunk, kChunk));
  std::cout << "read during a 3 s registry outage completed after " << waited << " s\n";
  EXPECT_NE(NbdLog().find("the registry is unavailable (loading chunk 50 of 100 (disk offset " +
                          std::to_string(50 * kChunk) + ")"), std::string::npos) << NbdLog();
  EXPECT_NE(NbdLog().find("the registry is back after"), std::string::npos) << NbdLog();
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", disk, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
  StopNbd();
  MarkedChunksAreTheDisks("ka", disk);
}

TEST_F(LazyNbdTest, OutageLongerThanTheLimitFailsTheReadCleanlyAndReadsWorkWhenItIsBack) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  PushAndMakeEntry(disk, "lazy/a", "ka");
  SetFillRate("ka", 1, /*outage_wait=*/2);
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  ASSERT_TRUE(ReadOk(ReadRange(0, kChunk)));
  server_.Kill();
  auto down = ReadRange(50 * kChunk, kChunk);
  EXPECT_FALSE(ReadOk(down)) << Describe(down);
  // The wait counts from the first failure; a try in flight at the limit ends first.
  EXPECT_NE(NbdLog().find("chunk 50 of 100 (disk offset " + std::to_string(50 * kChunk) +
                          "), the registry unavailable for "), std::string::npos) << NbdLog();
  EXPECT_NE(NbdLog().find(" s (reads wait 2.0 s at most)"), std::string::npos) << NbdLog();
  ASSERT_TRUE(server_.Restart()) << server_.Log();
  auto back = ReadRange(50 * kChunk, kChunk);
  EXPECT_TRUE(ReadOk(back)) << Describe(back) << NbdLog();
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", disk, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
  StopNbd();
  MarkedChunksAreTheDisks("ka", disk);
}

TEST_F(LazyNbdTest, StoppingTheServerEndsAnOutageWait) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  PushAndMakeEntry(disk, "lazy/a", "ka");
  SetFillRate("ka", 0);  // the fill waits too; the server's own limit (10 min)
  server_.Kill();
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  auto read = ReadChunkAsync(sock_, 50, dir_.path() + "/chunk50");
  ASSERT_EQ(read.wait_for(std::chrono::seconds(3)), std::future_status::timeout) << Describe(read.get()) << NbdLog();
  ::kill(nbd_, SIGTERM);
  const auto stop = std::chrono::steady_clock::now();
  // nbdkit waits for the plugin's reads and threads: each ends its wait.
  bool exited = false;
  for (int i = 0; i < 300 && !exited; ++i) {
    exited = ::waitpid(nbd_, nullptr, WNOHANG) == nbd_;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(exited) << "nbdkit still waiting for the registry 30 s after SIGTERM\n" << NbdLog();
  if (exited) nbd_ = -1;
  std::cout << "nbdkit exited " << std::chrono::duration<double>(std::chrono::steady_clock::now() - stop).count()
            << " s after SIGTERM, in an outage wait\n";
  EXPECT_NE(read.get().exit_code, 0);
  EXPECT_NE(NbdLog().find("read of 65536 bytes at " + std::to_string(50 * kChunk) + ": chunk 50 of 100 (disk offset " +
                          std::to_string(50 * kChunk) + "), the wait for the registry cut short (the server is stopping"),
            std::string::npos) << NbdLog();
}

TEST_F(LazyNbdTest, KilledServerLeavesOnlyVerifiedChunksAndResumes) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  const oci::Digest blob = PushAndMakeEntry(disk, "lazy/a", "ka");
  SetFillRate("ka", 2 << 20);  // ~3 s for the whole disk
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  ::kill(nbd_, SIGKILL);
  ::waitpid(nbd_, nullptr, 0);
  nbd_ = -1;
  EXPECT_FALSE(PathExists(lazy::EntryDir(root_, "ka") + "/disk")) << "the fill was not meant to finish yet";
  const int marked = MarkedChunksAreTheDisks("ka", disk);
  EXPECT_GT(marked, 0);
  EXPECT_LT(marked, kChunks);

  ::unlink(sock_.c_str());
  SetFillRate("ka", 0);
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", disk, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
  // What the first server had verified was not fetched again (a chunk or
  // two in flight at the kill may be).
  EXPECT_LE(RangeGets(blob), 1 + kChunks + 4);
}

TEST_F(LazyNbdTest, DeltaPullFetchesOnlyTheChangedChunk) {
  const std::string a = dir_.path() + "/a.img", b = dir_.path() + "/b.img";
  MakeDisk(a, -1);
  MakeDisk(b, 63);
  PushAndMakeEntry(a, "lazy/a", "ka");
  Status filled = lazy::FillEntry(root_, "ka", *repo_);
  ASSERT_TRUE(filled.ok()) << filled.message();
  EXPECT_EQ(Sha256File(lazy::EntryDir(root_, "ka") + "/disk"), Sha256File(a));

  const oci::Digest blob_b = PushAndMakeEntry(b, "lazy/b", "kb");
  const int before = RangeGets(blob_b);
  ASSERT_TRUE(StartNbd("kb")) << NbdLog();
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", b, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
  EXPECT_EQ(RangeGets(blob_b) - before, 1) << "only chunk 63 differs";
  std::cout << "delta pull over NBD: " << RangeGets(blob_b) - before << " range GET of " << kChunks << " chunks\n";
}

TEST_F(LazyNbdTest, FillEntryFromNothingThenPromoteGivesTheDisk) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  PushAndMakeEntry(disk, "lazy/a", "ka");
  Status s = lazy::FillEntry(root_, "ka", *repo_);
  ASSERT_TRUE(s.ok()) << s.message();
  const std::string dir = lazy::EntryDir(root_, "ka");
  EXPECT_EQ(Sha256File(dir + "/disk"), Sha256File(disk));
  EXPECT_FALSE(PathExists(dir + "/disk.partial"));
  EXPECT_EQ(ReadFile(dir + "/meta.json")->find("\"lazy\""), std::string::npos);
  // The server of a promoted entry serves the file, with no registry.
  server_.Kill();
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", disk, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
}

// Nodes sharing one registry: a fill asks it for nothing a peer holds
// (not even the chunks this node owns: the peers are asked first), and
// for each chunk once when no peer holds any.
TEST_F(LazyNbdTest, FillWithPeersTakesFromTheRegistryOnlyWhatNoPeerHolds) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  const oci::Digest blob = PushAndMakeEntry(disk, "lazy/a", "ka");
  ASSERT_TRUE(lazy::FillEntry(root_, "ka", *repo_).ok());
  auto node_a = lazy::ChunkStore::Open(root_, "ka", nullptr);
  ASSERT_TRUE(node_a.ok()) << node_a.status().message();
  auto peers = std::make_shared<lazy::StorePeers>(std::move(*node_a));
  // Node b owns every fourth chunk.
  peers->owns = [](const layer::IndexEntry& e) { return e.disk_offset / kChunk % 4 == 0; };
  root_ = dir_.path() + "/node-b";
  PushAndMakeEntry(disk, "lazy/a", "kb");
  const int ranges = RangeGets(blob), streams = server_.CountRequests("GET", "/blobs/" + blob.str(), 200);
  Status s = lazy::FillEntry(root_, "kb", *repo_, {.peers = peers});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Sha256File(lazy::EntryDir(root_, "kb") + "/disk"), Sha256File(disk));
  EXPECT_EQ(RangeGets(blob) - ranges, 0) << "a peer held every chunk";
  EXPECT_EQ(server_.CountRequests("GET", "/blobs/" + blob.str(), 200) - streams, 0);
  EXPECT_EQ(peers->Asks(0), 1);
  // Peers that hold nothing: node c's own share and the rest, from the registry once each.
  peers->answer = lazy::StorePeers::Answer::kNothing;
  root_ = dir_.path() + "/node-c";
  PushAndMakeEntry(disk, "lazy/a", "kc");
  const int before = RangeGets(blob);
  s = lazy::FillEntry(root_, "kc", *repo_, {.peers = peers});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(RangeGets(blob) - before, kChunks);
  EXPECT_EQ(Sha256File(lazy::EntryDir(root_, "kc") + "/disk"), Sha256File(disk));
}

TEST_F(LazyNbdTest, BackgroundFillCompletesAndPromotesWhileServing) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  PushAndMakeEntry(disk, "lazy/a", "ka");
  const std::string dir = lazy::EntryDir(root_, "ka");
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  for (int i = 0; i < 3000 && !PathExists(dir + "/disk"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(PathExists(dir + "/disk")) << NbdLog();
  EXPECT_EQ(Sha256File(dir + "/disk"), Sha256File(disk));
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", disk, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
}

}  // namespace
}  // namespace regdisk::testing
