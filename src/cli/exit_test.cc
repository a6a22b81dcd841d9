#include "cli/exit.h"

#include <cstdio>
#include <set>

#include <gtest/gtest.h>

namespace regdisk::cli {
namespace {

// What Exit prints for `s`, and the code it returns.
std::pair<std::string, int> Printed(const Status& s) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  int code = Exit(s, f);
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  return {out, code};
}

TEST(Exit, OkPrintsNothing) {
  auto [out, code] = Printed(OkStatus());
  EXPECT_EQ(out, "");
  EXPECT_EQ(code, 0);
}

TEST(Exit, OneLineWithControlBytesEscaped) {
  auto [out, code] = Printed(InvalidArgument("disk/\x1b]0;owned\x07name\r\nX-Injected: 1\x9b\xc2\x9b"));
  EXPECT_EQ(out, "regdisk: disk/\\x1b]0;owned\\x07name\\x0d\\x0aX-Injected: 1\\x9b\\xc2\\x9b\n");
  EXPECT_EQ(code, 3);
}

TEST(Exit, Utf8TextIsKept) {
  EXPECT_EQ(Printed(NotFound("image \"caf\xc3\xa9\" \xe2\x9c\x93")).first, "regdisk: image \"caf\xc3\xa9\" \xe2\x9c\x93\n");
  // Overlong and truncated sequences are escaped byte by byte.
  EXPECT_EQ(Printed(NotFound("\xc0\xaf \xe2\x9c")).first, "regdisk: \\xc0\\xaf \\xe2\\x9c\n");
}

TEST(Exit, EscapesOnce) {
  // A name already quoted by the code that found it keeps its escapes as they are.
  EXPECT_EQ(Printed(NotFound("tag " + Quote("a\x1b" "b") + " not found")).first,
            "regdisk: tag \"a\\x1bb\" not found\n");
}

TEST(Exit, LongMessageIsBounded) {
  std::string names;
  for (int i = 0; i < 20000; ++i) names += "disk/f" + std::to_string(i) + "\n";
  auto [out, code] = Printed(InvalidArgument(names));
  EXPECT_LE(out.size(), kMaxErrorLineBytes + 1);
  EXPECT_EQ(out.find('\n'), out.size() - 1);
  EXPECT_NE(out.find("more bytes)"), std::string::npos) << out;
  // Escapes are never cut in half.
  std::string all_escapes(5000, '\x1b');
  std::string line = ErrorLine(Corrupt(all_escapes));
  EXPECT_LE(line.size(), kMaxErrorLineBytes);
  EXPECT_NE(line.find("\\x1b... ("), std::string::npos) << line;
}

TEST(Exit, EveryCodeHasItsOwnExitCode) {
  std::set<int> seen;
  for (Code c : {Code::kOk, Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists, Code::kCorrupt,
                 Code::kUnsupported, Code::kIo, Code::kUnauthorized, Code::kUnavailable, Code::kInternal}) {
    int e = ExitCodeFor(c);
    EXPECT_TRUE(seen.insert(e).second) << CodeName(c) << " shares exit code " << e;
    EXPECT_NE(e, kUsageExit) << CodeName(c);
    EXPECT_LT(e, 64) << "shells use larger codes";
    if (c != Code::kOk) {
      EXPECT_EQ(Printed(Status(c, "x")).second, e);
      EXPECT_NE(e, 0);
    }
  }
  EXPECT_EQ(ExitCodeFor(Code::kNotFound), 4);
  EXPECT_EQ(ExitCodeFor(Code::kUnavailable), 10);
}

TEST(Exit, HelpListsEveryCode) {
  std::string help = ExitCodeHelp();
  for (const ExitCode& e : kExitCodes) {
    EXPECT_NE(help.find(" " + std::to_string(e.exit) + "  " + e.meaning), std::string::npos) << help;
  }
  EXPECT_NE(help.find(" 2  usage"), std::string::npos) << help;
}

}  // namespace
}  // namespace regdisk::cli
