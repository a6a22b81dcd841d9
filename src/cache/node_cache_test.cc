#include "cache/node_cache.h"
#include "disk/qemu_img.h"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "forge.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/subprocess.h"

namespace regdisk::cache {
namespace {

namespace fs = std::filesystem;
using forge::TarEntry;

std::string DiskBytes(char fill) {
  // 4 MiB of which only the first 256 KiB hold data: sparse when extracted.
  std::string d(4 << 20, '\0');
  for (size_t i = 0; i < (256u << 10); i += 4096) d[i] = fill;
  return d;
}

std::string FileHash(const std::string& path) { return Sha256::HexOf(*ReadFile(path, 1ull << 32)); }

class NodeCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = *layout::Layout::Open(dir_.path() + "/source", true);
    CacheOptions o;
    o.root = dir_.path() + "/root";
    o.limits.max_layer_bytes = 64 << 20;
    cache_ = *NodeCache::Open(o);
  }
  StoreOpener Opener() {
    return [this](const oci::Reference&) -> StatusOr<std::unique_ptr<oci::Store>> {
      ++opens_;
      ASSIGN_OR_RETURN(auto l, layout::Layout::Open(dir_.path() + "/source", false));
      return std::unique_ptr<oci::Store>(std::move(l));
    };
  }
  // A one-disk image as regdisk build makes it, tagged `tag` in the source.
  oci::RawManifest PutDisk(const std::string& tag, char fill, const std::string& format = "raw") {
    std::string data = DiskBytes(fill);
    auto m = forge::PutImage(*source_, {{forge::MakeTar({{"disk", TarEntry::Type::kDir}, {"disk/disk.img", TarEntry::Type::kFile, data}}),
                                         forge::Compression::kGzip, forge::DiskAnnotations("disk.img", format, data.size())}},
                             tag);
    EXPECT_TRUE(m.ok()) << m.status().message();
    return *m;
  }
  StatusOr<Lease> Prepare(const std::string& vm, const std::string& image, const std::string& path = "",
                          std::optional<PullPolicy> policy = {}) {
    return cache_->Prepare({vm, image, path, policy}, Opener());
  }
  // Nothing of a refused image may stay: no disk, no temp, no tag.
  void ExpectCacheEmpty() {
    EXPECT_EQ(fs::is_empty(dir_.path() + "/root/disks"), true);
    EXPECT_EQ(fs::is_empty(dir_.path() + "/root/tmp"), true);
    EXPECT_EQ(fs::is_empty(dir_.path() + "/root/vms"), true);
    EXPECT_TRUE(cache_->List()->empty());
  }
  TempDir dir_{"regdisk-cache"};
  std::unique_ptr<layout::Layout> source_;
  std::unique_ptr<NodeCache> cache_;
  int opens_ = 0;
};

