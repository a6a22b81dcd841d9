#include "disk/format.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::disk {
namespace {

// Passes when `s` is an error whose message starts with "path: " and
// mentions `needle`.
testing::AssertionResult FailsNaming(const Status& s, const std::string& path, std::string_view needle) {
  if (s.ok()) return testing::AssertionFailure() << "expected an error on " << path << ", got OK";
  if (!s.message().starts_with(path + ": ")) {
    return testing::AssertionFailure() << "\"" << s.message() << "\" does not start with the path";
  }
  if (s.message().find(needle) == std::string::npos) {
    return testing::AssertionFailure() << "\"" << s.message() << "\" does not mention \"" << needle << "\"";
  }
  return testing::AssertionSuccess();
}

TEST(Format, NamesRoundTrip) {
  for (Format f : {Format::kRaw, Format::kQcow2}) {
    auto parsed = ParseFormat(FormatName(f));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_STREQ(FormatName(Format::kRaw), "raw");
  EXPECT_STREQ(FormatName(Format::kQcow2), "qcow2");
}

TEST(Format, UnknownNamesListTheSupportedOnes) {
  for (const char* name : {"vmdk", "QCOW2", "", "raw "}) {
    auto parsed = ParseFormat(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().message(),
              "unknown disk format \"" + std::string(name) + "\": supported formats are raw, qcow2");
  }
}

class InspectTest : public testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string Write(const std::string& name, const std::string& data) {
    EXPECT_TRUE(WriteFileAtomic(Path(name), data).ok());
    return Path(name);
  }
  // Creates a qcow2 with qemu-img (tests call REQUIRE_QEMU_IMG first).
  std::string Qcow2(const std::string& name, std::vector<std::string> opts, const std::string& size) {
    std::vector<std::string> argv = {"qemu-img", "create", "-q", "-f", "qcow2"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back(Path(name));
    argv.push_back(size);
    auto r = RunChecked(argv);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return Path(name);
  }
  bool HaveQemuImg() const {
    auto r = RunProcess({"qemu-img", "--version"});
    return r.ok() && r->exit_code == 0;
  }

  TempDir dir_;
};

#define REQUIRE_QEMU_IMG() \
  if (!HaveQemuImg()) GTEST_SKIP() << "qemu-img not found: install qemu-utils to run this test"

TEST_F(InspectTest, RawFile) {
  std::string path = Write("disk.img", std::string(1 << 20, 'x'));
  for (std::optional<Format> declared : {std::optional<Format>(), std::optional(Format::kRaw)}) {
    auto info = Inspect(path, declared);
    ASSERT_TRUE(info.ok()) << info.status().message();
    EXPECT_EQ(info->format, Format::kRaw);
    EXPECT_EQ(info->virtual_size, 1u << 20);
    EXPECT_EQ(info->file_size, 1u << 20);
  }
}

TEST_F(InspectTest, SparseRawFileLargerThanTheProbe) {
  std::string path = Write("disk.img", "");
  ASSERT_EQ(::truncate(path.c_str(), 10 << 20), 0);
  auto info = Inspect(path);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->virtual_size, 10u << 20);
}

TEST_F(InspectTest, RawDeclaredQcow2IsRefused) {
  std::string path = Write("disk.img", std::string(4096, '\0'));
  EXPECT_EQ(Inspect(path, Format::kQcow2).status().message(),
            path + ": declared qcow2 but the file is raw (no qcow2 header)");
}

TEST_F(InspectTest, EmptyOrUnalignedRawIsRefused) {
  EXPECT_TRUE(FailsNaming(Inspect(Write("empty.img", "")).status(), Path("empty.img"), "raw disk is empty"));
  EXPECT_TRUE(FailsNaming(Inspect(Write("odd.img", std::string(1000, 'x'))).status(), Path("odd.img"),
                          "raw disk size 1000 is not a multiple of 512"));
}

TEST_F(InspectTest, NotARegularFileIsRefused) {
  EXPECT_TRUE(FailsNaming(Inspect(dir_.path()).status(), dir_.path(), "not a regular file (a directory)"));
  std::string fifo = Path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(FailsNaming(Inspect(fifo).status(), fifo, "not a regular file (a FIFO)"));
  EXPECT_TRUE(FailsNaming(Inspect("/dev/null").status(), "/dev/null", "a character device"));
}

TEST_F(InspectTest, MissingFileIsNotFound) {
  auto info = Inspect(Path("missing.img"));
  EXPECT_TRUE(FailsNaming(info.status(), Path("missing.img"), "No such file or directory"));
  EXPECT_EQ(info.status().code(), Code::kNotFound);
}

TEST_F(InspectTest, QcowMagicOnGarbageIsRefusedNotTakenAsRaw) {
  std::string path = Write("disk.img", std::string("QFI\xfb", 4) + std::string(1020, '\0'));
  EXPECT_TRUE(FailsNaming(Inspect(path).status(), path, "qcow2 version 0 is not supported"));
  EXPECT_TRUE(FailsNaming(Inspect(path, Format::kRaw).status(), path, "refusing to treat a qcow2 as raw"));
}

TEST_F(InspectTest, CleanQcow2) {
  REQUIRE_QEMU_IMG();
  std::string path = Qcow2("disk.qcow2", {}, "100M");
  for (std::optional<Format> declared : {std::optional<Format>(), std::optional(Format::kQcow2)}) {
    auto info = Inspect(path, declared);
    ASSERT_TRUE(info.ok()) << info.status().message();
    EXPECT_EQ(info->format, Format::kQcow2);
    EXPECT_EQ(info->virtual_size, 100u << 20);
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(info->file_size, static_cast<uint64_t>(st.st_size));
  }
}

TEST_F(InspectTest, CleanQcow2Version2WithLargeClusters) {
  REQUIRE_QEMU_IMG();
  std::string path = Qcow2("disk.qcow2", {"-o", "compat=0.10,cluster_size=2M"}, "5G");
  auto info = Inspect(path, Format::kQcow2);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->virtual_size, 5ull << 30);
}

