#include "disk/qcow2.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "disk/format.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::disk {
namespace {

// Header field offsets from the qcow2 spec.
constexpr size_t kVersion = 4, kBackingOffset = 8, kBackingSize = 16, kClusterBits = 20, kSize = 24,
                 kCryptMethod = 32, kIncompatible = 72, kHeaderLength = 100, kCompressionType = 104;

// A qcow2 header built byte by byte: version 3, 64 KiB clusters, 1 GiB,
// header_length 104 and the extension end marker right after it, in a
// 4 KiB buffer of zeros.
class Header {
 public:
  Header() : b_(4096, '\0') {
    Put32(0, kQcow2Magic).Put32(kVersion, 3).Put32(kClusterBits, 16).Put64(kSize, 1 << 30);
    Put32(96, 4).Put32(kHeaderLength, 104);
  }
  Header& Put32(size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i) b_.at(off + i) = static_cast<char>(v >> (24 - 8 * i));
    return *this;
  }
  Header& Put64(size_t off, uint64_t v) {
    return Put32(off, v >> 32).Put32(off + 4, static_cast<uint32_t>(v));
  }
  Header& PutBytes(size_t off, std::string_view s) {
    b_.replace(off, s.size(), s);
    return *this;
  }
  // Writes a header extension at `off`; returns the offset after its padding.
  size_t Ext(size_t off, uint32_t type, std::string_view data) {
    Put32(off, type).Put32(off + 4, static_cast<uint32_t>(data.size())).PutBytes(off + 8, data);
    return off + 8 + (data.size() + 7) / 8 * 8;
  }
  Header& Backing(uint64_t offset, std::string_view name) {
    PutBytes(offset, name);
    return Put64(kBackingOffset, offset).Put32(kBackingSize, static_cast<uint32_t>(name.size()));
  }
  const std::string& str() const { return b_; }

 private:
  std::string b_;
};

// A version 2 header: 72 bytes and the end marker.
Header V2() {
  Header h;
  h.Put32(kVersion, 2).Put32(96, 0).Put32(kHeaderLength, 0);
  return h;
}

Status ParseAndCheck(std::string_view bytes) {
  auto h = Qcow2Header::Parse(bytes);
  return h.ok() ? h->CheckSafe() : h.status();
}

testing::AssertionResult Mentions(const Status& s, std::string_view needle) {
  if (s.ok()) return testing::AssertionFailure() << "expected an error about \"" << needle << "\", got OK";
  if (s.message().find(needle) == std::string::npos) {
    return testing::AssertionFailure() << "\"" << s.message() << "\" does not mention \"" << needle << "\"";
  }
  return testing::AssertionSuccess();
}

TEST(Qcow2Header, ParsesAMinimalVersion3Header) {
  auto h = Qcow2Header::Parse(Header().str());
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->version, 3u);
  EXPECT_EQ(h->cluster_bits, 16u);
  EXPECT_EQ(h->size, 1u << 30);
  EXPECT_EQ(h->header_length, 104u);
  EXPECT_TRUE(h->backing_file.empty());
  EXPECT_TRUE(h->CheckSafe().ok());
}

TEST(Qcow2Header, ParsesAMinimalVersion2Header) {
  auto h = Qcow2Header::Parse(V2().str());
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->version, 2u);
  EXPECT_EQ(h->header_length, 72u);
  EXPECT_TRUE(h->CheckSafe().ok());
}

TEST(Qcow2Header, RefusesBadMagic) {
  Header h;
  h.Put32(0, 0x514649fa);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "bad magic 0x514649fa"));
}

TEST(Qcow2Header, RefusesVersions1And4) {
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    Header h;
    h.Put32(kVersion, v);
    auto s = ParseAndCheck(h.str());
    EXPECT_TRUE(Mentions(s, "version " + std::to_string(v))) << v;
    EXPECT_EQ(s.code(), Code::kUnsupported);
  }
}

TEST(Qcow2Header, RefusesHeaderLengthOutOfRange) {
  for (uint32_t len : {0u, 72u, 96u, 108u, 105u, 0xfffffff8u}) {
    Header h;
    h.Put32(kHeaderLength, len);
    EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "header_length " + std::to_string(len))) << len;
  }
  Header h;  // 512-byte clusters: the header must fit in the first one
  h.Put32(kClusterBits, 9).Put32(kHeaderLength, 520);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "does not fit in the first cluster"));
}

TEST(Qcow2Header, RefusesClusterBitsOutOfRange) {
  for (uint32_t bits : {0u, 8u, 22u, 63u, 64u, 0xffffffffu}) {
    Header h;
    h.Put32(kClusterBits, bits);
    EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "cluster_bits " + std::to_string(bits))) << bits;
  }
  for (uint32_t bits : {9u, 21u}) {
    Header h;
    h.Put32(kClusterBits, bits);
    EXPECT_TRUE(ParseAndCheck(h.str()).ok()) << bits;
  }
}