TEST_F(NodeCacheTest, PrepareGivesAnOverlayOnAReadOnlyVerifiedDisk) {
  PutDisk("v1", 'a');
  auto lease = Prepare("vm-a", "example.com/disks/a:v1");
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  EXPECT_EQ(lease->path_in_image, "/disk/disk.img");
  EXPECT_EQ(lease->base_format, disk::Format::kRaw);
  EXPECT_EQ(FileHash(lease->base_file), Sha256::HexOf(DiskBytes('a')));
  struct stat st;
  ASSERT_EQ(::stat(lease->base_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20) << "the extracted raw disk is not sparse";
  auto info = disk::RunQemuImgInfo(lease->overlay, disk::Format::kQcow2);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->backing_filename, lease->base_file);
  // Preparing again is idempotent.
  auto again = Prepare("vm-a", "example.com/disks/a:v1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->overlay, lease->overlay);
}

// Overlays are never synced, so a crash of the machine may tear one: a
// lease made in an earlier boot gets a new, empty overlay on its pinned
// digest, while a lease of this boot keeps its overlay (the VM's writes).
TEST_F(NodeCacheTest, AnOverlayFromAnEarlierBootIsMadeAgain) {
  oci::RawManifest one = PutDisk("v1", 'a');
  auto lease = Prepare("vm-a", "example.com/x:v1");
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  ASSERT_TRUE(BootId().ok());
  EXPECT_EQ(lease->boot, *BootId());
  ASSERT_TRUE(WriteFileAtomic(lease->overlay, "torn").ok());
  ASSERT_TRUE(Prepare("vm-a", "example.com/x:v1").ok());
  EXPECT_EQ(*ReadFile(lease->overlay), "torn") << "an overlay of this boot was replaced";

  // The lease as the boot before this one left it; the tag moved since.
  std::string path = dir_.path() + "/root/vms/vm-a/lease.json", text = *ReadFile(path);
  ASSERT_NE(text.find(lease->boot), std::string::npos) << text;
  text.replace(text.find(lease->boot), lease->boot.size(), "00000000-0000-0000-0000-000000000000");
  ASSERT_TRUE(WriteFileAtomic(path, text).ok());
  PutDisk("v1", 'b');
  auto after = Prepare("vm-a", "example.com/x:v1", "", PullPolicy::kAlways);
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after->manifest, one.descriptor.digest);
  EXPECT_EQ(after->boot, lease->boot);
  EXPECT_EQ((*cache_->GetLease("vm-a"))->boot, lease->boot);
  auto info = disk::RunQemuImgInfo(after->overlay, disk::Format::kQcow2);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->backing_filename, lease->base_file);
}

TEST_F(NodeCacheTest, ManyVmsShareOneEntryAndOverlayWritesStayInTheOverlay) {
  PutDisk("v1", 'a');
  std::vector<Lease> leases;
  for (int i = 0; i < 3; ++i) leases.push_back(*Prepare("vm-" + std::to_string(i), "example.com/disks/a:v1"));
  auto entries = cache_->List();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].leased_by.size(), 3u);
  EXPECT_EQ(opens_, 1) << "the source was consulted more than once";
  std::string before = FileHash(leases[0].base_file);
  auto w = RunProcess({"qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 64k", leases[0].overlay});
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->exit_code, 0) << w->err;
  auto r = RunProcess({"qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 64k", leases[0].overlay});
  EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
  EXPECT_EQ(FileHash(leases[0].base_file), before) << "an overlay write reached the cached disk";
}

TEST_F(NodeCacheTest, ReleaseAndGcNeverTouchLeasedDisks) {
  PutDisk("a", 'a');
  PutDisk("b", 'b');
  ASSERT_TRUE(Prepare("vm-a", "example.com/x:a").ok());
  ASSERT_TRUE(Prepare("vm-b", "example.com/x:b").ok());
  auto gc = cache_->Gc(0);
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->removed, 0);
  ASSERT_TRUE(cache_->Release("vm-b").ok());
  EXPECT_EQ(cache_->Release("vm-b").code(), Code::kNotFound);
  gc = cache_->Gc(0);
  EXPECT_EQ(gc->removed, 1);
  auto entries = cache_->List();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].leased_by, std::vector<std::string>{"vm-a"});
}

