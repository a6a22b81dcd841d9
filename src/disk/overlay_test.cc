#include "disk/overlay.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "disk/qcow2.h"
#include "disk/qemu_img.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::disk {
namespace {

std::string Tool(const std::vector<std::string>& argv) {
  auto r = RunChecked(argv);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r->out : "";
}

class OverlayTest : public ::testing::TestWithParam<Format> {
 protected:
  TempDir dir_{"regdisk-overlay"};
};

// qemu accepts our overlay as if qemu-img create had made it: check passes,
// the backing file and its format are as given, guest writes land in the
// overlay and reads fall through to the base.
TEST_P(OverlayTest, QemuAcceptsItAndWritesStayInTheOverlay) {
  std::string raw = dir_.path() + "/base.raw", base = raw;
  ASSERT_TRUE(WriteFileAtomic(raw, std::string(3 << 20, 'b')).ok());
  if (GetParam() == Format::kQcow2) {
    base = dir_.path() + "/base.qcow2";
    Tool({"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, base});
  }
  std::string overlay = dir_.path() + "/vm.qcow2";
  ASSERT_TRUE(CreateOverlay(base, GetParam(), overlay).ok());
  Tool({"qemu-img", "check", "-f", "qcow2", overlay});

  auto info = RunQemuImgInfo(overlay, Format::kQcow2);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->virtual_size, 3u << 20);
  EXPECT_EQ(info->backing_filename, base);
  auto head = ReadFile(overlay, 1 << 20);
  auto h = Qcow2Header::Parse(*head);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->backing_format, FormatName(GetParam()));

  auto before = ReadFile(base, 64 << 20);
  Tool({"qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1M 64k", overlay});
  std::string read = Tool({"qemu-io", "-f", "qcow2", "-c", "read -P 0xab 1M 64k", "-c", "read -P 0x62 0 64k", overlay});
  EXPECT_EQ(read.find("fail"), std::string::npos) << read;
  EXPECT_EQ(*ReadFile(base, 64 << 20), *before) << "an overlay write reached the base";
  Tool({"qemu-img", "check", "-f", "qcow2", overlay});
}

INSTANTIATE_TEST_SUITE_P(Bases, OverlayTest, ::testing::Values(Format::kRaw, Format::kQcow2),
                         [](const auto& info) { return std::string(FormatName(info.param)); });

TEST(Overlay, LargeVirtualSizeNeedsSeveralL1Entries) {
  TempDir dir;
  std::string base = dir.path() + "/big.raw";
  ASSERT_TRUE(WriteFileAtomic(base, "").ok());
  ASSERT_EQ(::truncate(base.c_str(), 3ll << 30), 0);  // 3 GiB: 6 L2 tables
  ASSERT_TRUE(CreateOverlay(base, Format::kRaw, dir.path() + "/o.qcow2").ok());
  Tool({"qemu-img", "check", "-f", "qcow2", dir.path() + "/o.qcow2"});
  Tool({"qemu-io", "-f", "qcow2", "-c", "write -P 1 2G 64k", dir.path() + "/o.qcow2"});
  Tool({"qemu-img", "check", "-f", "qcow2", dir.path() + "/o.qcow2"});
}

TEST(Overlay, RefusesRelativeBackingPathAndLeavesNothing) {
  TempDir dir;
  EXPECT_FALSE(CreateOverlay("base.raw", Format::kRaw, dir.path() + "/o.qcow2").ok());
  EXPECT_FALSE(CreateOverlay(dir.path() + "/missing.raw", Format::kRaw, dir.path() + "/o.qcow2").ok());
  EXPECT_FALSE(PathExists(dir.path() + "/o.qcow2"));
}

// An emptyDisk: qemu-img check passes, the size is the capacity (rounded up
// to a sector), there is no backing file, the file is sparse, and a guest
// write stays readable.
TEST(EmptyDisk, QemuAcceptsItAndItIsSparse) {
  TempDir dir;
  std::string path = dir.path() + "/scratch.qcow2";
  const uint64_t capacity = (5ull << 30) + 100;  // 5 GiB + 100 bytes: 11 L2 tables
  ASSERT_TRUE(CreateEmptyDisk(path, capacity).ok());
  Tool({"qemu-img", "check", "-f", "qcow2", path});
  auto info = RunQemuImgInfo(path, Format::kQcow2);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->virtual_size, (5ull << 30) + 512);
  EXPECT_EQ(info->backing_filename, "");
  auto h = Qcow2Header::Parse(*ReadFile(path, 1 << 20));
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_TRUE(h->CheckSafe().ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_LE(st.st_size, 1 << 20);
  Tool({"qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 4G 64k", path});
  std::string read = Tool({"qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 4G 64k", "-c", "read -P 0 0 64k", path});
  EXPECT_EQ(read.find("fail"), std::string::npos) << read;
  Tool({"qemu-img", "check", "-f", "qcow2", path});
}

TEST(EmptyDisk, RefusesZeroAndHugeAndLeavesNothing) {
  TempDir dir;
  std::string path = dir.path() + "/e.qcow2";
  EXPECT_EQ(CreateEmptyDisk(path, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(CreateEmptyDisk(path, kMaxVirtualSize + 1).code(), Code::kInvalidArgument);
  EXPECT_FALSE(PathExists(path));
}

}  // namespace
}  // namespace regdisk::disk
