#include "layout/layout.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "oci/copy.h"
#include "oci/media_types.h"
#include "util/fs.h"

namespace regdisk::layout {
namespace {

namespace fs = std::filesystem;

int CountFiles(const std::string& dir) {
  int n = 0;
  for (auto& e : fs::directory_iterator(dir)) (void)e, ++n;
  return n;
}

// A one-layer image written into `store`, untagged.
oci::RawManifest PutImage(oci::Store& store, const std::string& layer_bytes) {
  auto layer = oci::WriteBlob(store, layer_bytes, oci::media::kOciLayerTar);
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.diff_ids = {layer->digest};
  auto cfg = oci::WriteBlob(store, oci::EncodeImageConfig(config), oci::media::kOciConfig);
  oci::Manifest m;
  m.media_type = oci::media::kOciManifest;
  m.config = *cfg;
  m.layers = {*layer};
  auto man = oci::PutManifest(store, m, "");
  EXPECT_TRUE(man.ok()) << man.status().message();
  return *man;
}

// A store seen through a counter of manifest and blob reads.
class CountingStore : public oci::Store {
 public:
  explicit CountingStore(oci::Store& inner) : inner_(inner) {}
  oci::StoreId id() const override { return inner_.id(); }
  StatusOr<bool> HasBlob(const oci::Digest& d) override { return inner_.HasBlob(d); }
  StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest& d) override {
    ++blob_reads;
    return inner_.OpenBlob(d);
  }
  StatusOr<std::unique_ptr<oci::BlobWriter>> CreateBlob() override { return inner_.CreateBlob(); }
  Status DeleteBlob(const oci::Digest& d) override { return inner_.DeleteBlob(d); }
  StatusOr<oci::RawManifest> GetManifest(const std::string& ref) override {
    ++manifest_reads;
    return inner_.GetManifest(ref);
  }
  Status PutManifest(const oci::RawManifest& m, const std::string& tag) override {
    ++manifest_writes;
    return inner_.PutManifest(m, tag);
  }
  StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> ListTags() override { return inner_.ListTags(); }
  int blob_reads = 0, manifest_reads = 0, manifest_writes = 0;