TEST(Qcow2Header, TruncatedHeadersOfEveryLengthAreRefused) {
  const std::string v3 = Header().str(), v2 = V2().str();
  for (size_t n = 0; n < 112; ++n) {  // 104 bytes of header, 8 of end marker
    EXPECT_TRUE(Mentions(ParseAndCheck(v3.substr(0, n)), "truncated")) << n;
  }
  EXPECT_TRUE(ParseAndCheck(v3.substr(0, 112)).ok());
  for (size_t n = 0; n < 80; ++n) EXPECT_TRUE(Mentions(ParseAndCheck(v2.substr(0, n)), "truncated")) << n;
  EXPECT_TRUE(ParseAndCheck(v2.substr(0, 80)).ok());
}

TEST(Qcow2Header, ABackingFileParsesButIsRefused) {
  Header h;
  h.Ext(h.Ext(104, 0xe2792aca, "raw"), 0, "");
  h.Backing(512, "/etc/shadow");
  auto parsed = Qcow2Header::Parse(h.str());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->backing_file, "/etc/shadow");
  EXPECT_EQ(parsed->backing_format, "raw");
  Status s = parsed->CheckSafe();
  EXPECT_EQ(s.message(), "qcow2 has a backing file \"/etc/shadow\": refused, a disk must be self-contained");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

TEST(Qcow2Header, ABackingFileNameIsEscapedOnOneLine) {
  Header h;
  h.Backing(512, std::string("a\nb\"\0", 5));
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), R"("a\x0ab\"\x00")"));
}

TEST(Qcow2Header, AnEmptyBackingFileNameIsStillRefused) {
  Header h;
  h.Put64(kBackingOffset, 512);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "backing file \"\""));
}

TEST(Qcow2Header, RefusesABackingFileNameOverQemusLimit) {
  Header h;
  h.Backing(512, std::string(1024, 'a'));
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "1024 bytes, over the limit of 1023"));
  h.Backing(512, std::string(1023, 'a'));
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "backing file \"aaa"));
}

TEST(Qcow2Header, RefusesABackingFileOutsideTheBufferOrCluster) {
  Header h;
  h.Put64(kBackingOffset, 4090).Put32(kBackingSize, 100);  // inside the cluster, past the 4 KiB buffer
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "truncated: the backing file name needs 4190 bytes"));
  for (uint64_t off : {uint64_t{65536} - 50, uint64_t{1} << 40, ~uint64_t{0}, ~uint64_t{0} - 5}) {
    h.Put64(kBackingOffset, off);
    EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "outside the first cluster")) << off;
  }
}

TEST(Qcow2Header, RefusesAnExternalDataFileWithItsName) {
  Header h;
  h.Put64(kIncompatible, 1 << 2);
  h.Ext(h.Ext(104, 0x44415441, "/dev/sda"), 0, "");
  auto parsed = Qcow2Header::Parse(h.str());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE(parsed->has_external_data_file);
  EXPECT_EQ(parsed->data_file, "/dev/sda");
  EXPECT_TRUE(Mentions(parsed->CheckSafe(), "external data file \"/dev/sda\": refused"));
}

TEST(Qcow2Header, RefusesTheExternalDataFileBitWithoutAName) {
  Header h;
  h.Put64(kIncompatible, 1 << 2);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "external data file bit set: refused"));
}

TEST(Qcow2Header, RefusesADataFileNameWithoutTheBit) {
  Header h;
  h.Ext(h.Ext(104, 0x44415441, "/dev/sda"), 0, "");
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "external data file \"/dev/sda\""));
}

TEST(Qcow2Header, RefusesDuplicateExtensions) {
  Header h;
  h.Ext(h.Ext(h.Ext(104, 0x44415441, "a"), 0x44415441, "b"), 0, "");
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "0x44415441 appears twice"));
}

TEST(Qcow2Header, SkipsUnknownExtensionsAndTheFeatureTable) {
  Header h;
  h.Ext(h.Ext(h.Ext(104, 0x6803f857, std::string(48, 'x')), 0x12345678, "abcdefghi"), 0, "");
  EXPECT_TRUE(ParseAndCheck(h.str()).ok());
}

TEST(Qcow2Header, RefusesExtensionLengthsThatOverflow) {
  for (uint32_t len : {0xffffffffu, 0xfffffff9u, 0xfffffff8u, 65536u, 65536u - 104u - 8u + 1u}) {
    Header h;
    h.Put32(104, 0x12345678).Put32(108, len);
    EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "runs into the first cluster (65536 bytes)")) << len;
  }
}

