// DiskExtractor's limits: the disk size (tar size, qcow2 virtual size), the
// free space, the number of disk files, and escaped, bounded names in its
// messages. Each refusal comes before the disk's bytes are written.
#include <sys/stat.h>

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "forge.h"
#include "layer/disk_extractor.h"
#include "oci/media_types.h"
#include "util/fs.h"

namespace regdisk::layer {
namespace {

using T = forge::TarEntry::Type;

// A blob held in memory.
class StringBlob : public oci::BlobReader {
 public:
  explicit StringBlob(std::string bytes) : bytes_(std::move(bytes)) {}
  StatusOr<size_t> Read(void* buf, size_t len) override {
    size_t n = std::min(len, bytes_.size() - pos_);
    std::memcpy(buf, bytes_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  uint64_t size() const override { return bytes_.size(); }

 private:
  std::string bytes_;
  size_t pos_ = 0;
};

// Extracts `blob` (of media type `type`, diff_id `diff_id`) with `limits`
// into a fresh directory; returns AddLayer's status, then Take("")'s.
struct Result {
  Status added, taken;
  uint64_t bytes_left = 0;  // allocated in the work dir after the extractor is gone
};
Result Extract(const std::string& blob, const std::string& type, const oci::Digest& diff_id, ExtractLimits limits) {
  TempDir dir;
  Result r;
  {
    DiskExtractor ex(dir.path(), limits);
    StringBlob reader(blob);
    r.added = ex.AddLayer(reader, {type, oci::Digest::Of(blob), blob.size(), {}, {}}, diff_id);
    auto taken = ex.Take("");
    r.taken = taken.status();
  }
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    struct stat st;
    if (::lstat(e.path().c_str(), &st) == 0) r.bytes_left += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return r;
}

Result ExtractTar(const std::vector<forge::TarEntry>& entries, ExtractLimits limits = {}) {
  std::string tar = forge::MakeTar(entries);
  return Extract(tar, oci::media::kOciLayerTar, oci::Digest::Of(tar), limits);
}

TEST(ExtractLimits, ADiskOverTheLimitIsRefusedFromItsTarHeader) {
  auto bomb = forge::ZstdZeroFileTar("disk/bomb.img", 64 << 20);
  ExtractLimits limits = ExtractLimits::ForMaxDiskSize(32 << 20);
  Result r = Extract(bomb.blob, oci::media::kOciLayerZstd, bomb.diff_id, limits);
  EXPECT_EQ(r.added.message().substr(r.added.message().find(": ") + 2),
            "\"disk/bomb.img\" is 67108864 bytes, over the disk size limit of 33554432 bytes (--max-disk-size)");
  EXPECT_EQ(r.bytes_left, 0u);
  // At the limit it passes, and the zeros stay holes.
  limits = ExtractLimits::ForMaxDiskSize(64 << 20);
  EXPECT_TRUE(Extract(bomb.blob, oci::media::kOciLayerZstd, bomb.diff_id, limits).added.ok());
}

TEST(ExtractLimits, TheDefaultIs64GiB) {
  EXPECT_EQ(ExtractLimits().max_disk_size, 64ull << 30);
  EXPECT_EQ(ExtractLimits::ForMaxDiskSize(1 << 20).max_layer_bytes, (1ull << 20) + kLayerExtraBytes);
}

TEST(ExtractLimits, AQcow2OverTheLimitIsRefusedFromItsFirstBytes) {
  std::string q(64 << 10, '\0');
  q.replace(0, 4, "QFI\xfb", 4);
  for (int i = 0; i < 8; ++i) q[24 + i] = static_cast<char>((1ull << 40) >> (56 - 8 * i));  // 1 TiB
  Result r = ExtractTar({{"disk/disk.qcow2", T::kFile, q}});
  EXPECT_NE(r.added.message().find("\"disk/disk.qcow2\" is a qcow2 of virtual size 1099511627776 bytes, over the "
                                   "disk size limit of 68719476736 bytes"),
            std::string::npos)
      << r.added.message();
  // A raw disk that merely starts like one, but too short to hold a size,
  // is not a qcow2 here (disk/ refuses it later).
  EXPECT_TRUE(ExtractTar({{"disk/disk.img", T::kFile, std::string("QFI\xfb", 4)}}).added.ok());
}

TEST(ExtractLimits, DataOverTheFreeSpaceLessTheReserveIsRefusedBeforeWriting) {
  ExtractLimits limits;
  limits.free_space_reserve = 1ull << 62;  // more than any disk has
  Result r = ExtractTar({{"disk/disk.img", T::kFile, std::string(1 << 20, 'd')}}, limits);
  EXPECT_EQ(r.added.code(), Code::kIo);
  EXPECT_NE(r.added.message().find("\"disk/disk.img\" holds 1048576 bytes of data, more than the cache's file "
                                   "system can take while keeping 4611686018427387904 bytes free"),
            std::string::npos)
      << r.added.message();
  EXPECT_EQ(r.bytes_left, 0u);
}

TEST(ExtractLimits, TooManyDiskFilesStopAtTheLimitWithABoundedList) {
  std::vector<forge::TarEntry> entries = {{"disk", T::kDir}};
  for (int i = 0; i < 20000; ++i) entries.push_back({"disk/f" + std::to_string(i), T::kFile, "x"});
  Result r = ExtractTar(entries);
  const std::string& m = r.added.message();
  EXPECT_NE(m.find("more than 16 files under /disk (\"disk/f0\", \"disk/f1\", \"disk/f10\", \"disk/f11\", "
                   "\"disk/f12\" and 12 more): refused"),
            std::string::npos)
      << m;
  EXPECT_LT(m.size(), 400u);
  EXPECT_EQ(r.bytes_left, 0u);
  // Sixteen are allowed; naming none lists a few.
  entries.resize(17);
  r = ExtractTar(entries);
  EXPECT_TRUE(r.added.ok()) << r.added.message();
  EXPECT_NE(r.taken.message().find("the image has 16 files in /disk (\"f0\", \"f1\", \"f10\", \"f11\", \"f12\" and "
                                   "11 more): name one with path"),
            std::string::npos)
      << r.taken.message();
}

TEST(ExtractLimits, NamesInMessagesAreEscaped) {
  Result r = ExtractTar({{"disk/\x1b]0;pwned\x07" "a.img", T::kFile, "a"}, {"disk/\x1b[2J\rb.img", T::kFile, "b"}});
  ASSERT_TRUE(r.added.ok()) << r.added.message();
  EXPECT_EQ(r.taken.message(),
            "the image has 2 files in /disk (\"\\x1b[2J\\x0db.img\", \"\\x1b]0;pwned\\x07a.img\"): name one with path");
  r = ExtractTar({{"disk/\x1b[2J", T::kSymlink, "", "/etc/\r"}});
  EXPECT_NE(r.added.message().find("tar entry \"disk/\\x1b[2J\" is a symlink to \"/etc/\\x0d\""), std::string::npos)
      << r.added.message();
}

}  // namespace
}  // namespace regdisk::layer