TEST_F(NodeCacheTest, GcRemovesWhatKilledPreparesLeftButNotWorkInProgress) {
  const std::string root = dir_.path() + "/root";
  // A killed prepare's work dir, and a VM dir that never got its lease...
  ASSERT_TRUE(MakeDirs(root + "/tmp/dead-only.work").ok());
  ASSERT_TRUE(WriteFileAtomic(root + "/tmp/dead-only.work/.extract-1-0", "half a disk").ok());
  ASSERT_TRUE(MakeDirs(root + "/vms/vm-orphan").ok());
  ASSERT_TRUE(WriteFileAtomic(root + "/vms/vm-orphan/overlay.qcow2.tmp", "half an overlay").ok());
  // ...and the same whose locks are held: a prepare at work right now.
  ASSERT_TRUE(MakeDirs(root + "/tmp/busy-only.work").ok());
  ASSERT_TRUE(MakeDirs(root + "/vms/vm-busy").ok());
  auto key_lock = FileLock::Acquire(root + "/locks/disk-busy-only.lock");
  auto vm_lock = FileLock::Acquire(root + "/locks/vm-vm-busy.lock");
  ASSERT_TRUE(key_lock.ok() && vm_lock.ok());
  auto gc = cache_->Gc(0);
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_FALSE(PathExists(root + "/tmp/dead-only.work"));
  EXPECT_FALSE(PathExists(root + "/vms/vm-orphan"));
  EXPECT_TRUE(PathExists(root + "/tmp/busy-only.work"));
  EXPECT_TRUE(PathExists(root + "/vms/vm-busy"));
}

// qemu resolves a relative backing file against the overlay's directory, so
// a relative root (regdisk prepare --root state) must become absolute.
TEST_F(NodeCacheTest, ARelativeRootGivesOverlaysThatOpen) {
  PutDisk("v1", 'a');
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_.path());
  CacheOptions o;
  o.root = "relative-root";
  auto cache = NodeCache::Open(o);
  fs::current_path(cwd);
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  EXPECT_EQ((*cache)->root(), dir_.path() + "/relative-root");
  auto lease = (*cache)->Prepare({"vm-r", "example.com/x:v1", "", {}}, Opener());
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  EXPECT_EQ(lease->base_file, dir_.path() + "/relative-root/disks/" + lease->disk_key + "/disk");
}

TEST_F(NodeCacheTest, ADigestStaysPinnedForTheVmsLife) {
  oci::RawManifest one = PutDisk("stable", '1');
  auto first = Prepare("vm-p", "example.com/x:stable");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->manifest, one.descriptor.digest);
  oci::RawManifest two = PutDisk("stable", '2');  // the tag moves
  ASSERT_TRUE(cache_->Release("vm-p").ok());
  auto restarted_ifnp = Prepare("vm-q", "example.com/x:stable");  // IfNotPresent: the cached tag
  EXPECT_EQ(restarted_ifnp->manifest, one.descriptor.digest);
  auto always = Prepare("vm-r", "example.com/x:stable", "", PullPolicy::kAlways);
  EXPECT_EQ(always->manifest, two.descriptor.digest);
  // vm-q keeps its digest on a second prepare even though the tag moved.
  auto again = Prepare("vm-q", "example.com/x:stable", "", PullPolicy::kAlways);
  EXPECT_EQ(again->manifest, one.descriptor.digest);
}

TEST_F(NodeCacheTest, PathPicksOneOfSeveralDisks) {
  auto m = forge::PutImage(*source_, {{forge::MakeTar({{"disk/a.img", TarEntry::Type::kFile, DiskBytes('a')},
                                                        {"disk/b.img", TarEntry::Type::kFile, DiskBytes('b')}})}},
                           "two");
  ASSERT_TRUE(m.ok());
  auto none = Prepare("vm-1", "example.com/x:two");
  EXPECT_NE(none.status().message().find("2 files in /disk"), std::string::npos) << none.status().message();
  auto b = Prepare("vm-2", "example.com/x:two", "/disk/b.img");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(FileHash(b->base_file), Sha256::HexOf(DiskBytes('b')));
  for (const char* bad : {"disk/b.img", "/disk/../etc/passwd", "/disk/", "/disk", "/disk//b.img", "/x/./y", "/"}) {
    EXPECT_EQ(Prepare("vm-3", "example.com/x:two", bad).status().code(), Code::kInvalidArgument) << bad;
  }
  // A path outside /disk is looked up as it is: this image has none.
  EXPECT_EQ(Prepare("vm-3", "example.com/x:two", "/etc/shadow").status().message(),
            "example.com/x:two: the image has no file \"/etc/shadow\"");
}