TEST(Qcow2Header, RefusesExtensionsRunningPastTheBufferOrIntoTheBackingName) {
  Header h;
  h.Put32(104, 0x12345678).Put32(108, 8000);  // fits the cluster, not the 4 KiB buffer
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "truncated: the header extension at offset 104"));
  h.Put32(108, 9).Backing(120, "base");
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "runs into the backing file name at offset 120"));
  h.Put32(108, 0).Backing(110, "base");  // not even room for the extension's type and length
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "offset 104 runs into the backing file name at offset 110"));
}

TEST(Qcow2Header, ExtensionsMustEndInsideTheFirstCluster) {
  Header h;  // 512-byte clusters filled with extensions up to the last 8 bytes
  h.Put32(kClusterBits, 9);
  size_t off = 104;
  while (off + 16 <= 512) off = h.Ext(off, 0x12345678, "abcdefgh");
  ASSERT_EQ(off, 504u);
  h.Put32(off, 0x12345678).Put32(off + 4, 1);  // one byte of data, past the cluster
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "runs into the first cluster (512 bytes)"));
}

TEST(Qcow2Header, RefusesUnknownIncompatibleBits) {
  for (int bit : {5, 7, 63}) {
    Header h;
    h.Put64(kIncompatible, uint64_t{1} << bit);
    auto s = ParseAndCheck(h.str());
    EXPECT_TRUE(Mentions(s, "unknown incompatible feature bits")) << bit;
    EXPECT_EQ(s.code(), Code::kUnsupported);
  }
  Header h;
  h.Put64(kIncompatible, 1 << 7);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "0x80"));
}

TEST(Qcow2Header, RefusesDirtyAndCorruptImages) {
  Header h;
  h.Put64(kIncompatible, 1 << 0);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "dirty"));
  h.Put64(kIncompatible, 1 << 1);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "marked corrupt"));
}

TEST(Qcow2Header, RefusesEncryption) {
  Header h;
  h.Put32(kCryptMethod, 1);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "encrypted (AES)"));
  h.Put32(kCryptMethod, 2);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "encrypted (LUKS)"));
  h.Put32(kCryptMethod, 3);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "encryption method 3 is unknown"));
  Header v2 = V2();
  v2.Put32(kCryptMethod, 1);
  EXPECT_TRUE(Mentions(ParseAndCheck(v2.str()), "encrypted (AES)"));
}

TEST(Qcow2Header, RefusesVirtualSizeZeroOrHuge) {
  Header h;
  h.Put64(kSize, 0);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "virtual size is 0"));
  h.Put64(kSize, kMaxVirtualSize + 1);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "virtual size 17592186044417 bytes is over the limit"));
  h.Put64(kSize, ~uint64_t{0});
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "over the limit"));
  h.Put64(kSize, kMaxVirtualSize);
  EXPECT_TRUE(ParseAndCheck(h.str()).ok());
}

TEST(Qcow2Header, AllowsZstdCompressionAndExtendedL2) {
  Header h;
  h.Put32(kHeaderLength, 112).Put64(kIncompatible, (1 << 3) | (1 << 4)).PutBytes(kCompressionType, "\x01");
  h.Ext(112, 0, "");
  auto parsed = Qcow2Header::Parse(h.str());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->compression_type, 1);
  EXPECT_TRUE(parsed->CheckSafe().ok());
}

TEST(Qcow2Header, ChecksTheCompressionTypeAgainstItsBit) {
  Header h;  // the bit without the field
  h.Put64(kIncompatible, 1 << 3);
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "compression_type is zlib or absent"));
  h.Put32(kHeaderLength, 112).PutBytes(kCompressionType, "\x02");
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "compression type 2 is unknown"));
  h.Put64(kIncompatible, 0).PutBytes(kCompressionType, "\x01");
  EXPECT_TRUE(Mentions(ParseAndCheck(h.str()), "feature bit is not set"));
}

// Every single-byte corruption of a valid header with a backing file and
// extensions parses or fails cleanly (the fuzzer does this at scale).
TEST(Qcow2Header, SingleByteCorruptionsNeverMisbehave) {
  Header h;
  h.Ext(h.Ext(h.Ext(104, 0xe2792aca, "raw"), 0x44415441, "data"), 0, "");
  h.Backing(200, "base.img");
  const std::string good = h.str().substr(0, 256);
  for (size_t i = 0; i < good.size(); ++i) {
    for (unsigned char v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(v);
      (void)ParseAndCheck(bad);
    }
  }
}

