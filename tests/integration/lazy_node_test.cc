// The node side of lazy serving, through the CLI as operators run it: a v2
// image pushed to the real registry, `regdisk prepare --lazy` makes the
// lazy entry and starts nbdkit with regdisk-nbd.so, the VM's overlay reads
// the disk back through its NBD backing, release stops the server once the
// entry is complete, gc removes it; a server killed mid-read leaves nothing
// corrupt and the next prepare starts it again.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "registry_server.h"

namespace regdisk::testing {
namespace {

using nlohmann::json;

// The background fill of a small disk ends within seconds; a loaded CI
// machine gets a minute.
constexpr int kFillSeconds = 60;

// `size` bytes: random 64 KiB runs (every chunk is real data) and holes.
void MakeDisk(const std::string& path, size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string d(size, '\0');
  for (size_t off = 0; off < size; off += 64 << 10) {
    if (rng() % 4 == 0) continue;
    for (size_t i = off; i < off + (64 << 10) && i + 8 <= size; i += 8) {
      uint64_t v = rng() | 1;
      std::memcpy(&d[i], &v, 8);
    }
  }
  ASSERT_TRUE(WriteFileAtomic(path, d).ok());
}

class LazyNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef REGDISK_PLUGIN_SANITIZED
    GTEST_SKIP() << "nbdkit cannot load a plugin built with the sanitizers";
#endif
    ASSERT_EQ(server_.error(), "");
    for (const char* tool : {"nbdkit", "qemu-img"}) ASSERT_TRUE(HaveProgram(tool)) << tool << " (scripts/setup)";
    setenv("REGDISK_NBD_PLUGIN", REGDISK_NBD_PLUGIN, 1);
    root_ = dir_.path() + "/root";
  }
  void TearDown() override {
    // Whatever a failed test left serving.
    Regdisk({"cache", "gc", "--root", root_});
    if (HasFailure()) std::cerr << "=== registry log\n" << server_.Log();
  }

