// The v2 disk standard (docs/disk-standard-v2.md) against the real peer
// tools: an image built with the library's v2 writer must be copied by
// skopeo and unpacked by umoci into the byte-identical disk, and regdisk's
// v1 extractor must get the same disk from raw (sparse) and qcow2 images in
// every compression, while the layer's index verifies against its tar.
#include <gtest/gtest.h>

#include <filesystem>

#include "build/builder.h"
#include "harness.h"
#include "layer/disk_extractor.h"
#include "layer/disk_index.h"
#include "layer/index_verifier.h"
#include "layout/layout.h"
#include "oci/media_types.h"

namespace regdisk::testing {
namespace {

class DiskStandardV2Test : public ::testing::Test {
 protected:
  // Builds `disk` as v2 into the OCI layout at `layout`, tag "v2".
  StatusOr<build::BuildResult> BuildV2(const std::string& disk, const std::string& layout,
                                       layer::Compression c) {
    ASSIGN_OR_RETURN(auto store, layout::Layout::Open(layout, true));
    build::BuildOptions o;
    o.platform = {"amd64", "linux", ""};
    o.disks = {{disk, std::string(std::filesystem::path(disk).filename()), {}}};
    o.layer.compression = c;
    o.standard = build::DiskStandard::kV2;
    return build::BuildImage(*store, o, std::nullopt, "v2");
  }

  // The disk as the v1 path extracts it from the layout's image, after
  // checking the layer's index against its tar.
  std::string ExtractV1(const std::string& layout) {
    auto store = layout::Layout::Open(layout, false);
    EXPECT_TRUE(store.ok());
    auto m = oci::ParseManifest((*store)->GetManifest("v2")->bytes);
    EXPECT_TRUE(m.ok());
    auto config = oci::ParseImageConfig(*oci::ReadBlob(**store, m->config.digest));
    EXPECT_EQ(m->annotations[oci::annotation::kDiskStandard], "v2");
    const oci::Descriptor& l = m->layers.back();
    auto anchor = layer::ParseAnchor(l);
    EXPECT_TRUE(anchor.ok() && anchor->has_value());
    auto codec = layer::CodecForMediaType(l.media_type);
    auto all = oci::ReadBlob(**store, l.digest, 1ull << 30);
    auto index = layer::OpenIndex(**anchor, *codec, all->substr((*anchor)->offset, (*anchor)->length));
    EXPECT_TRUE(index.ok()) << index.status().message();
    auto whole = (*store)->OpenBlob(l.digest);
    Status v = layer::VerifyLayer(**whole, **anchor, *index);
    EXPECT_TRUE(v.ok()) << v.message();

    const std::string out_dir = layout + "-extracted";
    std::filesystem::create_directories(out_dir);
    layer::DiskExtractor ex(out_dir, {});
    auto blob = (*store)->OpenBlob(l.digest);
    Status s = ex.AddLayer(**blob, l, config->diff_ids.back());
    EXPECT_TRUE(s.ok()) << s.message();
    auto taken = ex.Take("");
    EXPECT_TRUE(taken.ok()) << taken.status().message();
    return taken.ok() ? taken->file : "";
  }

  TempDir work_{"regdisk-v2"};
};

TEST_F(DiskStandardV2Test, V1ExtractorGetsRawAndQcow2ByteIdentical) {
  const std::string raw = work_.path() + "/disk.raw";
  MakeSparseFile(raw, 24 << 20, {0, 3 << 20, (5 << 20) + 4096, 20 << 20}, std::string(300000, 'r') + "v2");
  const std::string qcow2 = work_.path() + "/disk.qcow2";
  auto conv = RunCmd({"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2});
  ASSERT_EQ(conv.exit_code, 0) << Describe(conv);
  for (const std::string& disk : {raw, qcow2}) {
    for (auto c : {layer::Compression::kNone, layer::Compression::kGzip, layer::Compression::kZstd}) {
      SCOPED_TRACE(disk + " " + layer::CompressionName(c));
      const std::string layout = work_.path() + "/layout-" + layer::CompressionName(c) + disk.substr(disk.size() - 3);
      auto r = BuildV2(disk, layout, c);
      ASSERT_TRUE(r.ok()) << r.status().message();
      const std::string out = ExtractV1(layout);
      EXPECT_EQ(Sha256File(out), Sha256File(disk));
    }
  }
}

TEST_F(DiskStandardV2Test, SkopeoCopiesAndUmociUnpacksByteIdentical) {
  const std::string raw = work_.path() + "/disk.img";
  MakeSparseFile(raw, 16 << 20, {0, 1 << 20, 9 << 20}, std::string(70000, 'u') + "regdisk");
  for (auto c : {layer::Compression::kGzip, layer::Compression::kNone, layer::Compression::kZstd}) {
    SCOPED_TRACE(layer::CompressionName(c));
    const std::string layout = work_.path() + "/src-" + layer::CompressionName(c);
    ASSERT_TRUE(BuildV2(raw, layout, c).ok());
    const std::string copy = work_.path() + "/copy-" + layer::CompressionName(c);
    auto sk = RunCmd({"skopeo", "copy", "--quiet", "oci:" + layout + ":v2", "oci:" + copy + ":v2"});
    ASSERT_EQ(sk.exit_code, 0) << Describe(sk);
    if (c == layer::Compression::kZstd) continue;  // Debian's umoci 0.4 predates zstd layers
    const std::string bundle = work_.path() + "/bundle-" + layer::CompressionName(c);
    auto um = RunCmd({"umoci", "unpack", "--image", copy + ":v2", bundle});
    ASSERT_EQ(um.exit_code, 0) << Describe(um);
    EXPECT_EQ(Sha256File(bundle + "/rootfs/disk/disk.img"), Sha256File(raw)) << "umoci unpacked another disk";
  }
}

}  // namespace
}  // namespace regdisk::testing