// containerDisk.path may name any file in the image (KubeVirt's own tests
// use /custom-disk/downloaded): only that file is taken, under the rules of
// /disk; symlinks on its way are refused and whiteouts of it apply.
TEST_F(NodeCacheTest, PathOutsideDiskTakesThatFileOnly) {
  std::string data = DiskBytes('c');
  auto m = forge::PutImage(*source_,
                           {{forge::MakeTar({{"custom-disk", TarEntry::Type::kDir},
                                             {"custom-disk/downloaded", TarEntry::Type::kFile, data},
                                             {"custom-disk/other", TarEntry::Type::kFile, DiskBytes('o')},
                                             {"etc/passwd", TarEntry::Type::kFile, "root:x:0:0"}})}},
                           "custom");
  ASSERT_TRUE(m.ok());
  auto l = Prepare("vm-c", "example.com/x:custom", "/custom-disk/downloaded");
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(l->path_in_image, "/custom-disk/downloaded");
  EXPECT_EQ(FileHash(l->base_file), Sha256::HexOf(data));
  EXPECT_TRUE(CheckDiskReadable(*source_, m->descriptor.digest, "/custom-disk/downloaded", {}).ok());
  // The default still means the one file in /disk, which this image lacks.
  EXPECT_EQ(Prepare("vm-d", "example.com/x:custom").status().code(), Code::kNotFound);

  struct Case {
    std::string tag, want;
    std::vector<TarEntry> upper;  // a second layer over the first
  };
  for (const Case& c : {Case{"symlinked-dir", "symlink to \"/etc\": refused on the disk's path",
                             {{"custom-disk", TarEntry::Type::kSymlink, "", "/etc"}}},
                        Case{"symlinked-file", "symlink to \"/etc/shadow\": refused on the disk's path",
                             {{"custom-disk/downloaded", TarEntry::Type::kSymlink, "", "/etc/shadow"}}},
                        Case{"hardlinked", "is a hardlink to \"etc/passwd\": refused for the disk",
                             {{"custom-disk/downloaded", TarEntry::Type::kHardlink, "", "etc/passwd"}}},
                        Case{"whiteout", "the image has no file \"/custom-disk/downloaded\"",
                             {{"custom-disk/.wh.downloaded", TarEntry::Type::kFile, ""}}},
                        Case{"dir-whiteout", "the image has no file \"/custom-disk/downloaded\"",
                             {{".wh.custom-disk", TarEntry::Type::kFile, ""}}},
                        Case{"opaque", "the image has no file \"/custom-disk/downloaded\"",
                             {{"custom-disk/.wh..wh..opq", TarEntry::Type::kFile, ""}}}}) {
    auto bad = forge::PutImage(*source_,
                               {{forge::MakeTar({{"custom-disk/downloaded", TarEntry::Type::kFile, data},
                                                 {"etc/passwd", TarEntry::Type::kFile, "root:x:0:0"}})},
                                {forge::MakeTar(c.upper)}},
                               c.tag);
    ASSERT_TRUE(bad.ok());
    auto r = Prepare("vm-" + c.tag, "example.com/x:" + c.tag, "/custom-disk/downloaded");
    ASSERT_FALSE(r.ok()) << c.tag;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << c.tag << ": " << r.status().message();
  }
  // A whiteout of /disk leaves the other file alone.
  auto kept = forge::PutImage(*source_,
                              {{forge::MakeTar({{"custom-disk/downloaded", TarEntry::Type::kFile, data},
                                                {"disk/a.img", TarEntry::Type::kFile, DiskBytes('a')}})},
                               {forge::MakeTar({{".wh.disk", TarEntry::Type::kFile, ""}})}},
                              "kept");
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(Prepare("vm-k", "example.com/x:kept", "/custom-disk/downloaded").ok());
  EXPECT_EQ(Prepare("vm-k2", "example.com/x:kept", "/disk/a.img").status().code(), Code::kNotFound);
}

