#include "layout/layout.h"

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

}  // namespace
}  // namespace regdisk::layout
