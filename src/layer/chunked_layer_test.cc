// The v2 disk standard end to end inside the layer module: LayerWriter with
// a chunk size -> the v1 extractor (byte-identical disk), the index
// (OpenIndex), random access (ReadChunk) and the whole-blob check
// (VerifyLayer), and what each does with tampered input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "layer/chunk_reader.h"
#include "layer/disk_extractor.h"
#include "layer/index_verifier.h"
#include "layer/layer_writer.h"
#include "layer/memory_blob_test_util.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::layer {
namespace {

constexpr uint64_t kMiB = 1 << 20;

BlobReadAt ReaderOf(const std::string& blob) {
  return [&blob](uint64_t off, char* buf, size_t len) -> Status {
    if (off > blob.size() || len > blob.size() - off) return InvalidArgument("read past the blob");
    std::memcpy(buf, blob.data() + off, len);
    return OkStatus();
  };
}

// Bytes that compress a little, different per offset.
std::string Pattern(size_t n, char seed) {
  std::string s(n, '\0');
  uint32_t x = static_cast<unsigned char>(seed) * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>((x >> 16) % 16 + 'a');
  }
  return s;
}

// A `size`-byte file with `runs` of data (offset, bytes), holes elsewhere.
std::string MakeDisk(const TempDir& dir, const std::string& name, uint64_t size,
                     const std::vector<std::pair<uint64_t, std::string>>& runs) {
  const std::string path = dir.path() + "/" + name;
  { std::ofstream(path, std::ios::binary); }
  std::filesystem::resize_file(path, size);
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  for (const auto& [off, bytes] : runs) {
    f.seekp(static_cast<std::streamoff>(off));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  return path;
}

struct Built {
  std::string blob;
  LayerResult result;
};

Built Build(const std::string& disk, Compression c, uint32_t chunk = 256 << 10, int threads = 0) {
  Built b;
  LayerOptions o;
  o.compression = c;
  o.chunk_size = chunk;
  o.threads = threads;
  LayerWriter w(std::make_unique<MemoryBlob>(&b.blob), o);
  EXPECT_TRUE(w.AddDirectory("disk", {0, 0, 0755}).ok());
  Status st = w.AddFile("disk/" + std::filesystem::path(disk).filename().string(), disk, {107, 107, 0440}, true);
  EXPECT_TRUE(st.ok()) << st.message();
  auto r = w.Finish();
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (r.ok()) b.result = *r;
  return b;
}

// The index as a reader gets it: from the annotations and the blob.
StatusOr<DiskIndex> Open(const Built& b, Compression c) {
  ASSIGN_OR_RETURN(auto anchor, ParseAnchor(b.result.descriptor));
  if (!anchor) return NotFound("no anchor");
  return OpenIndex(*anchor, CodecOf(c), std::string_view(b.blob).substr(anchor->offset, anchor->length));
}

Status Verify(const Built& b, const std::string& blob) {
  std::string copy = blob;
  MemoryBlob reader(&copy);
  auto anchor = ParseAnchor(b.result.descriptor);
  if (!anchor.ok()) return anchor.status();
  return VerifyLayer(reader, **anchor, *b.result.index);
}

class ChunkedLayerTest : public ::testing::TestWithParam<Compression> {
 protected:
  void SetUp() override {
    // 3 MiB + 100 KiB: data across chunk boundaries, a hole of whole chunks,
    // a hole inside a chunk, and a short last chunk.
    disk_ = MakeDisk(dir_, "disk.raw", 3 * kMiB + (100 << 10),
                     {{0, Pattern(300 << 10, 'a')},
                      {(600 << 10), Pattern(8 << 10, 'b')},
                      {2 * kMiB + (4 << 10), Pattern(kMiB + (96 << 10) - (4 << 10), 'c')}});
  }
  TempDir dir_;
  std::string disk_;
};

TEST_P(ChunkedLayerTest, V1ExtractorGetsTheSameDiskAndEveryChunkReadsBack) {
  Built b = Build(disk_, GetParam());
  ASSERT_TRUE(b.result.anchor.has_value());
  const auto& ann = b.result.descriptor.annotations;
  EXPECT_EQ(ann.at(kChunkSizeAnnotation), "262144");
  EXPECT_EQ(ann.at(kIndexDigestAnnotation), b.result.anchor->digest.str());

  MemoryBlob reader(&b.blob);
  DiskExtractor ex(dir_.path(), {});
  Status s = ex.AddLayer(reader, b.result.descriptor, b.result.diff_id);
  ASSERT_TRUE(s.ok()) << s.message();
  auto taken = ex.Take("");
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  const std::string want = *ReadFile(disk_);
  EXPECT_EQ(*ReadFile(taken->file), want) << "the v1 path extracts a different disk";
  struct stat st;
  ASSERT_EQ(::stat(taken->file.c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 2 * kMiB) << "holes were not kept";

  auto index = Open(b, GetParam());
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->disk_size, want.size());
  std::string rebuilt;
  int zeros = 0;
  for (const IndexEntry& e : index->entries) {
    if (e.zero()) {
      ++zeros;
      rebuilt.append(e.length, '\0');
      continue;
    }
    auto bytes = ReadChunk(ReaderOf(b.blob), CodecOf(GetParam()), e);
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    rebuilt += *bytes;
  }
  EXPECT_EQ(rebuilt, want) << "the v2 view differs from the disk";
  EXPECT_EQ(zeros, 3);  // in chunk 1, chunks 2..8, after the data
  EXPECT_TRUE(Verify(b, b.blob).ok()) << Verify(b, b.blob).message();
}

TEST_P(ChunkedLayerTest, SameInputSameDigestsForAnyThreadCount) {
  Built a = Build(disk_, GetParam(), 256 << 10, 1);
  Built b = Build(disk_, GetParam(), 256 << 10, 4);
  EXPECT_EQ(a.result.descriptor.digest, b.result.descriptor.digest);
  EXPECT_EQ(a.result.anchor->digest, b.result.anchor->digest);
}

TEST_P(ChunkedLayerTest, FlippedByteInAChunkFailsThatReadOnly) {
  Built b = Build(disk_, GetParam());
  auto index = Open(b, GetParam());
  ASSERT_TRUE(index.ok()) << index.status().message();
  const IndexEntry* victim = nullptr;
  for (const IndexEntry& e : index->entries) {
    if (!e.zero() && e.disk_offset == 2 * kMiB + (4 << 10)) victim = &e;
  }
  ASSERT_NE(victim, nullptr);
  std::string bad = b.blob;
  bad[victim->blob_offset + victim->blob_length / 2] ^= 0x20;
  auto r = ReadChunk(ReaderOf(bad), CodecOf(GetParam()), *victim);
  ASSERT_FALSE(r.ok()) << "a damaged chunk was served";
  EXPECT_EQ(r.status().code(), Code::kCorrupt);
  EXPECT_NE(r.status().message().find("chunk at disk offset 2101248"), std::string::npos) << r.status().message();
  for (const IndexEntry& e : index->entries) {
    if (!e.zero() && &e != victim) {
      EXPECT_TRUE(ReadChunk(ReaderOf(bad), CodecOf(GetParam()), e).ok());
    }
  }
  EXPECT_EQ(Verify(b, bad).code(), Code::kCorrupt);
}

TEST_P(ChunkedLayerTest, WrongChunkDigestInTheIndexFailsThatRead) {
  Built b = Build(disk_, GetParam());
  auto index = Open(b, GetParam());
  ASSERT_TRUE(index.ok()) << index.status().message();
  IndexEntry e = index->entries.front();
  ASSERT_FALSE(e.zero());
  e.sha256[0] ^= 1;
  auto r = ReadChunk(ReaderOf(b.blob), CodecOf(GetParam()), e);
  ASSERT_FALSE(r.ok()) << "a chunk was served against the wrong digest";
  EXPECT_NE(r.status().message().find("does not match the index"), std::string::npos) << r.status().message();
  // A member that overruns the blob is a read error, not bytes.
  e = index->entries.front();
  e.blob_offset = b.blob.size() - 10;
  EXPECT_FALSE(ReadChunk(ReaderOf(b.blob), CodecOf(GetParam()), e).ok());
}

TEST_P(ChunkedLayerTest, IndexNotMatchingItsAnnotationIsRefused) {
  Built b = Build(disk_, GetParam());
  oci::Descriptor d = b.result.descriptor;
  d.annotations[kIndexDigestAnnotation] = oci::Digest::Of("another index").str();
  auto anchor = ParseAnchor(d);
  ASSERT_TRUE(anchor.ok() && anchor->has_value());
  auto index = OpenIndex(**anchor, CodecOf(GetParam()),
                         std::string_view(b.blob).substr((*anchor)->offset, (*anchor)->length));
  ASSERT_FALSE(index.ok());
  EXPECT_NE(index.status().message().find("digest mismatch"), std::string::npos) << index.status().message();
}

INSTANTIATE_TEST_SUITE_P(Codecs, ChunkedLayerTest,
                         ::testing::Values(Compression::kNone, Compression::kGzip, Compression::kZstd),
                         [](const auto& info) { return std::string(CompressionName(info.param)); });

// A hand-made tar (codec none): disk/d from `disk`, the files in `extra`
// (name, path) after it, then `index` as .regdisk/index, anchored.
Built HandMade(const TempDir& dir, const std::string& disk,
               const std::vector<std::pair<std::string, std::string>>& extra, const DiskIndex& index) {
  const std::string index_bytes = EncodeIndex(index);
  EXPECT_TRUE(WriteFileAtomic(dir.path() + "/index", index_bytes).ok());
  Built b;
  LayerWriter w(std::make_unique<MemoryBlob>(&b.blob), LayerOptions{Compression::kNone});
  EXPECT_TRUE(w.AddDirectory("disk", {0, 0, 0755}).ok());
  EXPECT_TRUE(w.AddFile("disk/d", disk, {107, 107, 0440}, false).ok());
  for (const auto& [name, path] : extra) EXPECT_TRUE(w.AddFile(name, path, {0, 0, 0644}, false).ok());
  EXPECT_TRUE(w.AddFile(kIndexEntryName, dir.path() + "/index", {0, 0, 0444}, false).ok());
  auto r = w.Finish();
  EXPECT_TRUE(r.ok()) << r.status().message();
  b.result = *r;
  IndexAnchor anchor;
  anchor.offset = b.blob.find(index_bytes);
  anchor.length = anchor.uncompressed_length = index_bytes.size();
  anchor.digest = oci::Digest::Of(index_bytes);
  anchor.chunk_size = index.chunk_size;
  AnnotateAnchor(anchor, b.result.descriptor.annotations);
  b.result.index = index;
  return b;
}

// The index of a 2 MiB disk/d whose first MiB is `first` (at blob offset
// 1024, after the headers of disk/ and disk/d) and whose second is a hole.
DiskIndex DataThenHole(const std::string& first) {
  DiskIndex x;
  x.chunk_size = kMiB;
  x.codec = Codec::kNone;
  x.disk_size = 2 * kMiB;
  IndexEntry data;
  data.length = kMiB;
  data.blob_offset = 1024;
  data.blob_length = kMiB;
  data.sha256 = ShaFromHex(Sha256::HexOf(first));
  IndexEntry hole;
  hole.disk_offset = kMiB;
  hole.length = kMiB;
  x.entries = {data, hole};
  return x;
}

// A tar whose disk shows data where its (self-consistent, anchored) index
// shows a hole: a v2 reader would see zeros, a v1 reader the data.
TEST(ChunkedLayer, IndexDisagreeingWithTheTarIsRefused) {
  TempDir dir;
  const std::string a = Pattern(kMiB, 'a'), hidden = Pattern(kMiB, 'h');
  const std::string disk = MakeDisk(dir, "d", 2 * kMiB, {{0, a}, {kMiB, hidden}});
  Built b = HandMade(dir, disk, {}, DataThenHole(a));
  // The forged index opens, and its chunk reads back fine...
  auto index = Open(b, Compression::kNone);
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_TRUE(ReadChunk(ReaderOf(b.blob), Codec::kNone, index->entries[0]).ok());
  // ...but the whole-blob check sees the two views differ.
  Status s = Verify(b, b.blob);
  EXPECT_EQ(s.code(), Code::kCorrupt);
  EXPECT_NE(s.message().find("the tar has data in the index's hole"), std::string::npos) << s.message();
}

// The same layout with the disk as the index says, but an extra file that
// a v1 reader would unpack: refused too.
TEST(ChunkedLayer, ExtraTarEntryIsRefused) {
  TempDir dir;
  const std::string a = Pattern(kMiB, 'a');
  const std::string disk = MakeDisk(dir, "d", 2 * kMiB, {{0, a}});
  const std::string extra = MakeDisk(dir, "x", 100, {{0, "extra"}});
  EXPECT_TRUE(Verify(HandMade(dir, disk, {}, DataThenHole(a)), HandMade(dir, disk, {}, DataThenHole(a)).blob).ok());
  Built b = HandMade(dir, disk, {{"etc/x", extra}}, DataThenHole(a));
  Status s = Verify(b, b.blob);
  EXPECT_NE(s.message().find("unexpected file \"etc/x\""), std::string::npos) << s.message();
}

TEST(ChunkedLayer, WriterRefusesBadChunkSizesAndASecondFile) {
  TempDir dir;
  const std::string disk = MakeDisk(dir, "d", kMiB, {{0, "x"}});
  for (uint32_t cs : {1000u, 4096u, 32u << 20}) {
    std::string blob;
    LayerOptions o;
    o.chunk_size = cs;
    LayerWriter w(std::make_unique<MemoryBlob>(&blob), o);
    EXPECT_FALSE(w.AddFile("disk/d", disk, {107, 107, 0440}, true).ok()) << cs;
  }
  std::string blob;
  LayerOptions o;
  o.chunk_size = kMiB;
  LayerWriter w(std::make_unique<MemoryBlob>(&blob), o);
  ASSERT_TRUE(w.AddFile("disk/d", disk, {107, 107, 0440}, true).ok());
  Status s = w.AddFile("disk/e", disk, {107, 107, 0440}, true);
  EXPECT_NE(s.message().find("a v2 layer holds one file"), std::string::npos) << s.message();
}

TEST(ChunkedLayer, EmptyAndAllHoleDisks) {
  TempDir dir;
  for (uint64_t size : {uint64_t{0}, 5 * kMiB}) {
    SCOPED_TRACE(size);
    const std::string disk = MakeDisk(dir, "d" + std::to_string(size), size, {});
    Built b = Build(disk, Compression::kGzip);
    auto index = Open(b, Compression::kGzip);
    ASSERT_TRUE(index.ok()) << index.status().message();
    EXPECT_EQ(index->entries.size(), size == 0 ? 0u : 1u);
    EXPECT_TRUE(Verify(b, b.blob).ok()) << Verify(b, b.blob).message();
  }
}

}  // namespace
}  // namespace regdisk::layer
