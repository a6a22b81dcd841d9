// Lazy serving for real: a v2 image pushed to the real registry, a lazy
// entry written as the node cache writes one, served by nbdkit with
// regdisk-nbd.so, read by qemu-img and qemu-io over the unix socket.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "build/builder.h"
#include "harness.h"
#include "lazy/chunk_map.h"
#include "lazy/entry.h"
#include "lazy/fill.h"
#include "lazy_entry.h"
#include "layout/layout.h"
#include "oci/copy.h"
#include "registry/repository.h"
#include "registry_server.h"

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

  // Builds `disk` as v2 (gzip, 64 KiB chunks), pushes it as REPO:v2 and
  // writes the lazy entry `key` for it. Returns the layer's blob digest.
  oci::Digest PushAndMakeEntry(const std::string& disk, const std::string& repo, const std::string& key) {
    const std::string layout = dir_.path() + "/layout-" + key;
    auto store = layout::Layout::Open(layout, true);
    build::BuildOptions o;
    o.platform = {"amd64", "linux", ""};
    o.disks = {{disk, "disk.img", {}}};
    o.layer.compression = layer::Compression::kGzip;
    o.chunk_size = kChunk;
    auto built = build::BuildImage(**store, o, std::nullopt, "v2");
    EXPECT_TRUE(built.ok()) << built.status().message();
    auto ref = oci::Reference::Parse(server_.host() + "/" + repo + ":v2");
    auto r = registry::Repository::Open(*ref, {});
    EXPECT_TRUE(r.ok()) << r.status().message();
    repo_ = std::move(*r);
    auto copied = oci::CopyImage(**store, "v2", *repo_, "v2");
    EXPECT_TRUE(copied.ok()) << copied.status().message();
    const oci::Digest m = built->manifest.digest;
    Status s = WriteLazyEntry(*repo_, m, "docker://" + server_.host() + "/" + repo + "@" + m.str(), root_, key,
                              R"({"retryTimes": 1, "parallel": 2})");
    EXPECT_TRUE(s.ok()) << s.message();
    return lazy::ReadServeConfig(lazy::EntryDir(root_, key))->layer.digest;
  }

  // The background fill's rate in the entry's serve.json: 1 byte/s keeps
  // it from fetching anything while a test counts requests.
  void SetFillRate(const std::string& key, uint64_t rate) {
    const std::string dir = lazy::EntryDir(root_, key);
    auto config = lazy::ReadServeConfig(dir);
    ASSERT_TRUE(config.ok());
    config->fill_rate = rate;
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
  std::string NbdLog() const { return ReadFile(log_).value_or(""); }

  // qemu-io reads [offset, offset+len) of the export.
  ProcessResult ReadRange(uint64_t offset, uint64_t len) {
    return RunCmd({"qemu-io", "-r", "-f", "raw", "-c",
                   "read " + std::to_string(offset) + " " + std::to_string(len), Url()});
  }
  bool ReadOk(const ProcessResult& r) {
    return r.exit_code == 0 && r.out.find("read ") != std::string::npos && r.out.find("failed") == std::string::npos;
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

TEST_F(LazyNbdTest, FlippedByteInTheRegistrysBlobFailsThatChunkOnly) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  const oci::Digest blob = PushAndMakeEntry(disk, "lazy/a", "ka");
  auto config = lazy::ReadServeConfig(lazy::EntryDir(root_, "ka"));
  auto index = lazy::ReadEntryIndex(lazy::EntryDir(root_, "ka"), *config);
  ASSERT_TRUE(index.ok());
  const layer::IndexEntry& e = index->entries[40];
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
  EXPECT_NE(NbdLog().find(layer::ShaHex(e.sha256)), std::string::npos);
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

TEST_F(LazyNbdTest, RegistryDownFailsReadsCleanlyAndTheyResumeWhenItIsBack) {
  const std::string disk = dir_.path() + "/a.img";
  MakeDisk(disk, -1);
  PushAndMakeEntry(disk, "lazy/a", "ka");
  SetFillRate("ka", 1);
  ASSERT_TRUE(StartNbd("ka")) << NbdLog();
  ASSERT_TRUE(ReadOk(ReadRange(0, kChunk)));
  server_.Kill();
  auto down = ReadRange(50 * kChunk, kChunk);
  EXPECT_FALSE(ReadOk(down)) << Describe(down);
  ASSERT_TRUE(server_.Restart()) << server_.Log();
  auto back = ReadRange(50 * kChunk, kChunk);
  EXPECT_TRUE(ReadOk(back)) << Describe(back) << NbdLog();
  auto cmp = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "raw", disk, Url()});
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << NbdLog();
  // Whatever the map marks in disk.partial is the disk's own bytes.
  StopNbd();
  const std::string dir = lazy::EntryDir(root_, "ka");
  auto config = lazy::ReadServeConfig(dir);
  auto index = lazy::ReadEntryIndex(dir, *config);
  auto map = lazy::ChunkMap::Open(dir + "/chunks", (*layer::ParseAnchor(config->layer))->digest, index->entries.size());
  const std::string partial = *ReadFile(dir + "/disk.partial", 1 << 30), want = *ReadFile(disk, 1 << 30);
  for (size_t i = 0; i < index->entries.size(); ++i) {
    const layer::IndexEntry& e = index->entries[i];
    if ((*map)->Has(i)) EXPECT_EQ(partial.substr(e.disk_offset, e.length), want.substr(e.disk_offset, e.length)) << i;
  }
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