 private:
  oci::Store& inner_;
};

// `levels` indexes above `leaf`, each listing its child `n` times; the top
// one is tagged `tag`.
oci::RawManifest PutRepeatedIndex(Layout& store, const oci::RawManifest& leaf, int levels, int n,
                                  const std::string& tag) {
  oci::Descriptor child = leaf.descriptor;
  oci::RawManifest raw = leaf;
  for (int level = 0; level < levels; ++level) {
    child.platform = oci::Platform{.architecture = "amd64", .os = "linux"};
    oci::Index index;
    index.media_type = oci::media::kOciIndex;
    index.manifests.assign(n, child);
    raw.bytes = oci::EncodeIndex(index);
    raw.descriptor = {.media_type = oci::media::kOciIndex, .digest = oci::Digest::Of(raw.bytes),
                      .size = raw.bytes.size()};
    EXPECT_TRUE(store.PutManifest(raw, level + 1 == levels ? tag : "").ok());
    child = raw.descriptor;
  }
  return raw;
}

TEST(Layout, CreatesSpecLayout) {
  TempDir dir;
  auto l = Layout::Open(dir.path() + "/s", true);
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(*ReadFile(dir.path() + "/s/oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
  EXPECT_TRUE(fs::is_directory(dir.path() + "/s/blobs/sha256"));
  EXPECT_TRUE(PathExists(dir.path() + "/s/index.json"));
  EXPECT_EQ(Layout::Open(dir.path() + "/missing", false).status().code(), Code::kNotFound);
}

TEST(Layout, BlobWriteVerifiesDigest) {
  TempDir dir;
  auto l = *Layout::Open(dir.path(), true);
  auto w = *l->CreateBlob();
  ASSERT_TRUE(w->Write("hello", 5).ok());
  auto bad = w->Commit("x", oci::Digest::Of("other"));
  EXPECT_EQ(bad.status().code(), Code::kCorrupt);
  EXPECT_EQ(CountFiles(dir.path() + "/blobs/sha256"), 0);
  EXPECT_EQ(CountFiles(dir.path() + "/.regdisk-tmp"), 0) << "temp file left behind";

  auto good = oci::WriteBlob(*l, "hello", "x");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->digest, oci::Digest::Of("hello"));
  EXPECT_EQ(*oci::ReadBlob(*l, good->digest), "hello");
}

TEST(Layout, AbandonedWriterLeavesNothing) {
  TempDir dir;
  auto l = *Layout::Open(dir.path(), true);
  {
    auto w = *l->CreateBlob();
    ASSERT_TRUE(w->Write("partial", 7).ok());
  }
  EXPECT_EQ(CountFiles(dir.path() + "/blobs/sha256"), 0);
  EXPECT_EQ(CountFiles(dir.path() + "/.regdisk-tmp"), 0);
}

TEST(Layout, TagResolveUntag) {
  TempDir dir;
  auto l = *Layout::Open(dir.path(), true);
  oci::RawManifest a = PutImage(*l, "a");
  oci::RawManifest b = PutImage(*l, "b");
  ASSERT_TRUE(l->PutManifest(a, "v1").ok());
  ASSERT_TRUE(l->PutManifest(b, "v1").ok());  // moves the tag
  ASSERT_TRUE(l->PutManifest(a, "v2").ok());
  EXPECT_EQ(l->GetManifest("v1")->descriptor.digest, b.descriptor.digest);
  EXPECT_EQ(l->GetManifest("v2")->descriptor.digest, a.descriptor.digest);
  EXPECT_EQ(l->ListTags()->size(), 2u);
  ASSERT_TRUE(l->Untag("v2").ok());
  EXPECT_EQ(l->GetManifest("v2").status().code(), Code::kNotFound);
  EXPECT_EQ(l->Untag("v2").code(), Code::kNotFound);
}

// Tagging a manifest with the tag it already has writes nothing (a node
// re-tags on every prepare); a moved tag writes index.json anew.
TEST(Layout, RetaggingTheSameManifestLeavesTheIndexAlone) {
  TempDir dir;
  auto l = *Layout::Open(dir.path(), true);
  oci::RawManifest a = PutImage(*l, "a");
  oci::RawManifest b = PutImage(*l, "b");
  auto inode = [&] {
    struct stat st {};
    EXPECT_EQ(::stat((dir.path() + "/index.json").c_str(), &st), 0);
    return st.st_ino;
  };
  ASSERT_TRUE(l->PutManifest(a, "v1").ok());
  ino_t first = inode();
  ASSERT_TRUE(l->PutManifest(a, "v1").ok());
  EXPECT_EQ(inode(), first);
  ASSERT_TRUE(l->PutManifest(b, "v1").ok());
  EXPECT_NE(inode(), first);
  EXPECT_EQ(l->GetManifest("v1")->descriptor.digest, b.descriptor.digest);
  EXPECT_EQ(l->ListTags()->size(), 1u);
}

TEST(Layout, ConcurrentTagsAreNotLost) {
  TempDir dir;
  auto l = *Layout::Open(dir.path(), true);
  oci::RawManifest a = PutImage(*l, "a");
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto mine = *Layout::Open(dir.path(), false);
      for (int i = 0; i < 10; ++i) EXPECT_TRUE(mine->PutManifest(a, "t" + std::to_string(t * 10 + i)).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(l->ListTags()->size(), 80u);
}

TEST(Layout, GcKeepsReferencedRemovesTheRest) {
  TempDir dir;
  auto l = *Layout::Open(dir.path(), true);
  oci::RawManifest a = PutImage(*l, "a");
  oci::RawManifest b = PutImage(*l, "b");
  ASSERT_TRUE(l->PutManifest(a, "a").ok());
  ASSERT_TRUE(l->PutManifest(b, "b").ok());
  ASSERT_TRUE(l->Untag("b").ok());
  auto r = l->Gc();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->removed, 3);  // b's layer, config and manifest
  EXPECT_EQ(CountFiles(dir.path() + "/blobs/sha256"), 3);
  EXPECT_TRUE(*l->HasBlob(a.descriptor.digest));
  EXPECT_FALSE(*l->HasBlob(b.descriptor.digest));
}

TEST(Copy, CopiesImageBetweenLayoutsAndSkipsPresentBlobs) {
  TempDir dir;
  auto src = *Layout::Open(dir.path() + "/src", true);
  auto dst = *Layout::Open(dir.path() + "/dst", true);
  oci::RawManifest a = PutImage(*src, "layer-bytes");
  int copied = 0;
  oci::CopyOptions opts;
  opts.on_blob = [&](const oci::Descriptor&) { ++copied; };
  ASSERT_TRUE(oci::CopyImage(*src, a.descriptor.digest.str(), *dst, "x", opts).ok());
  EXPECT_EQ(copied, 2);  // layer and config; the manifest is not a blob copy
  EXPECT_EQ(dst->GetManifest("x")->descriptor.digest, a.descriptor.digest);
  copied = 0;
  ASSERT_TRUE(oci::CopyImage(*src, a.descriptor.digest.str(), *dst, "y", opts).ok());
  EXPECT_EQ(copied, 0);
}

TEST(Copy, RefusesCorruptSourceBlobAndSetsNoTag) {
  TempDir dir;
  auto src = *Layout::Open(dir.path() + "/src", true);
  auto dst = *Layout::Open(dir.path() + "/dst", true);
  oci::RawManifest a = PutImage(*src, "layer-bytes");
  // Flip the layer's bytes in the source store (same length).
  auto layer = oci::Digest::Of("layer-bytes");
  fs::permissions(src->BlobPath(layer), fs::perms::owner_write, fs::perm_options::add);
  ASSERT_TRUE(WriteFileAtomic(src->BlobPath(layer), "LAYER-BYTES").ok());
  Status s = oci::CopyImage(*src, a.descriptor.digest.str(), *dst, "x").status();
  EXPECT_EQ(s.code(), Code::kCorrupt) << s.message();
  EXPECT_FALSE(dst->GetManifest("x").ok());
  EXPECT_FALSE(*dst->HasBlob(layer));
}

TEST(Copy, FetchesAndWritesEachDistinctManifestAndBlobOnce) {
  TempDir dir;
  auto src = *Layout::Open(dir.path() + "/src", true);
  auto dst = *Layout::Open(dir.path() + "/dst", true);
  PutRepeatedIndex(*src, PutImage(*src, "layer"), 4, 20, "amp");  // 160,000 paths
  CountingStore counted_src(*src), counted_dst(*dst);
  ASSERT_TRUE(oci::CopyImage(counted_src, "amp", counted_dst, "amp").ok());
  EXPECT_EQ(counted_src.manifest_reads, 5);  // the root by tag, 3 indexes and the image by digest
  EXPECT_EQ(counted_src.blob_reads, 2);      // layer and config
  EXPECT_EQ(counted_dst.manifest_writes, 5);
}

TEST(Copy, RefusesMoreManifestsThanTheLimit) {
  TempDir dir;
  auto src = *Layout::Open(dir.path() + "/src", true);
  auto dst = *Layout::Open(dir.path() + "/dst", true);
  oci::Index index;
  index.media_type = oci::media::kOciIndex;
  oci::RawManifest image = PutImage(*src, "layer");
  oci::Manifest m = *oci::ParseManifest(image.bytes);
  for (size_t i = 0; i <= oci::kMaxManifestsPerOperation; ++i) {
    m.annotations["n"] = std::to_string(i);
    index.manifests.push_back(oci::PutManifest(*src, m, "")->descriptor);
  }
  ASSERT_TRUE(src->PutManifest({.descriptor = {.media_type = oci::media::kOciIndex,
                                               .digest = oci::Digest::Of(oci::EncodeIndex(index)),
                                               .size = oci::EncodeIndex(index).size()},
                                .bytes = oci::EncodeIndex(index)},
                               "many")
                  .ok());
  Status s = oci::CopyImage(*src, "many", *dst, "many").status();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("more than 256 distinct manifests"), std::string::npos) << s.message();
  EXPECT_FALSE(dst->GetManifest("many").ok());
  EXPECT_EQ(CountFiles(dir.path() + "/dst/blobs/sha256"), 0) << "refused before anything is written";
}

TEST(Copy, PlatformSelectionReadsOnlyItsPath) {
  TempDir dir;
  auto src = *Layout::Open(dir.path(), true);
  oci::RawManifest image = PutImage(*src, "layer");
  oci::RawManifest root = PutRepeatedIndex(*src, image, 4, 20, "amp");
  CountingStore counted(*src);
  auto got = oci::SelectManifest(counted, root, oci::Platform{.architecture = "amd64", .os = "linux"});
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->descriptor.digest, image.descriptor.digest);
  EXPECT_EQ(counted.manifest_reads, 4);
  auto arm = oci::SelectManifest(*src, root, oci::Platform{.architecture = "arm64", .os = "linux"});
  EXPECT_EQ(arm.status().code(), Code::kNotFound);
  oci::RawManifest deep = PutRepeatedIndex(*src, image, 5, 1, "deep");
  auto too_deep = oci::SelectManifest(*src, deep, oci::Platform{.architecture = "amd64", .os = "linux"});
  EXPECT_NE(too_deep.status().message().find("deeper than 4"), std::string::npos) << too_deep.status().message();
}

