#include "oci/digest.h"

#include <gtest/gtest.h>

#include <string>

namespace regdisk::oci {
namespace {

const std::string kHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";  // sha256("")

TEST(Digest, ParsesValid) {
  auto d = Digest::Parse("sha256:" + kHex);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->hex(), kHex);
  EXPECT_EQ(d->str(), "sha256:" + kHex);
  EXPECT_EQ(d->algorithm(), "sha256");
  EXPECT_EQ(d->short_hex(), "e3b0c44298fc");
  EXPECT_FALSE(d->empty());
}

TEST(Digest, OfHashesContent) {
  EXPECT_EQ(Digest::Of("").str(), "sha256:" + kHex);
  EXPECT_EQ(Digest::Of("abc").hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Digest::FromHex(kHex), *Digest::Parse("sha256:" + kHex));
  EXPECT_TRUE(Digest().empty());
}

TEST(Digest, RejectsMalformed) {
  const std::string hex63 = kHex.substr(1);
  std::string upper = kHex;
  upper[0] = 'E';
  const std::string cases[] = {
      "",
      "sha256",
      "sha256:",
      kHex,                    // no algorithm
      "sha256:" + hex63,       // too short
      "sha256:" + kHex + "0",  // too long
      "sha256:" + upper,       // uppercase hex
      "sha256:" + kHex.substr(0, 63) + "g",
      "SHA256:" + kHex,
      "sha512:" + kHex + kHex,  // valid in OCI, not accepted here
      "md5:d41d8cd98f00b204e9800998ecf8427e",
      "sha256:../../etc/passwd",
      "sha256:../../../../../../../../../../../../../../../../../../../../etc/passwd",
      "sha256:" + kHex.substr(0, 60) + "/../",
      "sha256:" + kHex.substr(0, 63) + "\n",
      "sha256:" + kHex.substr(0, 63) + std::string(1, '\0'),
      " sha256:" + kHex,
      "sha256:" + kHex + " ",
      "sha256::" + hex63,
      "sha256:" + kHex + "@",
  };
  for (const auto& s : cases) {
    auto d = Digest::Parse(s);
    EXPECT_FALSE(d.ok()) << "accepted \"" << s << "\"";
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
      EXPECT_TRUE(d.status().message().starts_with("invalid digest \"")) << d.status().message();
    }
  }
}

TEST(Digest, Orders) {
  auto a = *Digest::Parse("sha256:" + std::string(64, 'a'));
  auto b = *Digest::Parse("sha256:" + std::string(64, 'b'));
  EXPECT_LT(a, b);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace regdisk::oci
