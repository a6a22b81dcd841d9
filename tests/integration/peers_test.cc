// Nodes sharing verified v2 chunks (issue 15, docs/peers.md), on a cluster
// simulated on this machine (cluster.h: network namespaces on a bridge, or
// loopback addresses where namespaces cannot be made): a real registry, a
// v2 image pushed to it once, and nodes with their own roots, each running
// `regdisk prepare` and `regdisk peer` as a node would. What is asserted is
// behaviour: what the registry sends, what the disks hold, what a peer
// server answers; never speed (bench/peers measures that).
//
// The peer server and the --peers flags come from other branches: each test
// that needs them skips, saying which is missing, in a build without them.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "cluster.h"
#include "harness.h"

namespace regdisk::testing {
namespace {

constexpr char kHostilePeer[] = REGDISK_SOURCE_DIR "/tests/tools/hostile_peer.py";
constexpr uint64_t kChunk = 1 << 20;  // layer::kDefaultChunkSize: the image is built with it
// The image: random (incompressible) chunks, so its blob is about the disk's size.
constexpr uint64_t kDiskChunks = 24;
constexpr uint64_t kDiskBytes = kDiskChunks * kChunk;
// A node that loads through peers still asks the registry for the manifest,
// the config and the index (a few KiB); a quarter of the disk is far above
// that and far below a pull of its chunks.
constexpr uint64_t kSharedMaxEgress = kDiskBytes / 4;
// A node that pulls its chunks from the registry sends it at least this much.
constexpr uint64_t kPullMinEgress = kDiskBytes * 9 / 10;
// The hanging peer's timeout, and the most it may cost a prepare: a few
// timeouts (one per concurrent fetch before it is marked down, once more
// after kDownPeerTime), far below one per chunk (kDiskChunks of them).
constexpr int kHangTimeoutMs = 2000;
constexpr double kHangMaxCostSeconds = 5 * kHangTimeoutMs / 1000.0;
// The registry logs a request once it has sent the answer, which the client
// may have read a moment before.
constexpr auto kLogLag = std::chrono::milliseconds(200);
// How long a peer server gets to answer /v1/health once started.
constexpr int kPeerStartSeconds = 15;

// A file's text, "" if it cannot be read.
std::string Text(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? *text : "";
}

constexpr char kNoPeerServer[] = "`regdisk peer --help` lists no --listen: this build has no peer server";
constexpr char kNoPeerFlags[] = "`regdisk prepare --help` lists no --peers: this build asks no peers";

class PeersTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    cluster_ = new Cluster(4);
    if (!cluster_->error().empty()) return;
    disk_ = cluster_->dir() + "/disk.raw";
    ProcessResult r = RunCmd({"sh", "-c", "head -c " + std::to_string(kDiskBytes) + " /dev/urandom >" + disk_});
    std::string store = cluster_->dir() + "/store";
    image_ = cluster_->registry().host() + "/peers/disk:v1";
    ProcessResult b = RunCmd({REGDISK_BIN, "--store", store, "-q", "build", disk_, "-t", "peers/disk:v1"});
    ProcessResult p = cluster_->Regdisk(1, {"--store", store, "-q", "push", "peers/disk:v1", "docker://" + image_,
                                            "--tls-verify=false"});
    if (r.exit_code != 0 || b.exit_code != 0 || p.exit_code != 0) {
      push_error_ = Describe(r) + Describe(b) + Describe(p);
    }
    disk_sha_ = Sha256File(disk_);
    ProcessResult help = RunCmd({REGDISK_BIN, "peer", "--help"});  // (without the verb, the main help)
    peer_server_ = help.exit_code == 0 && help.out.find("--listen") != std::string::npos;
    peer_flags_ = RunCmd({REGDISK_BIN, "prepare", "--help"}).out.find("--peers") != std::string::npos;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