// A source whose reader claims the descriptor's size but serves more: the
// verifying reader hands out exactly the declared bytes and then fails.
TEST(Copy, BlobLongerThanItsDescriptorStopsAtItsSize) {
  class Lying : public CountingStore {
   public:
    using CountingStore::CountingStore;
    StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest& d) override {
      ASSIGN_OR_RETURN(auto inner, CountingStore::OpenBlob(d));
      struct Reader : oci::BlobReader {
        std::unique_ptr<oci::BlobReader> inner;
        uint64_t claimed = 0;
        StatusOr<size_t> Read(void* buf, size_t len) override { return inner->Read(buf, len); }
        uint64_t size() const override { return claimed; }
      };
      auto r = std::make_unique<Reader>();
      r->inner = std::move(inner);
      r->claimed = 1000;
      return std::unique_ptr<oci::BlobReader>(std::move(r));
    }
  };
  TempDir dir;
  auto src = *Layout::Open(dir.path() + "/src", true);
  auto dst = *Layout::Open(dir.path() + "/dst", true);
  std::string bytes(4000, 'x');
  oci::Descriptor desc = *oci::WriteBlob(*src, bytes, oci::media::kOciLayerTar);
  desc.size = 1000;
  Lying lying(*src);
  auto reader = oci::OpenBlob(lying, desc);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  std::vector<char> buf(1 << 20);
  uint64_t got = 0;
  StatusOr<size_t> n = size_t{0};
  while ((n = (*reader)->Read(buf.data(), buf.size())).ok() && *n > 0) got += *n;
  ASSERT_FALSE(n.ok()) << "must not end cleanly";
  Status end = n.status();
  EXPECT_EQ(got, 1000u);
  EXPECT_EQ(end.code(), Code::kCorrupt);
  EXPECT_NE(end.message().find("longer than its descriptor's 1000 bytes"), std::string::npos) << end.message();
  Status s = oci::CopyBlob(lying, desc, *dst);
  EXPECT_EQ(s.code(), Code::kCorrupt) << s.message();
  EXPECT_FALSE(*dst->HasBlob(desc.digest));
  EXPECT_EQ(CountFiles(dir.path() + "/dst/.regdisk-tmp"), 0);
  // Without the lie: refused before the first byte.
  auto honest = oci::OpenBlob(*src, desc);
  EXPECT_NE(honest.status().message().find("has size 4000 at the source, but its descriptor says 1000"),
            std::string::npos)
      << honest.status().message();
}