TEST_F(InspectTest, Qcow2DeclaredRawIsRefused) {
  REQUIRE_QEMU_IMG();
  std::string path = Qcow2("disk.qcow2", {}, "1M");
  EXPECT_EQ(Inspect(path, Format::kRaw).status().message(),
            path + ": declared raw but the file is a qcow2 image: refusing to treat a qcow2 as raw");
}

TEST_F(InspectTest, Qcow2WithABackingFileIsRefused) {
  REQUIRE_QEMU_IMG();
  std::string base = Write("base.raw", std::string(1 << 20, '\0'));
  std::string path = Qcow2("disk.qcow2", {"-b", base, "-F", "raw"}, "1M");
  EXPECT_TRUE(FailsNaming(Inspect(path, Format::kQcow2).status(), path,
                          "qcow2 has a backing file \"" + base + "\": refused"));
}

TEST_F(InspectTest, Qcow2WithAnExternalDataFileIsRefused) {
  REQUIRE_QEMU_IMG();
  std::string path = Qcow2("disk.qcow2", {"-o", "data_file=" + Path("data.raw")}, "1M");
  EXPECT_TRUE(FailsNaming(Inspect(path).status(), path, "external data file"));
}

TEST_F(InspectTest, HugeQcow2IsRefused) {
  REQUIRE_QEMU_IMG();
  std::string path = Qcow2("disk.qcow2", {}, "20T");
  EXPECT_TRUE(FailsNaming(Inspect(path).status(), path, "over the limit"));
}

TEST_F(InspectTest, TruncatedQcow2IsRefused) {
  REQUIRE_QEMU_IMG();
  std::string path = Qcow2("disk.qcow2", {}, "1M");
  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  EXPECT_TRUE(FailsNaming(Inspect(path).status(), path, "truncated"));
}

}  // namespace
}  // namespace regdisk::disk
