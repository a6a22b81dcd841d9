#include "layer/layer_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "oci/media_types.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::layer {
namespace {

constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kMtime = 1700000000;

// Keeps what it receives in *sink (when given) and commits a descriptor with
// the sha256 of the received bytes.
class MemBlobWriter : public oci::BlobWriter {
 public:
  MemBlobWriter(std::string* sink, bool* committed = nullptr)
      : sink_(sink), committed_(committed) {}
  Status Write(const void* data, size_t len) override {
    sha_.Update(data, len);
    size_ += len;
    if (sink_ != nullptr) sink_->append(static_cast<const char*>(data), len);
    return OkStatus();
  }
  StatusOr<oci::Descriptor> Commit(const std::string& media_type,
                                   const std::optional<oci::Digest>& expected) override {
    oci::Descriptor d{media_type, oci::Digest::FromHex(sha_.FinishHex()), size_};
    if (expected && *expected != d.digest) return Corrupt("blob digest mismatch");
    if (committed_ != nullptr) *committed_ = true;
    return d;
  }
  bool created() const override { return true; }

 private:
  std::string* sink_;
  bool* committed_;
  Sha256 sha_;
  uint64_t size_ = 0;
};

class FailingBlobWriter : public MemBlobWriter {
 public:
  FailingBlobWriter() : MemBlobWriter(nullptr) {}
  Status Write(const void*, size_t) override { return IoError("writing blob /store/tmp", ENOSPC); }
};

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    memcpy(&s[i], &v, 8);
  }
  return s;
}

// A file of `size` bytes, all hole except `data` (offset, bytes).
void MakeSparse(const std::string& path, int64_t size,
                const std::vector<std::pair<int64_t, std::string>>& data) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, size), 0);
  for (const auto& [off, bytes] : data) {
    ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), off), static_cast<ssize_t>(bytes.size()));
  }
  close(fd);
}

std::string FileSha(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  Sha256 sha;
  std::vector<char> buf(4 * kMiB);
  ssize_t n;
  while ((n = read(fd, buf.data(), buf.size())) > 0) sha.Update(buf.data(), n);
  close(fd);
  return sha.FinishHex();
}

struct Layer {
  LayerResult result;
  std::string blob;
};

// The standard test layer: "disk/" and the given files under it.
StatusOr<Layer> WriteLayer(const LayerOptions& options,
                           const std::vector<std::pair<std::string, std::string>>& files,
                           bool sparse) {
  Layer layer;
  LayerWriter w(std::make_unique<MemBlobWriter>(&layer.blob), options);
  RETURN_IF_ERROR(w.AddDirectory("disk", {0, 0, 0755}));
  for (const auto& [name, src] : files) {
    RETURN_IF_ERROR(w.AddFile(name, src, {107, 108, 0640}, sparse));
  }
  ASSIGN_OR_RETURN(layer.result, w.Finish());
  return layer;
}

struct ReadEntry {
  std::string name;
  unsigned type;
  int perm;
  int64_t uid, gid, mtime, size;
  bool sparse;
  std::string sha;  // of the content, holes read as zeros
};