// A source reader that checks a digest itself spares the bounded reader a
// second hash, but only for the descriptor's own digest: one that checks
// some other digest (here: the bytes it really serves) is hashed again.
TEST(Copy, ReaderCheckingAnotherDigestIsHashedAgain) {
  class Swapping : public CountingStore {
   public:
    Swapping(oci::Store& inner, oci::Digest served) : CountingStore(inner), served_(served) {}
    StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest&) override {
      ASSIGN_OR_RETURN(auto inner, CountingStore::OpenBlob(served_));
      struct Reader : oci::BlobReader {
        std::unique_ptr<oci::BlobReader> inner;
        oci::Digest checks;
        StatusOr<size_t> Read(void* buf, size_t len) override { return inner->Read(buf, len); }
        uint64_t size() const override { return inner->size(); }
        std::optional<oci::Digest> verifies() const override { return checks; }
      };
      auto r = std::make_unique<Reader>();
      r->inner = std::move(inner);
      r->checks = served_;
      return std::unique_ptr<oci::BlobReader>(std::move(r));
    }

   private:
    oci::Digest served_;
  };
  TempDir dir;
  auto src = *Layout::Open(dir.path() + "/src", true);
  oci::Descriptor wanted = *oci::WriteBlob(*src, std::string(4000, 'x'), oci::media::kOciLayerTar);
  oci::Descriptor other = *oci::WriteBlob(*src, std::string(4000, 'y'), oci::media::kOciLayerTar);
  Swapping swapping(*src, other.digest);
  auto reader = oci::OpenBlob(swapping, wanted);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  EXPECT_EQ((*reader)->verifies(), wanted.digest);
  std::vector<char> buf(1 << 20);
  StatusOr<size_t> n = size_t{0};
  while ((n = (*reader)->Read(buf.data(), buf.size())).ok() && *n > 0) {
  }
  ASSERT_FALSE(n.ok()) << "the swapped bytes must not pass";
  EXPECT_EQ(n.status().code(), Code::kCorrupt);
  EXPECT_NE(n.status().message().find("does not match its digest"), std::string::npos) << n.status().message();
}

