#include "build/dockerfile.h"

#include <gtest/gtest.h>

namespace regdisk::build {
namespace {

TEST(Dockerfile, SeedForm) {
  auto df = ParseDockerfile("FROM kubevirt/registry-disk-v1alpha\nADD fedora25.qcow2 /disk\n");
  ASSERT_TRUE(df.ok()) << df.status().ToString();
  EXPECT_EQ(df->from, "kubevirt/registry-disk-v1alpha");
  ASSERT_EQ(df->copies.size(), 1u);
  EXPECT_EQ(df->copies[0].source, "fedora25.qcow2");
  EXPECT_EQ(df->copies[0].destination, "/disk/");
  EXPECT_EQ(df->copies[0].line, 2);
}

TEST(Dockerfile, FullSubset) {
  const char* text =
      "# syntax comment\n"
      "from scratch\n"
      "\n"
      "LABEL a=1 \"b=two words\" \\\n"
      "      c=3\n"
      "ENV LEGACY value with spaces\n"
      "ENV K=V\n"
      "COPY --chown=107:107 ./images/../images/x.img /disk/root.img\n"
      "ADD [\"a.raw\", \"b.qcow2\", \"/disk/\"]\n";
  auto df = ParseDockerfile(text);
  ASSERT_FALSE(df.ok());  // ".." refused even when it would stay inside
  EXPECT_NE(df.status().message().find("Dockerfile:8: COPY"), std::string::npos) << df.status().message();

  std::string fixed = text;
  fixed.replace(fixed.find("./images/../images/"), 19, "./images/");
  df = ParseDockerfile(fixed);
  ASSERT_TRUE(df.ok()) << df.status().ToString();
  EXPECT_EQ(df->from, "scratch");
  ASSERT_EQ(df->labels.size(), 3u);
  EXPECT_EQ(df->labels[1], std::make_pair(std::string("b"), std::string("two words")));
  EXPECT_EQ(df->labels[2].first, "c");
  ASSERT_EQ(df->env.size(), 2u);
  EXPECT_EQ(df->env[0].second, "value with spaces");
  ASSERT_EQ(df->copies.size(), 3u);
  EXPECT_EQ(df->copies[0].source, "images/x.img");
  EXPECT_EQ(df->copies[0].destination, "/disk/root.img");
  EXPECT_EQ(df->copies[0].chown, "107:107");
  EXPECT_EQ(df->copies[2].source, "b.qcow2");
  EXPECT_EQ(df->copies[2].line, 9);
}

struct Bad {
  const char* text;
  const char* expect;  // substring of the error
};

class DockerfileBad : public testing::TestWithParam<Bad> {};

TEST_P(DockerfileBad, RefusedWithLine) {
  auto df = ParseDockerfile(GetParam().text, "ctx/Dockerfile");
  ASSERT_FALSE(df.ok()) << GetParam().text;
  EXPECT_NE(df.status().message().find(GetParam().expect), std::string::npos) << df.status().message();
  EXPECT_EQ(df.status().message().find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Table, DockerfileBad,
    testing::Values(Bad{"FROM x\nRUN rm -rf /\n", "ctx/Dockerfile:2: RUN is not supported"},
                    Bad{"FROM x\nADD a /etc/passwd\n", "ctx/Dockerfile:2: ADD: destination \"/etc/passwd\""},
                    Bad{"FROM x\nADD a /disk/sub/b\n", "must be /disk/ or /disk/NAME"},
                    Bad{"FROM x\nADD a /disk/..\n", "must be /disk/ or /disk/NAME"},
                    Bad{"FROM x\nADD a /diskette\n", "must be /disk/"},
                    Bad{"FROM x\nADD ../secret /disk/\n", "outside the build context"},
                    Bad{"FROM x\nADD /etc/shadow /disk/\n", "is absolute"},
                    Bad{"FROM x\nADD https://example.com/d.img /disk/\n", "is a URL"},
                    Bad{"FROM x\nADD *.img /disk/\n", "wildcards"},
                    Bad{"FROM x\nADD a b /disk/one\n", "several sources"},
                    Bad{"FROM x\nADD a\n", "needs SOURCE"},
                    Bad{"FROM x\nADD --from=build a /disk/\n", "--from=build is not supported"},
                    Bad{"FROM x\nADD [\"a\", 1] /disk/\n", "JSON"},
                    Bad{"FROM x\nLABEL novalue\n", "not KEY=VALUE"},
                    Bad{"FROM x\nLABEL a=\"open\n", "unterminated quote"},
                    Bad{"ADD a /disk/\n", "ctx/Dockerfile:1: ADD before FROM"},
                    Bad{"FROM a\nFROM b\n", "multi-stage"},
                    Bad{"FROM a AS b\n", "FROM takes one image"},
                    Bad{"# only a comment\n", "no FROM"},
                    Bad{"", "no FROM"}));

TEST(Dockerfile, NulByteRefused) {
  auto df = ParseDockerfile(std::string_view("FROM x\0\n", 8));
  ASSERT_FALSE(df.ok());
  EXPECT_NE(df.status().message().find("NUL"), std::string::npos);
}

TEST(Dockerfile, LineNumbersCountContinuationsAndComments) {
  auto df = ParseDockerfile("FROM x\n# c\nLABEL a=1 \\\n  b=2\n\nMAINTAINER me\n");
  ASSERT_FALSE(df.ok());
  EXPECT_NE(df.status().message().find("Dockerfile:6: MAINTAINER"), std::string::npos) << df.status().message();
}

TEST(Dockerfile, CrlfAndCase) {
  auto df = ParseDockerfile("From scratch\r\nadd disk.img /disk/\r\n");
  ASSERT_TRUE(df.ok()) << df.status().ToString();
  EXPECT_EQ(df->copies.at(0).source, "disk.img");
}

TEST(Dockerfile, TooLarge) {
  std::string big = "FROM x\n" + std::string(1 << 20, '#');
  EXPECT_FALSE(ParseDockerfile(big).ok());
}

}  // namespace
}  // namespace regdisk::build