// Images made by the real qemu-img.
class Qcow2FromQemuImg : public testing::Test {
 protected:
  void SetUp() override {
    auto r = RunProcess({"qemu-img", "--version"});
    if (!r.ok() || r->exit_code != 0) GTEST_SKIP() << "qemu-img not found: install qemu-utils to run these";
  }
  // Creates `name` with the options given; returns its parsed header.
  StatusOr<Qcow2Header> Create(const std::string& name, std::vector<std::string> opts,
                               const std::string& size = "64M") {
    std::vector<std::string> argv = {"qemu-img", "create", "-q", "-f", "qcow2"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back(Path(name));
    argv.push_back(size);
    auto r = RunChecked(argv);
    if (!r.ok()) return r.status();
    ASSIGN_OR_RETURN(std::string bytes, ReadFile(Path(name)));
    return Qcow2Header::Parse(bytes);
  }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  TempDir dir_;
};

TEST_F(Qcow2FromQemuImg, DefaultIsACleanVersion3) {
  auto h = Create("a.qcow2", {});
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->version, 3u);
  EXPECT_EQ(h->cluster_bits, 16u);
  EXPECT_EQ(h->size, 64u << 20);
  EXPECT_EQ(h->header_length, 112u);
  EXPECT_TRUE(h->CheckSafe().ok()) << h->CheckSafe().message();
}

TEST_F(Qcow2FromQemuImg, Compat010IsVersion2) {
  auto h = Create("a.qcow2", {"-o", "compat=0.10"}, "3G");
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->version, 2u);
  EXPECT_EQ(h->header_length, 72u);
  EXPECT_EQ(h->size, 3ull << 30);
  EXPECT_TRUE(h->CheckSafe().ok()) << h->CheckSafe().message();
}

TEST_F(Qcow2FromQemuImg, ZstdAndExtendedL2AndOtherClusterSizesAreAllowed) {
  auto zstd = Create("z.qcow2", {"-o", "compression_type=zstd"});
  ASSERT_TRUE(zstd.ok()) << zstd.status().message();
  EXPECT_EQ(zstd->compression_type, 1);
  EXPECT_TRUE(zstd->CheckSafe().ok()) << zstd->CheckSafe().message();
  auto l2 = Create("l2.qcow2", {"-o", "extended_l2=on"});
  ASSERT_TRUE(l2.ok()) << l2.status().message();
  EXPECT_EQ(l2->incompatible_features, 1u << 4);
  EXPECT_TRUE(l2->CheckSafe().ok()) << l2->CheckSafe().message();
  for (const char* cs : {"512", "2M"}) {
    auto h = Create("c.qcow2", {"-o", std::string("cluster_size=") + cs});
    ASSERT_TRUE(h.ok()) << cs << ": " << h.status().message();
    EXPECT_TRUE(h->CheckSafe().ok()) << cs;
  }
}

TEST_F(Qcow2FromQemuImg, BackingFileIsRefusedInBothVersions) {
  ASSERT_TRUE(WriteFileAtomic(Path("base.raw"), std::string(1 << 20, '\0')).ok());
  for (const char* compat : {"1.1", "0.10"}) {
    auto h = Create("overlay.qcow2",
                    {"-o", std::string("compat=") + compat, "-b", Path("base.raw"), "-F", "raw"});
    ASSERT_TRUE(h.ok()) << compat << ": " << h.status().message();
    EXPECT_EQ(h->backing_file, Path("base.raw"));
    EXPECT_EQ(h->backing_format, "raw");
    EXPECT_TRUE(Mentions(h->CheckSafe(), "backing file \"" + Path("base.raw") + "\": refused")) << compat;
  }
}

TEST_F(Qcow2FromQemuImg, ExternalDataFileIsRefused) {
  auto h = Create("a.qcow2", {"-o", "data_file=" + Path("data.raw")});
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_TRUE(h->has_external_data_file);
  EXPECT_EQ(h->data_file, Path("data.raw"));
  EXPECT_TRUE(Mentions(h->CheckSafe(), "external data file \"" + Path("data.raw") + "\": refused"));
}

TEST_F(Qcow2FromQemuImg, EncryptionIsRefused) {
  // Legacy AES: LUKS would spend seconds on its key derivation benchmark,
  // and fails with a short iter-time on a busy machine.
  auto h = Create("a.qcow2", {"--object", "secret,id=sec0,data=123456", "-o",
                              "encrypt.format=aes,encrypt.key-secret=sec0"});
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_TRUE(Mentions(h->CheckSafe(), "encrypted (AES)"));
}

TEST_F(Qcow2FromQemuImg, HugeVirtualSizeIsRefused) {
  auto h = Create("a.qcow2", {}, "17T");
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_TRUE(Mentions(h->CheckSafe(), "over the limit"));
}

}  // namespace
}  // namespace regdisk::disk
