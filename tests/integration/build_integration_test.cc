// regdisk build, images, inspect and gc, checked with the real peer tools:
// skopeo and umoci must accept what regdisk writes, the OCI JSON schemas
// must validate it, and bad input must leave the store untouched.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "harness.h"

namespace regdisk::testing {
namespace {

namespace fs = std::filesystem;

class BuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = work_.path() + "/store";
    disk_ = work_.path() + "/disk.img";
    MakeSparseFile(disk_, 64 << 20, {0, 1 << 20, 40 << 20}, std::string(4096, 'x') + "regdisk");
  }
  ProcessResult Rd(std::vector<std::string> args) {
    args.insert(args.begin(), {"--store", store_});
    return Regdisk(args);
  }
  // Blobs and tags in the store, to prove that a failure left nothing.
  std::string StoreState() {
    std::string s = std::to_string(CountEntries(store_ + "/blobs/sha256")) + " blobs, " +
                    std::to_string(CountEntries(store_ + "/.regdisk-tmp")) + " temps, index ";
    auto idx = ReadFile(store_ + "/index.json");
    return s + (idx.ok() ? *idx : "missing");
  }
  std::string MakeQcow2(const std::string& name, const std::vector<std::string>& extra = {}) {
    std::string path = work_.path() + "/" + name;
    std::vector<std::string> argv = {"qemu-img", "create", "-q", "-f", "qcow2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), {path, "32M"});
    auto r = RunCmd(argv);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return path;
  }
  TempDir work_{"regdisk-it"};
  std::string store_, disk_;
};

TEST_F(BuildTest, SparseGigabyteRawIsSmallAndReproducible) {
  std::string big = work_.path() + "/big.raw";
  MakeSparseFile(big, 1ull << 30, {0, 512ull << 20, (1ull << 30) - 4096}, std::string(4096, 'd'));
  auto a = Rd({"-q", "build", big, "-t", "vmdisks/big:a"});
  ASSERT_EQ(a.exit_code, 0) << Describe(a);
  auto b = Rd({"-q", "build", big, "-t", "vmdisks/big:b"});
  ASSERT_EQ(b.exit_code, 0) << Describe(b);
  EXPECT_EQ(a.out, b.out) << "same disk, different manifest digest";
  auto inspect = Rd({"inspect", "--json", "vmdisks/big:a"});
  ASSERT_EQ(inspect.exit_code, 0) << Describe(inspect);
  EXPECT_NE(inspect.out.find("\"virtualSize\": 1073741824"), std::string::npos) << inspect.out;
  // The layer is tiny: only 12 KiB of data in 1 GiB.
  uint64_t total = 0;
  for (auto& e : fs::directory_iterator(store_ + "/blobs/sha256")) total += e.file_size();
  EXPECT_LT(total, 1u << 20) << "store holds " << total << " bytes for a 1 GiB sparse disk";
}

TEST_F(BuildTest, SkopeoUmociAndSchemasAcceptTheImage) {
  for (const std::string compress : {"gzip", "zstd", "none"}) {
    SCOPED_TRACE(compress);
    std::string layout = work_.path() + "/layout-" + compress;
    auto r = Regdisk({"build", disk_, "--compress", compress, "-t", "oci:" + layout + ":v1"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);

    auto v = RunCmd({"/usr/bin/python3", REGDISK_SOURCE_DIR "/tests/tools/validate_oci.py", layout, "v1"});
    EXPECT_EQ(v.exit_code, 0) << Describe(v);

    auto sk = RunCmd({"skopeo", "inspect", "oci:" + layout + ":v1"});
    EXPECT_EQ(sk.exit_code, 0) << Describe(sk);
    EXPECT_NE(sk.out.find("\"Layers\""), std::string::npos) << sk.out;

    if (compress == "zstd") continue;  // Debian's umoci 0.4 predates zstd layers
    std::string bundle = work_.path() + "/bundle-" + compress;
    auto um = RunCmd({"umoci", "unpack", "--image", layout + ":v1", bundle});
    ASSERT_EQ(um.exit_code, 0) << Describe(um);
    std::string unpacked = bundle + "/rootfs/disk/disk.img";
    EXPECT_EQ(Sha256File(unpacked), Sha256File(disk_)) << "unpacked disk differs from the input";
    struct stat st;
    ASSERT_EQ(::stat(unpacked.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 107u);
    EXPECT_EQ(st.st_gid, 107u);
    EXPECT_EQ(st.st_mode & 07777, 0440u);
  }
}

TEST_F(BuildTest, Qcow2IsDetectedAndRecorded) {
  std::string q = MakeQcow2("disk.qcow2");
  auto r = Rd({"build", q, "-t", "vmdisks/q:1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto i = Rd({"inspect", "vmdisks/q:1"});
  ASSERT_EQ(i.exit_code, 0) << Describe(i);
  EXPECT_NE(i.out.find("/disk/disk.qcow2 (qcow2, 32.0 MiB virtual)"), std::string::npos) << i.out;
  auto images = Rd({"images"});
  EXPECT_NE(images.out.find("docker.io/vmdisks/q:1"), std::string::npos) << images.out;
}

TEST_F(BuildTest, ConvertRawToQcow2) {
  auto r = Rd({"build", disk_, "--convert", "qcow2", "-t", "vmdisks/c:1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto i = Rd({"inspect", "vmdisks/c:1"});
  EXPECT_NE(i.out.find("(qcow2, 64.0 MiB virtual)"), std::string::npos) << i.out;
}

TEST_F(BuildTest, DockerfileWorkflowOnABaseImage) {
  // The seed's workflow: FROM base + ADD disk /disk.
  std::string base_disk = work_.path() + "/base.raw";
  MakeSparseFile(base_disk, 1 << 20, {0}, "base");
  ASSERT_EQ(Rd({"build", base_disk, "-t", "kubevirt.io/registry-disk-v1alpha"}).exit_code, 0);
  std::string ctx = work_.path() + "/ctx";
  fs::create_directories(ctx);
  std::string q = MakeQcow2("ctx/fedora25.qcow2");
  std::ofstream(ctx + "/Dockerfile") << "FROM kubevirt.io/registry-disk-v1alpha\n"
                                        "ADD fedora25.qcow2 /disk\n"
                                        "LABEL org.example.os=fedora25\n";
  auto r = Rd({"build", "-f", ctx + "/Dockerfile", ctx, "-t", "vmdisks/fedora25:latest"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto i = Rd({"inspect", "--json", "vmdisks/fedora25"});
  ASSERT_EQ(i.exit_code, 0) << Describe(i);
  EXPECT_NE(i.out.find("/disk/fedora25.qcow2"), std::string::npos);
  EXPECT_NE(i.out.find("org.example.os"), std::string::npos);
  // Two layers: the base's and the disk's.
  EXPECT_NE(i.out.find("/disk/base.raw"), std::string::npos);
}

struct BadCase {
  const char* name;
  std::vector<std::string> args;  // {DISK} and {WORK} are substituted
  const char* expect;             // substring of the one-line error
};

TEST_F(BuildTest, BadInputFailsWithOneLineAndLeavesNothing) {
  std::string backing = MakeQcow2("backed.qcow2", {"-b", disk_, "-F", "raw"});
  std::string datafile = MakeQcow2("ext.qcow2", {"-o", "data_file=" + work_.path() + "/ext.data"});
  std::string ctx = work_.path() + "/badctx";
  fs::create_directories(ctx);
  fs::copy_file(disk_, ctx + "/disk.img");
  std::ofstream(ctx + "/Run.Dockerfile") << "FROM scratch\nADD disk.img /disk/\nRUN echo hi\n";
  std::ofstream(ctx + "/Etc.Dockerfile") << "FROM scratch\nADD disk.img /etc/\n";
  std::ofstream(ctx + "/Escape.Dockerfile") << "FROM scratch\nADD ../disk.img /disk/\n";
  fs::create_symlink("/etc/passwd", ctx + "/link.img");
  std::ofstream(ctx + "/Link.Dockerfile") << "FROM scratch\nADD link.img /disk/\n";
  // Make the store exist with one image, so "unchanged" is meaningful.
  ASSERT_EQ(Rd({"build", disk_, "-t", "vmdisks/ok:1"}).exit_code, 0);
  std::string before = StoreState();

  std::vector<BadCase> cases = {
      {"missing disk", {"build", work_.path() + "/nope.img", "-t", "x:1"}, "nope.img"},
      {"raw declared qcow2", {"build", disk_, "--format", "qcow2", "-t", "x:1"}, "qcow2"},
      {"backing file", {"build", backing, "-t", "x:1"}, "backing file"},
      {"external data file", {"build", datafile, "-t", "x:1"}, "data file"},
      {"bad reference", {"build", disk_, "-t", "Bad/Name:1"}, "Bad/Name"},
      {"bad format name", {"build", disk_, "--format", "vmdk", "-t", "x:1"}, "vmdk"},
      {"bad compression", {"build", disk_, "--compress", "lz4", "-t", "x:1"}, "lz4"},
      {"unsupported instruction", {"build", "-f", ctx + "/Run.Dockerfile", ctx, "-t", "x:1"}, ":3:"},
      {"ADD outside /disk", {"build", "-f", ctx + "/Etc.Dockerfile", ctx, "-t", "x:1"}, "/etc"},
      {"ADD escaping context", {"build", "-f", ctx + "/Escape.Dockerfile", ctx, "-t", "x:1"}, ".."},
      {"symlink out of context", {"build", "-f", ctx + "/Link.Dockerfile", ctx, "-t", "x:1"}, "outside"},
      {"missing base", {"build", disk_, "--base", "nothere/base:1", "-t", "x:1"}, "nothere"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = Rd(c.args);
    EXPECT_NE(r.exit_code, 0) << Describe(r);
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << Describe(r);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(StoreState(), before) << "the store changed";
  }
}

TEST_F(BuildTest, GcRemovesUntaggedImages) {
  ASSERT_EQ(Rd({"build", disk_, "-t", "a:1"}).exit_code, 0);
  ASSERT_EQ(Rd({"build", disk_, "--compress", "zstd", "-t", "b:1"}).exit_code, 0);
  int before = CountEntries(store_ + "/blobs/sha256");
  ASSERT_EQ(Rd({"rmi", "b:1"}).exit_code, 0);
  auto gc = Rd({"gc"});
  ASSERT_EQ(gc.exit_code, 0) << Describe(gc);
  // b's zstd layer, config and manifest go. (A v2 layer's tar holds its
  // chunk index, which records compressed positions, so b's diff_id and
  // config differ from a's.)
  EXPECT_EQ(CountEntries(store_ + "/blobs/sha256"), before - 3) << gc.out;
  EXPECT_EQ(Rd({"inspect", "a:1"}).exit_code, 0);
}

}  // namespace
}  // namespace regdisk::testing
