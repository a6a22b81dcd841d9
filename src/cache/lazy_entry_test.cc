// Lazy entries of v2 images from a layout (range reads by pread), served by
// nbdkit's own file plugin over a complete copy of the disk (regdisk's plugin
// serves the chunks; here the launcher, the overlay on NBD, the lease and
// the server's lifecycle are what is tested).
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cache/node_cache.h"
#include "forge.h"
#include "layer/disk_index.h"
#include "layer/layer_writer.h"
#include "oci/media_types.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/subprocess.h"

namespace regdisk::cache {
namespace {

using nlohmann::json;

class LazyEntryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = *layout::Layout::Open(dir_.path() + "/source", true);
    disk_ = dir_.path() + "/disk.img";
    MakeDisk(disk_, 'a');
    CacheOptions o;
    o.root = dir_.path() + "/root";
    o.limits.max_layer_bytes = 64 << 20;
    o.limits.free_space_reserve = 0;
    // The file plugin serves the original: the bytes the lazy entry stands for.
    std::string served = disk_;
    o.server = [served](const std::string&, const std::string&) {
      return ServerCommand{"nbdkit", "file", {"file=" + served}};
    };
    options_ = o;
    cache_ = *NodeCache::Open(o);
  }
  void TearDown() override {
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/root/disks")) {
      (void)StopServer(e.path().string());
    }
  }

  // 4 MiB, data in the first 256 KiB and at 3 MiB, holes elsewhere.
  static void MakeDisk(const std::string& path, char fill) {
    std::string d(4 << 20, '\0');
    for (size_t i = 0; i < (256u << 10); i += 4096) d[i] = fill;
    d[3 << 20] = fill;
    ASSERT_TRUE(WriteFileAtomic(path, d).ok());
  }

  // A v2 image of the file `disk` as regdisk build makes it (64 KiB chunks).
  oci::RawManifest PutV2(const std::string& tag, const std::string& disk, const std::string& format = "raw",
                         layer::EntryOwner owner = {107, 107, 0440}, const std::string& index_digest = "") {
    layer::LayerOptions lo;
    lo.chunk_size = 64 << 10;
    layer::LayerWriter w(*source_->CreateBlob(), lo);
    EXPECT_TRUE(w.AddDirectory("disk", {0, 0, 0755}).ok());
    EXPECT_TRUE(w.AddFile("disk/disk.img", disk, owner, true).ok());
    auto r = w.Finish();
    EXPECT_TRUE(r.ok()) << r.status().message();
    oci::Descriptor layer = r->descriptor;
    for (const auto& [k, v] : forge::DiskAnnotations("disk.img", format, std::filesystem::file_size(disk))) {
      layer.annotations[k] = v;
    }
    if (!index_digest.empty()) layer.annotations[layer::kIndexDigestAnnotation] = index_digest;
    oci::ImageConfig config;
    config.architecture = "amd64";
    config.os = "linux";
    config.diff_ids = {r->diff_id};
    oci::Manifest m;
    m.media_type = oci::media::kOciManifest;
    m.layers = {layer};
    m.config = *oci::WriteBlob(*source_, oci::EncodeImageConfig(config), oci::media::kOciConfig);
    auto raw = oci::PutManifest(*source_, m, tag);
    EXPECT_TRUE(raw.ok()) << raw.status().message();
    return *raw;
  }

  StoreOpener Opener() {
    return [this](const oci::Reference&) -> StatusOr<std::unique_ptr<oci::Store>> {
      ASSIGN_OR_RETURN(auto l, layout::Layout::Open(dir_.path() + "/source", false));
      return std::unique_ptr<oci::Store>(std::move(l));
    };
  }
  StatusOr<Lease> PrepareLazy(const std::string& vm, const std::string& tag) {
    PrepareRequest req{vm, "example.com/disks/a:" + tag, "", {}};
    req.lazy = true;
    req.serve.registry = R"({"parallel": 2})";
    return cache_->Prepare(req, Opener());
  }
  std::string EntryDir(const Lease& l) const { return dir_.path() + "/root/disks/" + l.disk_key; }
  void ExpectNothingLeft() {
    EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/root/disks"));
    EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/root/tmp"));
    EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/root/vms"));
  }
  // qemu-img compare of the overlay (through its NBD backing) and `disk`.
  void ExpectOverlayReads(const Lease& l, const std::string& disk) {
    auto cmp = RunProcess({"qemu-img", "compare", "-f", "qcow2", "-F", "raw", l.overlay, disk});
    ASSERT_TRUE(cmp.ok());
    EXPECT_EQ(cmp->exit_code, 0) << cmp->out << cmp->err;
  }

  TempDir dir_{"rd-lazy"};
  CacheOptions options_;
  std::unique_ptr<layout::Layout> source_;
  std::unique_ptr<NodeCache> cache_;
  std::string disk_;
};