// Reads a layer back with libarchive (any filter, any format).
std::vector<ReadEntry> ReadLayer(const std::string& blob) {
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  EXPECT_EQ(archive_read_open_memory(a, blob.data(), blob.size()), ARCHIVE_OK);
  std::vector<ReadEntry> entries;
  std::vector<char> buf(4 * kMiB);
  archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    auto unset = [](const char* s) { return s == nullptr || *s == '\0'; };
    EXPECT_TRUE(unset(archive_entry_uname(e)) && unset(archive_entry_gname(e)));
    EXPECT_FALSE(archive_entry_atime_is_set(e) || archive_entry_ctime_is_set(e));
    ReadEntry r{archive_entry_pathname(e), archive_entry_filetype(e),
                static_cast<int>(archive_entry_perm(e)),
                archive_entry_uid(e), archive_entry_gid(e), archive_entry_mtime(e),
                archive_entry_size(e), archive_entry_sparse_count(e) > 0, ""};
    Sha256 sha;
    la_ssize_t n;
    int64_t read = 0;
    while ((n = archive_read_data(a, buf.data(), buf.size())) > 0) {
      sha.Update(buf.data(), n);
      read += n;
    }
    EXPECT_EQ(n, 0) << archive_error_string(a);
    // archive_read_data stops at the last data byte; a trailing hole is
    // restored from the entry size (extractors ftruncate).
    std::fill(buf.begin(), buf.end(), 0);
    for (int64_t left = r.size - read; left > 0; left -= std::min<int64_t>(left, buf.size())) {
      sha.Update(buf.data(), std::min<int64_t>(left, buf.size()));
    }
    r.sha = sha.FinishHex();
    entries.push_back(r);
  }
  EXPECT_EQ(rc, ARCHIVE_EOF) << archive_error_string(a);
  archive_read_free(a);
  return entries;
}

// The blob decompressed (libarchive's raw format, any filter).
std::string Decompress(const std::string& blob) {
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  EXPECT_EQ(archive_read_open_memory(a, blob.data(), blob.size()), ARCHIVE_OK);
  archive_entry* e;
  EXPECT_EQ(archive_read_next_header(a, &e), ARCHIVE_OK);
  std::string out, buf(kMiB, '\0');
  la_ssize_t n;
  while ((n = archive_read_data(a, buf.data(), buf.size())) > 0) out.append(buf.data(), n);
  archive_read_free(a);
  return out;
}

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd;
  return out;
}

class LayerWriterTest : public ::testing::TestWithParam<Compression> {
 protected:
  void SetUp() override {
    options_.compression = GetParam();
    options_.mtime = kMtime;
    options_.threads = 2;
    dense_ = dir_.path() + "/dense.bin";
    sparse_ = dir_.path() + "/sparse.raw";
    ASSERT_TRUE(WriteFileAtomic(dense_, RandomBytes(3 * kMiB + 123, 1) + "tail").ok());
    // Leading, middle and trailing holes.
    MakeSparse(sparse_, 64 * kMiB, {{5 * kMiB, RandomBytes(kMiB, 2)},
                                   {40 * kMiB + 4096, std::string(70000, 'x')},
                                   {60 * kMiB - 8192, RandomBytes(8192, 3)}});
  }
  TempDir dir_{"layer-test"};
  LayerOptions options_;
  std::string dense_, sparse_;
};

TEST_P(LayerWriterTest, RoundTripsEntriesAndContent) {
  auto layer = WriteLayer(options_, {{"disk/dense.bin", dense_}, {"disk/sparse.raw", sparse_}}, true);
  ASSERT_TRUE(layer.ok()) << layer.status().ToString();
  const LayerResult& r = layer->result;
  EXPECT_EQ(r.descriptor.media_type, LayerMediaType(GetParam()));
  EXPECT_EQ(r.descriptor.digest.hex(), Sha256::HexOf(layer->blob));
  EXPECT_EQ(r.descriptor.size, layer->blob.size());

  const std::string tar = Decompress(layer->blob);
  EXPECT_EQ(r.diff_id.hex(), Sha256::HexOf(tar));
  EXPECT_EQ(r.uncompressed_size, tar.size());
  EXPECT_EQ(tar.size() % 512, 0u);
  EXPECT_EQ(tar.substr(tar.size() - 1024), std::string(1024, '\0'));  // no record padding
  EXPECT_LT(tar.size(), 6 * kMiB);  // holes are not stored

  const std::vector<ReadEntry> entries = ReadLayer(layer->blob);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, "disk/");
  EXPECT_EQ(entries[0].type, AE_IFDIR);
  EXPECT_EQ(entries[0].perm, 0755);
  EXPECT_EQ(entries[0].uid, 0);
  EXPECT_EQ(entries[1].name, "disk/dense.bin");
  EXPECT_FALSE(entries[1].sparse);
  EXPECT_EQ(entries[1].sha, FileSha(dense_));
  EXPECT_EQ(entries[2].name, "disk/sparse.raw");
  EXPECT_TRUE(entries[2].sparse);
  EXPECT_EQ(entries[2].size, 64 * kMiB);
  EXPECT_EQ(entries[2].sha, FileSha(sparse_));
  for (size_t i = 1; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].type, AE_IFREG);
    EXPECT_EQ(entries[i].perm, 0640);
    EXPECT_EQ(entries[i].uid, 107);
    EXPECT_EQ(entries[i].gid, 108);
  }
  for (const ReadEntry& e : entries) EXPECT_EQ(e.mtime, kMtime) << e.name;
}

