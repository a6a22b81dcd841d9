// DiskExtractor against layers written by LayerWriter (the round trip the
// node runtime depends on). Hostile layers are covered by the malicious
// image suite (tests/support/malicious.cc) in the cache's tests.
#include "layer/disk_extractor.h"

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "layer/decompressor.h"
#include "layer/layer_writer.h"
#include "layer/memory_blob_test_util.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::layer {
namespace {

TEST(DiskExtractor, RoundTripsSparseDisksThroughEveryCompression) {
  TempDir dir;
  std::string src = dir.path() + "/disk.raw";
  {
    int fd = ::open(src.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_EQ(::ftruncate(fd, 256 << 20), 0);
    std::string data(1 << 20, 'z');
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 100 << 20), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  std::string want = Sha256::HexOf(*ReadFile(src, 1 << 30));
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    SCOPED_TRACE(CompressionName(c));
    std::string blob;
    LayerOptions o;
    o.compression = c;
    LayerWriter w(std::make_unique<MemoryBlob>(&blob), o);
    ASSERT_TRUE(w.AddDirectory("disk", {0, 0, 0755}).ok());
    ASSERT_TRUE(w.AddFile("disk/disk.raw", src, {107, 107, 0440}, true).ok());
    auto r = w.Finish();
    ASSERT_TRUE(r.ok()) << r.status().message();

    MemoryBlob reader(&blob);
    DiskExtractor ex(dir.path(), {});
    Status s = ex.AddLayer(reader, r->descriptor, r->diff_id);
    ASSERT_TRUE(s.ok()) << s.message();
    auto taken = ex.Take("");
    ASSERT_TRUE(taken.ok()) << taken.status().message();
    EXPECT_EQ(taken->name, "disk.raw");
    EXPECT_EQ(Sha256::HexOf(*ReadFile(taken->file, 1 << 30)), want);
    struct stat st;
    ASSERT_EQ(::stat(taken->file.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 256 << 20);
    EXPECT_LT(st.st_blocks * 512, 8 << 20) << "extracted disk is not sparse";
    ::unlink(taken->file.c_str());
  }
}

// A blob damaged on the way breaks its gzip stream long before its digest
// is checked: the error names the cause (the digest), not the symptom.
TEST(DiskExtractor, DamagedBlobIsReportedAsADigestMismatch) {
  TempDir dir;
  std::string src = dir.path() + "/disk.raw";
  std::string data;
  for (uint32_t x = 1; data.size() < (1 << 20);) {
    x = x * 1664525u + 1013904223u;
    data.append(reinterpret_cast<const char*>(&x), sizeof x);
  }
  ASSERT_TRUE(WriteFileAtomic(src, data).ok());
  std::string blob;
  LayerOptions o;
  o.compression = Compression::kGzip;
  LayerWriter w(std::make_unique<MemoryBlob>(&blob), o);
  ASSERT_TRUE(w.AddFile("disk/disk.raw", src, {107, 107, 0440}, true).ok());
  auto r = w.Finish();
  ASSERT_TRUE(r.ok()) << r.status().message();
  blob[blob.size() / 3] ^= 1;
  MemoryBlob reader(&blob);
  DiskExtractor ex(dir.path(), {});
  Status s = ex.AddLayer(reader, r->descriptor, r->diff_id);
  EXPECT_EQ(s.code(), Code::kCorrupt);
  EXPECT_NE(s.message().find("does not match its digest"), std::string::npos) << s.message();
  EXPECT_FALSE(ex.Take("").ok()) << "a damaged layer left a disk";
}

TEST(DiskExtractor, UnknownMediaTypeIsRefused) {
  EXPECT_FALSE(CodecForMediaType("application/vnd.oci.image.layer.v1.tar+lz4").ok());
  EXPECT_EQ(*CodecForMediaType("application/vnd.docker.image.rootfs.diff.tar.gzip"), Codec::kGzip);
}

}  // namespace
}  // namespace regdisk::layer