TEST_F(LazyEntryTest, PrepareLazyPublishesTheEntryAndServesItOverNbd) {
  oci::RawManifest m = PutV2("v2", disk_);
  auto lease = PrepareLazy("vm-a", "v2");
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  EXPECT_EQ(lease->full_pull_reason, "");
  std::string dir = EntryDir(*lease);
  EXPECT_EQ(lease->nbd_socket, dir + "/nbd.sock");
  EXPECT_EQ(lease->base_file, "");
  EXPECT_FALSE(PathExists(dir + "/disk"));

  json meta = json::parse(*ReadFile(dir + "/meta.json"));
  EXPECT_EQ(meta["lazy"], true);
  EXPECT_EQ(meta["format"], "raw");
  EXPECT_EQ(meta["virtualSize"], 4 << 20);
  EXPECT_EQ(meta["path"], "/disk/disk.img");
  struct stat st;
  ASSERT_EQ(::stat((dir + "/serve.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  json serve = json::parse(*ReadFile(dir + "/serve.json"));
  oci::Manifest parsed = *oci::ParseManifest(m.bytes);
  EXPECT_EQ(serve["layer"]["digest"], parsed.layers[0].digest.str());
  EXPECT_EQ(serve["layer"]["annotations"][layer::kIndexDigestAnnotation],
            parsed.layers[0].annotations[layer::kIndexDigestAnnotation]);
  EXPECT_EQ(serve["image"], "oci:" + dir_.path() + "/source@" + m.descriptor.digest.str());
  EXPECT_EQ(serve["fillRate"], 0);
  EXPECT_TRUE(serve["diffId"].get<std::string>().starts_with("sha256:"));
  EXPECT_EQ("sha256:" + Sha256::HexOf(*ReadFile(dir + "/index")),
            parsed.layers[0].annotations[layer::kIndexDigestAnnotation]);

  ASSERT_EQ(::stat(lease->nbd_socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u) << "qemu (another user) must be able to connect";
  ExpectOverlayReads(*lease, disk_);

  auto entries = cache_->List();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_TRUE((*entries)[0].lazy);
  EXPECT_TRUE((*entries)[0].served);
  EXPECT_EQ((*entries)[0].leased_by, std::vector<std::string>{"vm-a"});

  // The lease as stored names the socket.
  auto stored = cache_->GetLease("vm-a");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->nbd_socket, lease->nbd_socket);
  EXPECT_EQ((*stored)->base_file, "");

  // A second VM shares the entry and its server.
  auto second = PrepareLazy("vm-b", "v2");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->nbd_socket, lease->nbd_socket);
  ExpectOverlayReads(*second, disk_);
}

TEST_F(LazyEntryTest, AKilledServerIsRestartedAndGcStopsWhatNobodyLeases) {
  PutV2("v2", disk_);
  auto lease = PrepareLazy("vm-a", "v2");
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  std::string dir = EntryDir(*lease);
  pid_t pid = std::stoi(*ReadFile(dir + "/nbd.pid"));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  for (int i = 0; i < 200 && ServerRunning(dir); ++i) ::usleep(10000);
  EXPECT_FALSE(cache_->List()->at(0).served);
  Status served = cache_->EnsureServing(*lease);
  ASSERT_TRUE(served.ok()) << served.message();
  EXPECT_NE(std::stoi(*ReadFile(dir + "/nbd.pid")), pid);
  ExpectOverlayReads(*lease, disk_);

  // The entry is still lazy: releasing its last lease leaves the server
  // (its fill goes on); gc stops it and then removes the entry.
  ASSERT_TRUE(cache_->Release("vm-a").ok());
  EXPECT_TRUE(ServerRunning(dir));
  auto gc = cache_->Gc(0);
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->removed, 1);
  EXPECT_FALSE(PathExists(dir));
  ExpectNothingLeft();
}

TEST_F(LazyEntryTest, GcKeepsALeasedLazyEntryAndItsServer) {
  PutV2("v2", disk_);
  auto lease = PrepareLazy("vm-a", "v2");
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  auto gc = cache_->Gc(0);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->removed, 0);
  EXPECT_TRUE(ServerRunning(EntryDir(*lease)));
  ExpectOverlayReads(*lease, disk_);
}