TEST_P(LayerWriterTest, SameInputsGiveSameBytes) {
  auto a = WriteLayer(options_, {{"disk/sparse.raw", sparse_}}, true);
  auto b = WriteLayer(options_, {{"disk/sparse.raw", sparse_}}, true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->result.descriptor.digest, b->result.descriptor.digest);
  EXPECT_EQ(a->result.diff_id, b->result.diff_id);
}

// GNU tar reads the uncompressed stream (sparse 1.0 included); gzip and
// zstd decompress the blob to exactly the diff_id bytes.
TEST_P(LayerWriterTest, StandardToolsAcceptTheLayer) {
  auto layer = WriteLayer(options_, {{"disk/dense.bin", dense_}, {"disk/sparse.raw", sparse_}}, true);
  ASSERT_TRUE(layer.ok());
  const std::string blob = dir_.path() + "/layer.blob", tar = dir_.path() + "/layer.tar";
  ASSERT_TRUE(WriteFileAtomic(blob, layer->blob).ok());
  const char* decompress = GetParam() == Compression::kGzip   ? "gzip -dc"
                           : GetParam() == Compression::kZstd ? "zstd -qdc"
                                                              : "cat";
  Shell(std::string(decompress) + " < " + blob + " > " + tar);
  EXPECT_EQ(FileSha(tar), layer->result.diff_id.hex());

  const std::string listing = Shell("tar -tvf " + tar);
  EXPECT_NE(listing.find("107/108"), std::string::npos) << listing;
  EXPECT_NE(listing.find("disk/sparse.raw"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("GNUSparseFile"), std::string::npos) << listing;
  const std::string out = dir_.path() + "/out";
  ASSERT_TRUE(MakeDirs(out).ok());
  Shell("tar -xf " + tar + " -C " + out);
  EXPECT_EQ(FileSha(out + "/disk/dense.bin"), FileSha(dense_));
  EXPECT_EQ(FileSha(out + "/disk/sparse.raw"), FileSha(sparse_));
  struct stat st;
  ASSERT_EQ(stat((out + "/disk/sparse.raw").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 64 * kMiB);
  EXPECT_EQ(st.st_mtime, kMtime);
}

INSTANTIATE_TEST_SUITE_P(AllCompressions, LayerWriterTest,
                         ::testing::Values(Compression::kNone, Compression::kGzip,
                                           Compression::kZstd),
                         [](const auto& info) { return std::string(CompressionName(info.param)); });

class ThreadCountTest : public ::testing::TestWithParam<Compression> {};

// Parallel gzip (one member per 1 MiB chunk) and multi-threaded zstd give
// the same bytes whatever the number of workers.
TEST_P(ThreadCountTest, OutputDoesNotDependOnThreadCount) {
  TempDir dir;
  const std::string src = dir.path() + "/f";
  ASSERT_TRUE(WriteFileAtomic(src, RandomBytes(8 * kMiB, 4) + std::string(40 * kMiB, 'a')).ok());
  std::optional<oci::Digest> first;
  for (int threads : {1, 2, 4}) {
    auto layer = WriteLayer({GetParam(), -1, threads, 0}, {{"disk/f", src}}, false);
    ASSERT_TRUE(layer.ok());
    if (!first) first = layer->result.descriptor.digest;
    EXPECT_EQ(layer->result.descriptor.digest, *first) << threads << " threads";
  }
}

INSTANTIATE_TEST_SUITE_P(Parallel, ThreadCountTest, ::testing::Values(Compression::kGzip, Compression::kZstd),
                         [](const auto& info) { return std::string(CompressionName(info.param)); });

TEST(LayerWriter, OneGiBSparseFileMakesASmallLayer) {
  TempDir dir;
  const std::string src = dir.path() + "/big.raw";
  MakeSparse(src, 1024 * kMiB, {{0, RandomBytes(kMiB, 5)},
                                {300 * kMiB, RandomBytes(2 * kMiB, 6)},
                                {700 * kMiB + 12345, RandomBytes(kMiB, 7)},
                                {1023 * kMiB, RandomBytes(kMiB, 8)}});
  uint64_t progress = 0;
  Layer layer;
  const auto start = std::chrono::steady_clock::now();
  LayerWriter w(std::make_unique<MemBlobWriter>(&layer.blob), {Compression::kGzip});
  ASSERT_TRUE(w.AddFile("disk/big.raw", src, {}, true, [&](uint64_t n) { progress += n; }).ok());
  auto r = w.Finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::printf("1 GiB sparse file: %.2f s, layer %zu bytes, tar %llu bytes\n", secs,
              layer.blob.size(), static_cast<unsigned long long>(r->uncompressed_size));
  EXPECT_EQ(progress, 1024u * kMiB);
  EXPECT_LT(layer.blob.size(), 16u * kMiB);
  const std::vector<ReadEntry> entries = ReadLayer(layer.blob);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].size, 1024 * kMiB);
  EXPECT_EQ(entries[0].sha, FileSha(src));
}