  // Builds `disk` (v2, the default) and pushes it as REPO:v1; returns the image.
  std::string Push(const std::string& disk, const std::string& repo) {
    std::string store = dir_.path() + "/store";
    ProcessResult b = Regdisk({"--store", store, "-q", "build", disk, "-t", repo + ":v1"});
    EXPECT_EQ(b.exit_code, 0) << Describe(b);
    std::string image = server_.host() + "/" + repo + ":v1";
    ProcessResult p = Regdisk({"--store", store, "-q", "push", repo + ":v1", "docker://" + image});
    EXPECT_EQ(p.exit_code, 0) << Describe(p);
    return image;
  }
  json PrepareLazy(const std::string& vm, const std::string& image) {
    ProcessResult r = Regdisk({"prepare", "--lazy", "--fill-delay", "0", "--json", "--vm", vm, image, "--root", root_});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.err, "") << "a lazy prepare of a v2 image fell back to a full pull";
    return r.exit_code == 0 ? json::parse(r.out) : json::object();
  }
  // A `size`-byte disk pushed as REPO:v1 and prepared lazily for `vm`; the
  // disk's path in `disk`.
  json PushAndPrepareLazy(size_t size, uint64_t seed, const std::string& repo, const std::string& vm,
                          std::string* disk, std::string* image) {
    *disk = dir_.path() + "/" + vm + ".img";
    MakeDisk(*disk, size, seed);
    *image = Push(*disk, repo);
    return PrepareLazy(vm, *image);
  }
  json CacheLs() {
    ProcessResult r = Regdisk({"cache", "ls", "--json", "--root", root_});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return r.exit_code == 0 ? json::parse(r.out) : json::array();
  }
  // Waits until the only entry is complete (the plugin's fill promoted it).
  bool WaitComplete() {
    for (int i = 0; i < kFillSeconds * 10; ++i) {
      json ls = CacheLs();
      if (ls.size() == 1 && ls[0]["state"] == "complete") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // A live process, not a zombie (the server is nobody's child here: an
  // orphan is reaped only if this machine's init reaps).
  static bool Alive(pid_t pid) {
    auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = stat.ok() ? stat->rfind(')') : std::string::npos;
    return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
  }
  static pid_t ServerPid(const std::string& entry) {
    auto text = ReadFile(entry + "/nbd.pid");
    return text.ok() ? std::stoi(*text) : -1;
  }
  ProcessResult Compare(const std::string& overlay, const std::string& disk) {
    return RunCmd({"qemu-img", "compare", "-f", "qcow2", "-F", "raw", overlay, disk});
  }

  RegistryServer server_{RegistryServer::Flavour::kOpen};
  TempDir dir_{"rd-lazynode"};
  std::string root_;
};

TEST_F(LazyNodeTest, PrepareLazyServesTheDiskReleaseStopsTheServerGcRemovesTheEntry) {
  std::string disk, image;
  json lease = PushAndPrepareLazy(16 << 20, 1, "lazy/a", "vm-a", &disk, &image);
  ASSERT_FALSE(lease.empty());
  std::string socket = lease["nbdSocket"];
  ASSERT_NE(socket, "");
  EXPECT_EQ(lease["base"], "");
  std::string entry = socket.substr(0, socket.rfind('/'));
  struct stat st;
  ASSERT_EQ(::stat((entry + "/serve.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(entry + "/serve.json")->find("peer"), std::string::npos) << "no --peers, no peer fields";
  EXPECT_TRUE(PathExists(entry + "/index"));
  ASSERT_EQ(::stat(socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  pid_t pid = ServerPid(entry);
  EXPECT_TRUE(Alive(pid));

  // The overlay's backing chain (the NBD export) reads back the disk.
  ProcessResult cmp = Compare(lease["overlay"], disk);
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << *ReadFile(entry + "/nbd.log");
  json ls = CacheLs();
  ASSERT_EQ(ls.size(), 1u);
  EXPECT_EQ(ls[0]["leasedBy"], json::array({"vm-a"}));
  EXPECT_EQ(ls[0]["served"], true);

  // Once the fill has made it an ordinary entry, the last lease's release
  // stops the server; gc then removes the entry.
  ASSERT_TRUE(WaitComplete()) << CacheLs().dump(2) << *ReadFile(entry + "/nbd.log");
  EXPECT_EQ(Sha256File(entry + "/disk"), Sha256File(disk));
  ProcessResult rel = Regdisk({"release", "--vm", "vm-a", "--root", root_});
  ASSERT_EQ(rel.exit_code, 0) << Describe(rel);
  EXPECT_FALSE(Alive(pid)) << "release left the server running";
  EXPECT_FALSE(PathExists(socket));
  ProcessResult gc = Regdisk({"cache", "gc", "--root", root_});
  ASSERT_EQ(gc.exit_code, 0) << Describe(gc);
  EXPECT_EQ(CacheLs().size(), 0u);
  EXPECT_EQ(CountEntries(root_ + "/disks"), 0);
}

TEST_F(LazyNodeTest, KillingTheServerMidReadCorruptsNothingAndPrepareRestartsIt) {
  std::string disk, image;
  json lease = PushAndPrepareLazy(64 << 20, 2, "lazy/b", "vm-b", &disk, &image);
  ASSERT_FALSE(lease.empty());
  std::string socket = lease["nbdSocket"], overlay = lease["overlay"];
  std::string entry = socket.substr(0, socket.rfind('/'));
  pid_t pid = ServerPid(entry);
  ASSERT_TRUE(Alive(pid));

  // A reader of the whole disk, and the server killed under it.
  std::string copy = dir_.path() + "/copy.raw";
  pid_t reader = SpawnLogged({"/usr/bin/qemu-img", "convert", "-f", "qcow2", "-O", "raw", overlay, copy},
                             dir_.path() + "/convert.log");
  ASSERT_GT(reader, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ::waitpid(reader, &status, 0);
  for (int i = 0; i < 100 && Alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(CacheLs().at(0)["served"]);

  // The entry is intact (still lazy, or complete with the right bytes).
  json ls = CacheLs();
  ASSERT_EQ(ls.size(), 1u);
  if (ls[0]["state"] == "complete") EXPECT_EQ(Sha256File(entry + "/disk"), Sha256File(disk));

  // The same lease again: the server is started again and serves.
  json again = PrepareLazy("vm-b", image);
  EXPECT_EQ(again["overlay"], overlay);
  pid_t restarted = ServerPid(entry);
  EXPECT_NE(restarted, pid);
  EXPECT_TRUE(Alive(restarted));
  ProcessResult cmp = Compare(overlay, disk);
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << *ReadFile(entry + "/nbd.log");
  ASSERT_TRUE(WaitComplete()) << *ReadFile(entry + "/nbd.log");
  EXPECT_EQ(Sha256File(entry + "/disk"), Sha256File(disk));
  EXPECT_EQ(Regdisk({"release", "--vm", "vm-b", "--root", root_}).exit_code, 0);
  EXPECT_FALSE(Alive(restarted));
}

// --peers and its siblings reach serve.json; peers that are all down
// change nothing the guest sees; a bad spec is refused before anything
// is fetched.
TEST_F(LazyNodeTest, PeerFlagsAreCheckedAndWrittenIntoServeJson) {
  std::string disk = dir_.path() + "/disk.img";
  MakeDisk(disk, 4 << 20, 5);
  std::string image = Push(disk, "lazy/p");
  ProcessResult bad = Regdisk({"prepare", "--lazy", "--vm", "vm-p", image, "--root", root_, "--peers", "127.0.0.1"});
  EXPECT_EQ(bad.exit_code, 2) << Describe(bad);
  EXPECT_NE(bad.err.find("--peers: item \"127.0.0.1\": expected HOST:PORT"), std::string::npos) << bad.err;
  EXPECT_EQ(CountEntries(root_ + "/disks"), 0);
  ProcessResult r = Regdisk({"prepare", "--lazy", "--fill-delay", "0", "--json", "--vm", "vm-p", image, "--root",
                             root_, "--peers", "127.0.0.1:9,127.0.0.1:10", "--peer-self", "127.0.0.1:10",
                             "--peer-timeout", "300"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json lease = json::parse(r.out);
  std::string socket = lease["nbdSocket"];
  std::string entry = socket.substr(0, socket.rfind('/'));
  json serve = json::parse(*ReadFile(entry + "/serve.json"));
  EXPECT_EQ(serve["peers"], "127.0.0.1:9,127.0.0.1:10");
  EXPECT_EQ(serve["peerSelf"], "127.0.0.1:10");
  EXPECT_EQ(serve["peerTimeoutMs"], 300);
  ProcessResult cmp = Compare(lease["overlay"], disk);
  EXPECT_EQ(cmp.exit_code, 0) << Describe(cmp) << *ReadFile(entry + "/nbd.log");
  ASSERT_TRUE(WaitComplete()) << CacheLs().dump(2) << *ReadFile(entry + "/nbd.log");
}

TEST_F(LazyNodeTest, AFullPrepareOfAV2ImageGivesAnOrdinaryEntry) {
  std::string disk = dir_.path() + "/disk.img";
  MakeDisk(disk, 8 << 20, 3);
  std::string image = Push(disk, "lazy/c");
  ProcessResult r = Regdisk({"prepare", "--json", "--vm", "vm-c", image, "--root", root_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json lease = json::parse(r.out);
  EXPECT_EQ(lease["nbdSocket"], "");
  EXPECT_EQ(Sha256File(lease["base"]), Sha256File(disk));
  json ls = CacheLs();
  ASSERT_EQ(ls.size(), 1u);
  EXPECT_EQ(ls[0]["state"], "complete");
  EXPECT_EQ(ls[0]["served"], false);
}

}  // namespace
}  // namespace regdisk::testing
