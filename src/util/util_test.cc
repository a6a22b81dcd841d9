#include <filesystem>
#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "util/fs.h"
#include "util/sha256.h"
#include "util/status.h"

namespace regdisk {
namespace {

TEST(Status, AnnotateAddsContext) {
  Status s = NotFound("no such file").Annotate("opening /x");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "opening /x: no such file");
  EXPECT_TRUE(OkStatus().Annotate("ctx").ok());
}

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd");
}

TEST(Escape, OneLineEscapesEveryTerminalControl) {
  // ESC (CSI and OSC), CR, BEL, DEL, an 8-bit CSI byte and U+009B (C1 CSI).
  EXPECT_EQ(OneLine("a\x1b[2J\x1b]0;title\x07\rb\x7f"), "a\\x1b[2J\\x1b]0;title\\x07\\x0db\\x7f");
  EXPECT_EQ(OneLine("\x9b" "31m"), "\\x9b31m");
  EXPECT_EQ(OneLine("\xc2\x9b" "31m"), "\\xc2\\x9b31m");
  // Valid UTF-8 outside the controls passes: names may be in any language.
  EXPECT_EQ(OneLine("d\xc3\xa9j\xc3\xa0 \xe2\x82\xac \xf0\x9f\x98\x80"), "d\xc3\xa9j\xc3\xa0 \xe2\x82\xac \xf0\x9f\x98\x80");
  // Truncated, overlong and out-of-range sequences do not.
  EXPECT_EQ(OneLine("\xe2\x82"), "\\xe2\\x82");
  EXPECT_EQ(OneLine("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(OneLine("\xf5\x80\x80\x80"), "\\xf5\\x80\\x80\\x80");
}

TEST(Escape, IsValidUtf8) {
  EXPECT_TRUE(IsValidUtf8("disk.img \xc3\xa9 \xf0\x9f\x98\x80 \x1b"));
  EXPECT_FALSE(IsValidUtf8("\xff.img"));
  EXPECT_FALSE(IsValidUtf8("\xc2\x9b"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
}

TEST(Escape, QuoteListIsBoundedAndEscaped) {
  EXPECT_EQ(QuoteList({}), "");
  EXPECT_EQ(QuoteList({"a", "b\x1b]0;x\x07"}), "\"a\", \"b\\x1b]0;x\\x07\"");
  std::vector<std::string> many;
  for (int i = 0; i < 20000; ++i) many.push_back(std::to_string(i));
  EXPECT_EQ(QuoteList(many, 3), "\"0\", \"1\", \"2\" and 19997 more");
  EXPECT_LT(QuoteList(many).size(), 100u);
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256::HexOf(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.FinishHex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AtomicFile, CommitPublishesAbandonLeavesNothing) {
  TempDir dir;
  std::string path = dir.path() + "/f";
  {
    auto f = AtomicFile::Create(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(f->Write("half").ok());
    EXPECT_FALSE(PathExists(path));
  }  // abandoned
  EXPECT_FALSE(PathExists(path));
  ASSERT_TRUE(WriteFileAtomic(path, "whole").ok());
  EXPECT_EQ(*ReadFile(path), "whole");
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  EXPECT_EQ(entries, 1) << "a temp file was left behind";
}

// Less durability syncs less, but publishes the same way: the whole file
// under its name, no temp file beside it.
TEST(AtomicFile, EveryDurabilityPublishesTheWholeFile) {
  TempDir dir;
  for (Durability d : {Durability::kDurable, Durability::kWhole, Durability::kNone}) {
    std::string path = dir.path() + "/f" + std::to_string(static_cast<int>(d));
    ASSERT_TRUE(WriteFileAtomic(path, "old", 0644, d).ok());
    ASSERT_TRUE(WriteFileAtomic(path, "new", 0644, d).ok());
    EXPECT_EQ(*ReadFile(path), "new");
  }
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  EXPECT_EQ(entries, 3) << "a temp file was left behind";
}

// The boot id is this boot's: the same on every read, a UUID.
TEST(BootId, IsStableWithinABoot) {
  auto a = BootId(), b = BootId();
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 36u) << *a;
}

TEST(ReadFile, RefusesOverLimit) {
  TempDir dir;
  std::string path = dir.path() + "/big";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(100, 'x')).ok());
  EXPECT_FALSE(ReadFile(path, 99).ok());
  EXPECT_TRUE(ReadFile(path, 100).ok());
  EXPECT_EQ(ReadFile(dir.path() + "/missing").status().code(), Code::kNotFound);
}

TEST(MakeDirs, CreatesParentsWithTheMode) {
  TempDir dir;
  mode_t old = ::umask(022);
  ASSERT_TRUE(MakeDirs(dir.path() + "/a/b/c", 0700).ok());
  ASSERT_TRUE(MakeDirs(dir.path() + "/a/b/c/", 0700).ok());  // exists: fine
  ASSERT_TRUE(MakeDirs(dir.path() + "/d").ok());
  ::umask(old);
  for (const char* sub : {"/a", "/a/b", "/a/b/c"}) {
    struct stat st;
    ASSERT_EQ(::stat((dir.path() + sub).c_str(), &st), 0) << sub;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << sub;
  }
  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  // A file in the way is an error, not a directory.
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/f", "x").ok());
  EXPECT_FALSE(MakeDirs(dir.path() + "/f").ok());
  EXPECT_FALSE(MakeDirs(dir.path() + "/f/g").ok());
}

TEST(OneLine, EscapesControlsKeepsUtf8AndCuts) {
  EXPECT_EQ(OneLine("a\r\nb\x1b[2J\x7f\xc2\x85 caf\xc3\xa9 \xff"), "a\\x0d\\x0ab\\x1b[2J\\x7f\\xc2\\x85 caf\xc3\xa9 \\xff");
  std::string cut = OneLine(std::string(1000, 'x'), 100);
  EXPECT_LE(cut.size(), 100u);
  EXPECT_TRUE(cut.ends_with("... (" + std::to_string(1000 - cut.find('.')) + " more bytes)")) << cut;
  EXPECT_EQ(OneLine(std::string(100, 'x'), 100), std::string(100, 'x'));
}

}  // namespace
}  // namespace regdisk

#include "util/subprocess.h"

namespace regdisk {
namespace {

TEST(Subprocess, CapturesOutputAndExitCode) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  auto c = RunChecked({"sh", "-c", "echo first >&2; echo 'the cause' >&2; exit 1"});
  EXPECT_EQ(c.status().message(), "sh failed (exit code 1): the cause");
}

TEST(Subprocess, MissingProgramIsAnError) {
  auto r = RunProcess({"/nonexistent/program"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/program"), std::string::npos);
}

TEST(Subprocess, CpuLimitKills) {
  auto r = RunProcess({"sh", "-c", "while :; do :; done"}, {.cpu_seconds = 1});
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->signal, 0);
}

}  // namespace
}  // namespace regdisk