TEST(LayerWriter, FileWithoutHolesIsAPlainUstarEntry) {
  TempDir dir;
  const std::string src = dir.path() + "/f";
  ASSERT_TRUE(WriteFileAtomic(src, RandomBytes(kMiB, 9)).ok());
  auto layer = WriteLayer({Compression::kNone}, {{"disk/f", src}}, true);
  ASSERT_TRUE(layer.ok());
  const std::string& tar = layer->blob;
  EXPECT_EQ(tar.find("PaxHeader"), std::string::npos);  // no PAX header needed
  EXPECT_EQ(tar.find("GNU.sparse"), std::string::npos);
  EXPECT_EQ(tar.compare(512, 7, "disk/f\0", 7), 0);
  EXPECT_EQ(tar.compare(512 + 257, 6, "ustar\0", 6), 0);
}

TEST(LayerWriter, AllHoleFileAndEmptyFile) {
  TempDir dir;
  const std::string hole = dir.path() + "/hole", empty = dir.path() + "/empty";
  MakeSparse(hole, 32 * kMiB, {});
  MakeSparse(empty, 0, {});
  auto layer = WriteLayer({Compression::kZstd}, {{"disk/hole", hole}, {"disk/empty", empty}}, true);
  ASSERT_TRUE(layer.ok()) << layer.status().ToString();
  EXPECT_LT(layer->result.uncompressed_size, 8192u);
  const std::vector<ReadEntry> entries = ReadLayer(layer->blob);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[1].size, 32 * kMiB);
  EXPECT_EQ(entries[1].sha, FileSha(hole));
  EXPECT_EQ(entries[2].size, 0);
  EXPECT_EQ(entries[2].sha, Sha256::HexOf(""));
}