 protected:
  void SetUp() override {
    ASSERT_EQ(cluster_->error(), "");
    ASSERT_EQ(push_error_, "");
    test_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    for (pid_t pid : servers_) cluster_->Stop(pid);
    for (int k = 1; k <= cluster_->nodes(); ++k) cluster_->Regdisk(k, {"cache", "gc", "--root", Root(k)});
    if (HasFailure()) {
      std::cerr << "=== registry requests (last 30)\n";
      std::vector<std::string> requests = cluster_->RegistryRequests();
      for (size_t i = requests.size() > 30 ? requests.size() - 30 : 0; i < requests.size(); ++i) {
        std::cerr << requests[i] << "\n";
      }
      for (const auto& log : logs_) std::cerr << "=== " << log << "\n" << Tail(Text(log));
    }
  }
  static std::string Tail(const std::string& s) { return s.size() > 4000 ? s.substr(s.size() - 4000) : s; }

  // Node K's root for this test.
  std::string Root(int k) const { return cluster_->Root(k) + "/" + test_; }
  // `regdisk prepare` (a full prepare) of the image on node K, with `extra` flags;
  // adds what the registry sent meanwhile to *egress.
  ProcessResult Prepare(int k, std::vector<std::string> extra, uint64_t* egress = nullptr) {
    std::vector<std::string> args = {"prepare", "--root", Root(k), "--vm", "vm" + std::to_string(k),
                                     "--tls-verify=false", image_};
    args.insert(args.end(), extra.begin(), extra.end());
    uint64_t before = cluster_->RegistryEgress();
    ProcessResult r = cluster_->Regdisk(k, args);
    std::this_thread::sleep_for(kLogLag);
    if (egress) *egress = cluster_->RegistryEgress() - before;
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return r;
  }
  // The disk file of node K's one complete entry ("" if none).
  std::string DiskOf(int k) const {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(Root(k) + "/disks", ec)) {
      if (PathExists(e.path().string() + "/disk")) return e.path().string() + "/disk";
    }
    return "";
  }
  // Starts node K's peer server on its peer address (its root made, as a
  // node's DaemonSet makes it); true once it answers.
  bool StartPeer(int k) {
    EXPECT_TRUE(MakeDirs(Root(k)).ok());
    std::string log = cluster_->dir() + "/" + test_ + "-peer" + std::to_string(k) + ".log";
    logs_.push_back(log);
    pid_t pid = cluster_->Spawn(k, {REGDISK_BIN, "peer", "--root", Root(k), "--listen", cluster_->PeerAddress(k)}, log);
    servers_.push_back(pid);
    for (int i = 0; pid > 0 && i < kPeerStartSeconds * 10; ++i) {
      if (Curl(k, "/v1/health", {}).out.rfind("200", 0) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // tests/tools/hostile_peer.py in MODE on node K's peer address; its log's path.
  std::string StartHostile(int k, const std::string& mode) {
    std::string log = cluster_->dir() + "/" + test_ + "-hostile.log";
    logs_.push_back(log);
    std::string addr = cluster_->PeerAddress(k), port_file = log + ".port";
    pid_t pid = cluster_->Spawn(k, {"/usr/bin/python3", kHostilePeer, "--mode", mode, "--listen",
                                    addr.substr(0, addr.rfind(':')), "--port", addr.substr(addr.rfind(':') + 1),
                                    "--port-file", port_file}, log);
    servers_.push_back(pid);
    std::string error;
    EXPECT_NE(WaitForPortFile(&pid, port_file, log, kPeerStartSeconds, &error), "") << error;
    return log;
  }
  // curl on node 2 against node K's peer server: "STATUS\n" then the headers and body.
  ProcessResult Curl(int k, const std::string& path, std::vector<std::string> extra, int from = 2) {
    std::vector<std::string> argv = {"curl", "-s", "--path-as-is", "-m", "10", "-D", "-", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("http://" + cluster_->PeerAddress(k) + path);
    ProcessResult r = cluster_->Run(from, argv);
    size_t nl = r.out.rfind('\n');
    r.out = (nl == std::string::npos ? r.out : r.out.substr(nl + 1)) + "\n" + r.out.substr(0, nl);
    return r;
  }
  // sha256 hex of chunk `i` of the disk (as the index names it).
  std::string ChunkDigest(uint64_t i) const {
    auto bytes = ReadFile(disk_);
    std::string slice = cluster_->dir() + "/chunk";
    EXPECT_TRUE(WriteFileAtomic(slice, bytes->substr(i * kChunk, kChunk)).ok());
    return Sha256File(slice);
  }

  static Cluster* cluster_;
  static std::string disk_, disk_sha_, image_, push_error_;
  static bool peer_server_, peer_flags_;
  std::string test_;
  std::vector<pid_t> servers_;
  std::vector<std::string> logs_;
};

Cluster* PeersTest::cluster_ = nullptr;
std::string PeersTest::disk_, PeersTest::disk_sha_, PeersTest::image_, PeersTest::push_error_;
bool PeersTest::peer_server_ = false, PeersTest::peer_flags_ = false;

TEST_F(PeersTest, NodesAreInNetworkNamespacesWithNoWayOut) {
  if (!cluster_->namespaced()) {
    GTEST_SKIP() << cluster_->namespace_error() << " (the other tests ran on loopback addresses)";
  }
  for (int k = 1; k <= cluster_->nodes(); ++k) {
    ProcessResult route = cluster_->Run(k, {"ip", "route", "show", "default"});
    EXPECT_EQ(route.exit_code, 0) << Describe(route);
    EXPECT_EQ(route.out, "") << "node " << k << " has a default route";
    ProcessResult addr = cluster_->Run(k, {"ip", "-4", "-o", "addr", "show", "dev", "eth0"});
    EXPECT_NE(addr.out.find(" " + cluster_->Address(k) + "/24 "), std::string::npos) << Describe(addr);
  }
}

// Without peers every node pulls the whole disk: what the registry sends
// grows by about one image per node (P6's baseline: N nodes, N images).
TEST_F(PeersTest, WithoutPeersEachNodePullsTheWholeDisk) {
  for (int k : {1, 2}) {
    uint64_t egress = 0;
    Prepare(k, {}, &egress);
    EXPECT_GE(egress, kPullMinEgress) << "node " << k;
    EXPECT_EQ(Sha256File(DiskOf(k)), disk_sha_) << "node " << k;
  }
}

// A holds the disk; B and C load it through their peers: the registry sends
// each little more than the manifest and the index, and the disks are the same.
TEST_F(PeersTest, NodesLoadChunksFromPeersNotTheRegistry) {
  if (!peer_server_) GTEST_SKIP() << kNoPeerServer;
  if (!peer_flags_) GTEST_SKIP() << kNoPeerFlags;
  uint64_t egress = 0;
  Prepare(1, {}, &egress);
  EXPECT_GE(egress, kPullMinEgress);
  ASSERT_TRUE(StartPeer(1));
  ASSERT_TRUE(StartPeer(2));
  Prepare(2, {"--peers", cluster_->PeerAddress(1)}, &egress);
  EXPECT_LT(egress, kSharedMaxEgress) << "node 2 pulled its chunks from the registry";
  Prepare(3, {"--peers", cluster_->PeerAddress(1) + "," + cluster_->PeerAddress(2)}, &egress);
  EXPECT_LT(egress, kSharedMaxEgress) << "node 3 pulled its chunks from the registry";
  for (int k : {1, 2, 3}) EXPECT_EQ(Sha256File(DiskOf(k)), disk_sha_) << "node " << k;
}

// A peer that answers every chunk with the wrong bytes is asked, caught, and
// changes nothing: the disk is the image's, its chunks from the registry.
TEST_F(PeersTest, APeerServingCorruptChunksChangesNothing) {
  if (!peer_flags_) GTEST_SKIP() << kNoPeerFlags;
  std::string log = StartHostile(4, "corrupt");
  uint64_t egress = 0;
  Prepare(1, {"--peers", cluster_->PeerAddress(4)}, &egress);
  EXPECT_EQ(Sha256File(DiskOf(1)), disk_sha_);
  EXPECT_GE(egress, kPullMinEgress);
  EXPECT_NE(Text(log).find("chunk "), std::string::npos) << "the lying peer was never asked";
}

// A peer that accepts and never answers costs a few timeouts, not one per chunk.
TEST_F(PeersTest, AHangingPeerCostsAtMostItsTimeout) {
  if (!peer_flags_) GTEST_SKIP() << kNoPeerFlags;
  auto timed = [&](int k, std::vector<std::string> extra) {
    auto start = std::chrono::steady_clock::now();
    Prepare(k, std::move(extra));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  double alone = timed(1, {});
  std::string log = StartHostile(4, "hang");
  double hung = timed(2, {"--peers", cluster_->PeerAddress(4), "--peer-timeout", std::to_string(kHangTimeoutMs)});
  EXPECT_EQ(Sha256File(DiskOf(2)), disk_sha_);
  EXPECT_LT(hung, alone + kHangMaxCostSeconds) << "without the peer: " << alone << " s";
  EXPECT_NE(Text(log).find("hang "), std::string::npos) << "the hanging peer was never asked";
}

// The peer server answers for verified chunks by digest and nothing else:
// no path outside /v1/chunks/sha256/<hex>, no chunk it does not hold, no
// chunk whose bytes on its disk no longer match.
TEST_F(PeersTest, ThePeerServerServesVerifiedChunksAndNothingElse) {
  if (!peer_server_) GTEST_SKIP() << kNoPeerServer;
  Prepare(1, {});
  ASSERT_TRUE(StartPeer(1));
  std::string c0 = ChunkDigest(0), c5 = ChunkDigest(5);
  ProcessResult good = Curl(1, "/v1/chunks/sha256/" + c0, {"-o", cluster_->dir() + "/got"});
  EXPECT_EQ(good.out.substr(0, 4), "200\n") << Describe(good);
  EXPECT_EQ(Sha256File(cluster_->dir() + "/got"), c0);
  ProcessResult absent = Curl(1, "/v1/chunks/sha256/" + std::string(64, 'a'), {});
  EXPECT_EQ(absent.out.substr(0, 4), "404\n") << Describe(absent);
  EXPECT_NE(absent.out.find("Regdisk-Chunk: absent"), std::string::npos) << Describe(absent);
  std::string upper = c0;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  for (const std::string& path : std::vector<std::string>{
           "/v1/chunks/sha256/../../../../../../etc/passwd", "/v1/chunks/sha256/" + c0 + "/../../../../etc/passwd",
        "/v1/chunks/sha256/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/../../../../etc/passwd", "/etc/passwd",
        "/disks/", "/v1/chunks/sha256/" + upper, "/v1/chunks/sha256/" + c0.substr(1), "/v1/chunks/" + c0,
        "/v1/chunks/sha256/" + c0 + "%00", "/v1/chunks/sha256/" + c0 + "/"}) {
    ProcessResult r = Curl(1, path, {});
    EXPECT_NE(r.out.substr(0, 4), "200\n") << path << ": " << Describe(r);
    EXPECT_EQ(r.out.find("root:"), std::string::npos) << path;
  }
  // A chunk whose bytes on the node's disk were changed is not served (the
  // server re-hashes what it sends); the others still are.
  ASSERT_EQ(RunCmd({"sh", "-c", "printf X | dd of=" + DiskOf(1) + " bs=1 seek=" + std::to_string(5 * kChunk + 7) +
                                     " conv=notrunc status=none"}).exit_code, 0);
  ProcessResult tampered = Curl(1, "/v1/chunks/sha256/" + c5, {"-o", cluster_->dir() + "/got"});
  EXPECT_NE(tampered.out.substr(0, 4), "200\n") << Describe(tampered);
  EXPECT_EQ(Curl(1, "/v1/chunks/sha256/" + c0, {"-o", "/dev/null"}).out.substr(0, 4), "200\n");
}

// --peers "" is no peers: the registry gets exactly the requests it gets
// from a prepare without the flag.
TEST_F(PeersTest, AnEmptyPeerListIsExactlyNoPeers) {
  if (!peer_flags_) GTEST_SKIP() << kNoPeerFlags;
  auto requests = [&](int k, std::vector<std::string> extra) {
    size_t before = cluster_->RegistryRequests().size();
    Prepare(k, std::move(extra));
    std::vector<std::string> all = cluster_->RegistryRequests();
    std::vector<std::string> mine(all.begin() + std::min(before, all.size()), all.end());
    std::sort(mine.begin(), mine.end());  // parallel range requests finish in any order
    return mine;
  };
  std::vector<std::string> without = requests(1, {});
  std::vector<std::string> empty = requests(2, {"--peers", ""});
  EXPECT_FALSE(without.empty());
  EXPECT_EQ(empty, without);
  EXPECT_EQ(Sha256File(DiskOf(2)), disk_sha_);
}

}  // namespace
}  // namespace regdisk::testing