void Age(const std::string& dir) {
  for (auto& e : fs::directory_iterator(dir)) {
    struct timespec old[2] = {{::time(nullptr) - 600, 0}, {::time(nullptr) - 600, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, e.path().c_str(), old, 0), 0);
  }
}

// A pull killed with SIGKILL leaves its temp blob; the next Open (and Gc)
// removes it once it is past the grace period, while the temp file of a
// live writer stays whatever its age.
TEST(Layout, TempBlobOfAKilledWriterIsRemoved) {
  TempDir dir;
  std::string tmp = dir.path() + "/.regdisk-tmp";
  ASSERT_TRUE(Layout::Open(dir.path(), true).ok());
  pid_t child = ::fork();
  if (child == 0) {
    auto l = Layout::Open(dir.path(), false);
    auto w = (*l)->CreateBlob();
    (void)(*w)->Write("partial", 7);
    ::raise(SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(CountFiles(tmp), 1);
  ASSERT_TRUE(Layout::Open(dir.path(), false).ok());
  EXPECT_EQ(CountFiles(tmp), 1) << "removed within the grace period";
  Age(tmp);
  auto l = *Layout::Open(dir.path(), false);
  EXPECT_EQ(CountFiles(tmp), 0);

  // A live writer: aged, yet neither Open nor Gc touches its file.
  auto live = *l->CreateBlob();
  ASSERT_TRUE(live->Write("live", 4).ok());
  Age(tmp);
  ASSERT_TRUE(Layout::Open(dir.path(), false).ok());
  ASSERT_TRUE(l->Gc().ok());
  EXPECT_EQ(CountFiles(tmp), 1);
  ASSERT_TRUE(live->Commit("x", oci::Digest::Of("live")).ok());
  EXPECT_EQ(CountFiles(tmp), 0);

  // Gc removes a dead writer's file as Open does.
  pid_t second = ::fork();
  if (second == 0) {
    auto w = l->CreateBlob();
    (void)(*w)->Write("partial", 7);
    ::raise(SIGKILL);
  }
  ASSERT_EQ(::waitpid(second, &status, 0), second);
  Age(tmp);
  auto gc = l->Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(CountFiles(tmp), 0);
}

}  // namespace
}  // namespace regdisk::layout