TEST(LayerWriter, LongNameGetsAPaxHeader) {
  TempDir dir;
  const std::string src = dir.path() + "/f";
  ASSERT_TRUE(WriteFileAtomic(src, "hello").ok());
  const std::string name = "disk/" + std::string(150, 'n') + "/" + std::string(120, 'm');
  auto layer = WriteLayer({Compression::kGzip}, {{name, src}}, false);
  ASSERT_TRUE(layer.ok());
  const std::vector<ReadEntry> entries = ReadLayer(layer->blob);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].name, name);
  EXPECT_EQ(entries[1].sha, Sha256::HexOf("hello"));
}

TEST(LayerWriter, BadNamesAreRefused) {
  for (const char* name : {"", "/disk", "disk/../etc", "..", "disk//x", "disk/", "./disk", "disk/\xc3\xbc",
                           "disk/a\nb"}) {
    LayerWriter w(std::make_unique<MemBlobWriter>(nullptr), {});
    Status st = w.AddDirectory(name, {});
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << name;
    EXPECT_EQ(st.message().rfind("layer entry name \"", 0), 0u) << st.message();
  }
  LayerWriter w(std::make_unique<MemBlobWriter>(nullptr), {});
  EXPECT_EQ(w.AddFile("disk/../x\n", "/dev/null", {}, false).message(),
            "layer entry name \"disk/../x\\x0a\": only printable ASCII characters are allowed");
}

TEST(LayerWriter, ErrorsStick) {
  bool committed = false;
  LayerWriter w(std::make_unique<MemBlobWriter>(nullptr, &committed), {});
  Status st = w.AddFile("disk/x", "/nonexistent/disk.raw", {}, true);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("/nonexistent/disk.raw"), std::string::npos) << st.message();
  EXPECT_EQ(w.AddDirectory("disk", {}).message(), st.message());
  auto r = w.Finish();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), st.message());
  EXPECT_FALSE(committed);
}

TEST(LayerWriter, BlobWriterErrorIsReported) {
  TempDir dir;
  const std::string src = dir.path() + "/f";
  ASSERT_TRUE(WriteFileAtomic(src, RandomBytes(2 * kMiB, 10)).ok());
  LayerWriter w(std::make_unique<FailingBlobWriter>(), {Compression::kNone});
  Status st = w.AddFile("disk/f", src, {}, false);
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_NE(st.message().find("/store/tmp"), std::string::npos) << st.message();
  auto r = w.Finish();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), st.message());
}

TEST(LayerWriter, RefusesNonRegularFilesAndBadOptions) {
  TempDir dir;
  LayerWriter w(std::make_unique<MemBlobWriter>(nullptr), {});
  Status st = w.AddFile("disk/x", dir.path(), {}, false);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find(dir.path()), std::string::npos) << st.message();

  LayerWriter bad_level(std::make_unique<MemBlobWriter>(nullptr), {Compression::kGzip, 12});
  EXPECT_NE(bad_level.AddDirectory("disk", {}).message().find("gzip level 12"), std::string::npos);
  LayerWriter bad_owner(std::make_unique<MemBlobWriter>(nullptr), {});
  EXPECT_EQ(bad_owner.AddDirectory("disk", {-1, 0, 0755}).code(), Code::kInvalidArgument);
}

TEST(LayerWriter, DestroyWithoutFinishDiscards) {
  bool committed = false;
  {
    LayerWriter w(std::make_unique<MemBlobWriter>(nullptr, &committed), {Compression::kZstd});
    ASSERT_TRUE(w.AddDirectory("disk", {}).ok());
  }
  EXPECT_FALSE(committed);
}

TEST(LayerWriter, ParsesCompressionNames) {
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    auto parsed = ParseCompression(CompressionName(c));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, c);
  }
  auto bad = ParseCompression("xz");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "compression \"xz\": expected none, gzip or zstd");
  EXPECT_STREQ(LayerMediaType(Compression::kZstd), oci::media::kOciLayerZstd);
  EXPECT_STREQ(LayerMediaType(Compression::kNone), oci::media::kOciLayerTar);
}

}  // namespace
}  // namespace regdisk::layer
