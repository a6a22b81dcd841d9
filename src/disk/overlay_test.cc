#include "disk/overlay.h"

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

}  // namespace
}  // namespace regdisk::disk