TEST_F(NodeCacheTest, LaterLayersAndWhiteoutsApply) {
  auto m = forge::PutImage(
      *source_,
      {{forge::MakeTar({{"disk/old.img", TarEntry::Type::kFile, DiskBytes('o')}})},
       {forge::MakeTar({{"disk/.wh.old.img", TarEntry::Type::kFile, ""},
                        {"disk/new.img", TarEntry::Type::kFile, DiskBytes('n')}}),
        forge::Compression::kZstd},
       {forge::MakeTar({{"etc/other", TarEntry::Type::kFile, "ignored"}}), forge::Compression::kNone}},
      "layers");
  ASSERT_TRUE(m.ok());
  auto l = Prepare("vm-l", "example.com/x:layers");
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(l->path_in_image, "/disk/new.img");
  EXPECT_EQ(FileHash(l->base_file), Sha256::HexOf(DiskBytes('n')));
}

// A disk qemu (UID 107) cannot read is refused by prepare, leaving nothing,
// and by CheckDiskReadable (render pod's check); a later layer's header is
// the one that counts.
TEST_F(NodeCacheTest, DiskUid107CannotReadIsRefused) {
  struct Case {
    int uid, gid, mode;
    bool readable;
  };
  for (const Case& c : {Case{0, 0, 0440, false}, Case{0, 0, 0600, false}, Case{107, 0, 0200, false},
                        Case{0, 107, 0400, false}, Case{107, 0, 0400, true}, Case{0, 107, 0040, true},
                        Case{0, 0, 0444, true}}) {
    std::string tag = "o" + std::to_string(c.uid) + "-" + std::to_string(c.gid) + "-" + std::to_string(c.mode);
    TarEntry disk{"disk/disk.img", TarEntry::Type::kFile, DiskBytes('u'), "", c.mode, c.uid, c.gid};
    auto m = forge::PutImage(*source_, {{forge::MakeTar({{"disk", TarEntry::Type::kDir}, disk})}}, tag);
    ASSERT_TRUE(m.ok());
    Status check = CheckDiskReadable(*source_, m->descriptor.digest, "", {});
    auto lease = Prepare("vm-" + tag, "example.com/x:" + tag);
    if (c.readable) {
      EXPECT_TRUE(check.ok()) << tag << ": " << check.message();
      EXPECT_TRUE(lease.ok()) << tag << ": " << lease.status().message();
      ASSERT_TRUE(cache_->Release("vm-" + tag).ok());
      ASSERT_TRUE(cache_->Gc(0).ok());
    } else {
      EXPECT_EQ(check.code(), Code::kInvalidArgument) << tag;
      EXPECT_NE(check.message().find("qemu (UID 107) cannot read it"), std::string::npos) << check.message();
      ASSERT_FALSE(lease.ok()) << tag;
      EXPECT_EQ(lease.status().message(), "example.com/x:" + tag + ": " + check.message());
      ExpectCacheEmpty();
    }
  }
  auto m = forge::PutImage(*source_,
                           {{forge::MakeTar({{"disk/disk.img", TarEntry::Type::kFile, DiskBytes('a'), "", 0444}})},
                            {forge::MakeTar({{"disk/disk.img", TarEntry::Type::kFile, DiskBytes('b'), "", 0400, 0, 0}})}},
                           "later");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(CheckDiskReadable(*source_, m->descriptor.digest, "/disk/disk.img", {}).message(),
            "/disk/disk.img is owned by 0:0 with mode 0400: qemu (UID 107) cannot read it; "
            "add it with --chown=107:107 or make it world-readable (0444)");
}

TEST_F(NodeCacheTest, InvalidVmNamesAreRefused) {
  for (const char* bad : {"", "..", "a/b", "UPPER", "x y"}) {
    EXPECT_EQ(Prepare(bad, "example.com/x:1").status().code(), Code::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace regdisk::cache