TEST_F(LazyEntryTest, ReleasingTheLastLeaseOfACompleteEntryStopsItsServer) {
  PutV2("v2", disk_);
  auto a = PrepareLazy("vm-a", "v2");
  auto b = PrepareLazy("vm-b", "v2");
  ASSERT_TRUE(a.ok() && b.ok());
  std::string dir = EntryDir(*a);
  // What Promote does once every chunk is in.
  ASSERT_TRUE(WriteFileAtomic(dir + "/disk", *ReadFile(disk_), 0444).ok());
  auto entries = cache_->List();
  EXPECT_FALSE(entries->at(0).lazy);
  // A new VM now gets the file.
  PrepareRequest req{"vm-c", "example.com/disks/a:v2", "", {}};
  req.lazy = true;
  auto c = cache_->Prepare(req, Opener());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->nbd_socket, "");
  EXPECT_EQ(c->base_file, dir + "/disk");

  ASSERT_TRUE(cache_->Release("vm-a").ok());
  EXPECT_TRUE(ServerRunning(dir)) << "vm-b still reads through the server";
  ASSERT_TRUE(cache_->Release("vm-b").ok());
  EXPECT_FALSE(ServerRunning(dir));
  EXPECT_FALSE(PathExists(dir + "/nbd.sock"));
}

TEST_F(LazyEntryTest, ImagesThatCannotBeServedLazilyArePulledWhole) {
  // A v1alpha image (one tar stream, no index).
  std::string data = *ReadFile(disk_);
  forge::PutImage(*source_,
                  {{forge::MakeTar({{"disk", forge::TarEntry::Type::kDir},
                                    {"disk/disk.img", forge::TarEntry::Type::kFile, data, "", 0440, 107, 107}}),
                    forge::Compression::kGzip, forge::DiskAnnotations("disk.img", "raw", data.size())}},
                  "v1");
  auto lease = PrepareLazy("vm-a", "v1");
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  EXPECT_EQ(lease->nbd_socket, "");
  EXPECT_NE(lease->full_pull_reason.find("not a v2 image"), std::string::npos) << lease->full_pull_reason;
  EXPECT_EQ(Sha256::HexOf(*ReadFile(lease->base_file)), Sha256::HexOf(data));
}

// Another node that holds the disk: its chunks, by their place in it.
class DiskPeers : public lazy::PeerChunks {
 public:
  explicit DiskPeers(std::string disk) : disk_(std::move(disk)) {}
  lazy::PeerResult Fetch(const layer::IndexEntry& e) override {
    ++asked;
    return {.bytes = ReadFile(disk_)->substr(e.disk_offset, e.length)};
  }
  bool OwnsChunk(const layer::IndexEntry&) override { return false; }
  std::atomic<int> asked{0};

