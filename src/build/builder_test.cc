#include "build/builder.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "layer/disk_index.h"
#include "layer/index_verifier.h"
#include "layout/layout.h"
#include "oci/media_types.h"
#include "util/fs.h"

namespace regdisk::build {
namespace {

namespace fs = std::filesystem;

// A Store decorator whose Nth blob commit fails, to prove that a build
// failing half way removes what it wrote.
class FailingStore : public oci::Store {
 public:
  FailingStore(oci::Store& inner, int fail_at) : inner_(inner), fail_at_(fail_at) {}
  oci::StoreId id() const override { return {"failing", ""}; }
  StatusOr<bool> HasBlob(const oci::Digest& d) override { return inner_.HasBlob(d); }
  StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest& d) override { return inner_.OpenBlob(d); }
  Status DeleteBlob(const oci::Digest& d) override { return inner_.DeleteBlob(d); }
  StatusOr<std::unique_ptr<oci::BlobWriter>> CreateBlob() override {
    if (++count_ == fail_at_) return Status(Code::kIo, "injected failure");
    return inner_.CreateBlob();
  }
  StatusOr<oci::RawManifest> GetManifest(const std::string& r) override { return inner_.GetManifest(r); }
  Status PutManifest(const oci::RawManifest& m, const std::string& t) override {
    if (++count_ == fail_at_) return Status(Code::kIo, "injected failure");
    return inner_.PutManifest(m, t);
  }
  StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> ListTags() override { return inner_.ListTags(); }

 private:
  oci::Store& inner_;
  int fail_at_, count_ = 0;
};

class BuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *layout::Layout::Open(dir_.path() + "/store", true);
    for (const char* name : {"a.img", "b.img"}) {
      std::string data(1 << 20, name[0]);
      ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/" + name, data).ok());
    }
  }
  BuildOptions TwoDisks() {
    BuildOptions o;
    o.platform = {"amd64", "linux", ""};
    o.disks = {{dir_.path() + "/a.img", "a.img", {}}, {dir_.path() + "/b.img", "b.img", {}}};
    return o;
  }
  int Blobs() {
    int n = 0;
    for (auto& e : fs::directory_iterator(dir_.path() + "/store/blobs/sha256")) (void)e, ++n;
    return n;
  }
  TempDir dir_;
  std::unique_ptr<layout::Layout> store_;
};

TEST_F(BuilderTest, SameInputsSameDigest) {
  auto a = BuildImage(*store_, TwoDisks(), std::nullopt, "t");
  ASSERT_TRUE(a.ok()) << a.status().message();
  auto b = BuildImage(*store_, TwoDisks(), std::nullopt, "t");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->manifest.digest, b->manifest.digest);
  ASSERT_EQ(a->disks.size(), 2u);
  EXPECT_EQ(a->disks[1].path_in_image, "/disk/b.img");
  EXPECT_EQ(a->disks[1].info.virtual_size, 1u << 20);
  EXPECT_EQ(Blobs(), 4);  // two layers, config, manifest
}

TEST_F(BuilderTest, RecordsDiskAnnotations) {
  BuildOptions o = TwoDisks();
  o.disks.pop_back();
  auto r = BuildImage(*store_, o, std::nullopt, "t");
  ASSERT_TRUE(r.ok());
  auto m = oci::ParseManifest(store_->GetManifest("t")->bytes);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->annotations[oci::annotation::kDiskPath], "/disk/a.img");
  EXPECT_EQ(m->annotations[oci::annotation::kDiskFormat], "raw");
  EXPECT_EQ(m->annotations[oci::annotation::kDiskVirtualSize], "1048576");
  EXPECT_EQ(m->layers[0].annotations[oci::annotation::kDiskFormat], "raw");
  auto c = oci::ParseImageConfig(*oci::ReadBlob(*store_, m->config.digest));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->diff_ids.size(), 1u);
  EXPECT_EQ(c->architecture, "amd64");
}

TEST_F(BuilderTest, FailureHalfWayLeavesNoBlob) {
  for (int fail_at = 1; fail_at <= 4; ++fail_at) {
    SCOPED_TRACE(fail_at);
    FailingStore failing(*store_, fail_at);
    auto r = BuildImage(failing, TwoDisks(), std::nullopt, "t");
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(Blobs(), 0);
  }
}

TEST_F(BuilderTest, FailureKeepsBlobsThatWereAlreadyThere) {
  ASSERT_TRUE(BuildImage(*store_, TwoDisks(), std::nullopt, "t").ok());
  FailingStore failing(*store_, 4);  // the manifest write fails
  BuildOptions o = TwoDisks();
  EXPECT_FALSE(BuildImage(failing, o, std::nullopt, "t").ok());
  EXPECT_EQ(Blobs(), 4);
}

TEST_F(BuilderTest, RefusesDuplicateAndBadNames) {
  BuildOptions o = TwoDisks();
  o.disks[1].name = "a.img";
  EXPECT_NE(BuildImage(*store_, o, std::nullopt, "t").status().message().find("two disks"), std::string::npos);
  o.disks[1].name = "../x";
  EXPECT_NE(BuildImage(*store_, o, std::nullopt, "t").status().message().find("invalid disk name"), std::string::npos);
  EXPECT_EQ(Blobs(), 0);
}

TEST_F(BuilderTest, StandardSelectsTheDiskLayout) {
  for (DiskStandard standard : {DiskStandard::kV2, DiskStandard::kV1alpha}) {
    SCOPED_TRACE(DiskStandardName(standard));
    BuildOptions o = TwoDisks();
    o.disks.pop_back();
    o.standard = standard;
    auto r = BuildImage(*store_, o, std::nullopt, "t");
    ASSERT_TRUE(r.ok()) << r.status().message();
    auto m = oci::ParseManifest(store_->GetManifest("t")->bytes);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->annotations[oci::annotation::kDiskStandard], DiskStandardName(standard));
    auto anchor = layer::ParseAnchor(m->layers[0]);
    ASSERT_TRUE(anchor.ok()) << anchor.status().message();
    ASSERT_EQ(anchor->has_value(), standard == DiskStandard::kV2);
    if (standard == DiskStandard::kV1alpha) continue;
    // The stored layer's index opens from the manifest's anchor and agrees
    // with its tar.
    auto blob = oci::ReadBlob(*store_, m->layers[0].digest, 64 << 20);
    ASSERT_TRUE(blob.ok());
    auto index = layer::OpenIndex(**anchor, layer::Codec::kGzip, blob->substr((*anchor)->offset, (*anchor)->length));
    ASSERT_TRUE(index.ok()) << index.status().message();
    EXPECT_EQ(index->disk_size, 1u << 20);
    EXPECT_EQ(index->chunk_size, layer::kDefaultChunkSize);
    auto reader = store_->OpenBlob(m->layers[0].digest);
    ASSERT_TRUE(reader.ok());
    Status v = layer::VerifyLayer(**reader, **anchor, *index);
    EXPECT_TRUE(v.ok()) << v.message();
  }
  EXPECT_EQ(*ParseDiskStandard("v2"), DiskStandard::kV2);
  EXPECT_FALSE(ParseDiskStandard("v3").ok());
}

TEST_F(BuilderTest, BuildTimestampHonoursSourceDateEpoch) {
  ::setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  EXPECT_EQ(BuildTimestamp(), "2023-11-14T22:13:20Z");
  ::unsetenv("SOURCE_DATE_EPOCH");
  EXPECT_EQ(BuildTimestamp(), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace regdisk::build
