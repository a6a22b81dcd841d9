// ReadHead on real v2 layers (LayerWriter) and on hostile heads.
#include "layer/head_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "layer/layer_writer.h"
#include "layer/memory_blob_test_util.h"
#include "util/fs.h"

namespace regdisk::layer {
namespace {

BlobReadAt ReaderOf(const std::string& blob) {
  return [&blob](uint64_t off, char* buf, size_t len) -> Status {
    if (off > blob.size() || len > blob.size() - off) return InvalidArgument("read past the blob");
    std::memcpy(buf, blob.data() + off, len);
    return OkStatus();
  };
}

struct Built {
  std::string blob;
  DiskIndex index;
};

// A v2 layer of a 1 MiB disk, data at 256 KiB (a hole before it), owned
// `owner`.
Built Build(const TempDir& dir, Compression c, EntryOwner owner) {
  std::string disk(1 << 20, '\0');
  for (size_t i = 256 << 10; i < (320u << 10); ++i) disk[i] = static_cast<char>(i % 251 + 1);
  std::string path = dir.path() + "/my disk.raw";
  EXPECT_TRUE(WriteFileAtomic(path, disk).ok());
  Built b;
  LayerOptions o;
  o.compression = c;
  o.chunk_size = 64 << 10;
  LayerWriter w(std::make_unique<MemoryBlob>(&b.blob), o);
  EXPECT_TRUE(w.AddDirectory("disk", {0, 0, 0755}).ok());
  EXPECT_TRUE(w.AddFile("disk/my disk.raw", path, owner, true).ok());
  auto r = w.Finish();
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (r.ok()) b.index = *r->index;
  return b;
}

class HeadReaderTest : public ::testing::TestWithParam<Compression> {
 protected:
  TempDir dir_{"rd-head"};
};

TEST_P(HeadReaderTest, ReadsTheDiskEntryOfARealLayer) {
  Built b = Build(dir_, GetParam(), {107, 108, 0440});
  auto head = ReadHead(ReaderOf(b.blob), b.index);
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->name, "my disk.raw");
  EXPECT_EQ(head->uid, 107);
  EXPECT_EQ(head->gid, 108);
  EXPECT_EQ(head->mode, 0440u);
  EXPECT_EQ(head->size, 1u << 20);
}

TEST_P(HeadReaderTest, RefusesAHeadThatDisagreesWithTheIndexOrIsCut) {
  Built b = Build(dir_, GetParam(), {107, 107, 0440});
  // The index says another size.
  DiskIndex other = b.index;
  other.disk_size += 512;
  auto head = ReadHead(ReaderOf(b.blob), other);
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), Code::kCorrupt) << head.status().message();
  // The head member cut short: the first data chunk said to start earlier.
  DiskIndex cut = b.index;
  for (auto& e : cut.entries) {
    if (!e.zero()) {
      e.blob_offset = 700;
      break;
    }
  }
  head = ReadHead(ReaderOf(b.blob), cut);
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().message().find('\n'), std::string::npos);
  // No data chunk: no head of known length.
  DiskIndex holes = b.index;
  holes.entries = {{0, holes.disk_size, 0, 0, {}}};
  EXPECT_EQ(ReadHead(ReaderOf(b.blob), holes).status().code(), Code::kUnsupported);
}

TEST(HeadReader, RefusesHostileHeads) {
  DiskIndex index;
  index.codec = Codec::kNone;
  index.disk_size = 1 << 20;
  auto with_head = [&](const std::string& head) {
    index.entries = {{0, index.disk_size, head.size(), 1 << 20, {}}};
    return ReadHead(ReaderOf(head), index);
  };
  // Garbage, and a head longer than its bound.
  EXPECT_FALSE(with_head(std::string(4096, 'x')).ok());
  auto huge = with_head(std::string(MaxHeadBytes(index) * 2, '\0'));
  EXPECT_EQ(huge.status().code(), Code::kCorrupt) << huge.status().message();
}

INSTANTIATE_TEST_SUITE_P(Codecs, HeadReaderTest,
                         ::testing::Values(Compression::kGzip, Compression::kZstd, Compression::kNone));

}  // namespace
}  // namespace regdisk::layer