 private:
  std::string disk_;
};

// A full prepare of a v2 image takes its chunks from the peers of the
// request's settings, and writes them into serve.json; without --peers it
// opens none.
TEST_F(LazyEntryTest, AFullPrepareTakesChunksFromThePeersGiven) {
  PutV2("v2", disk_);
  auto peers = std::make_shared<DiskPeers>(disk_);
  std::vector<std::string> opened;
  CacheOptions o = options_;
  o.open_peers = [&](const lazy::ServeConfig& serve) -> StatusOr<std::shared_ptr<lazy::PeerChunks>> {
    opened.push_back(serve.peers + " " + serve.peer_self + " " + std::to_string(serve.peer_timeout_ms));
    return std::shared_ptr<lazy::PeerChunks>(peers);
  };
  auto cache = *NodeCache::Open(o);
  PrepareRequest req{"vm-a", "example.com/disks/a:v2", "", {}};
  req.serve.peers = "127.0.1.2:7480";
  req.serve.peer_self = "127.0.1.1:7480";
  req.serve.peer_timeout_ms = 700;
  auto lease = cache->Prepare(req, Opener());
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  EXPECT_EQ(opened, (std::vector<std::string>{"127.0.1.2:7480 127.0.1.1:7480 700"}));
  EXPECT_EQ(peers->asked, 64);  // each 64 KiB chunk of the 4 MiB file (written whole: no holes) once
  EXPECT_EQ(Sha256::HexOf(*ReadFile(lease->base_file)), Sha256::HexOf(*ReadFile(disk_)));
  auto serve = lazy::ReadServeConfig(EntryDir(*lease));
  ASSERT_TRUE(serve.ok()) << serve.status().message();
  EXPECT_EQ(serve->peers, "127.0.1.2:7480");
  EXPECT_EQ(serve->peer_timeout_ms, 700u);
  // No --peers: nothing is opened.
  const std::string other = dir_.path() + "/other.img";
  MakeDisk(other, 'b');
  PutV2("v2b", other);
  auto plain = cache->Prepare(PrepareRequest{"vm-b", "example.com/disks/a:v2b", "", {}}, Opener());
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(Sha256::HexOf(*ReadFile(plain->base_file)), Sha256::HexOf(*ReadFile(other)));
  EXPECT_EQ(opened.size(), 1u);
  EXPECT_EQ(peers->asked, 64);
}

TEST_F(LazyEntryTest, RefusedBeforeAnyServingLeavingNothing) {
  // The disk's owner and mode: qemu (UID 107) could not read it.
  PutV2("root", disk_, "raw", {0, 0, 0440});
  auto r = PrepareLazy("vm-a", "root");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("qemu (UID 107) cannot read it"), std::string::npos) << r.status().message();
  ExpectNothingLeft();

  // An index whose digest is not the anchored one.
  PutV2("badindex", disk_, "raw", {107, 107, 0440}, "sha256:" + std::string(64, 'e'));
  r = PrepareLazy("vm-a", "badindex");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorrupt) << r.status().message();
  ExpectNothingLeft();

  // Raw bytes declared qcow2.
  PutV2("declared", disk_, "qcow2");
  r = PrepareLazy("vm-a", "declared");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("declared qcow2"), std::string::npos) << r.status().message();
  ExpectNothingLeft();

  // A qcow2 whose backing file is the host's /etc/shadow.
  std::string q = dir_.path() + "/backed.qcow2";
  auto made = RunProcess({"qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw", q, "16M"});
  ASSERT_TRUE(made.ok() && made->exit_code == 0);
  PutV2("backed", q, "qcow2");
  r = PrepareLazy("vm-a", "backed");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("backing file"), std::string::npos) << r.status().message();
  ExpectNothingLeft();
}

}  // namespace
}  // namespace regdisk::cache
