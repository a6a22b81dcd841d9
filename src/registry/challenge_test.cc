#include "registry/challenge.h"

#include <gtest/gtest.h>

namespace regdisk::registry {
namespace {

TEST(ChallengeTest, DistributionBearer) {
  auto c = ParseChallenges(
      R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].Param("realm"), "https://auth.example/token");
  EXPECT_EQ(c[0].Param("service"), "registry.example");
  EXPECT_EQ(c[0].Param("scope"), "repository:a/b:pull,push");  // comma inside quotes
  EXPECT_EQ(c[0].Param("missing"), "");
}

TEST(ChallengeTest, Table) {
  struct Case {
    const char* header;
    std::vector<std::pair<std::string, std::map<std::string, std::string>>> want;
  };
  const Case cases[] = {
      {R"(Basic realm="Registry Realm")", {{"basic", {{"realm", "Registry Realm"}}}}},
      {"BASIC Realm=unquoted", {{"basic", {{"realm", "unquoted"}}}}},
      {R"(Basic realm="a", Bearer realm="b",service="c")",
       {{"basic", {{"realm", "a"}}}, {"bearer", {{"realm", "b"}, {"service", "c"}}}}},
      {R"(Bearer realm = "sp aced" , service= x)", {{"bearer", {{"realm", "sp aced"}, {"service", "x"}}}}},
      {R"(Bearer realm="q\"uo\\te\d")", {{"bearer", {{"realm", R"(q"uo\ted)"}}}}},
      {R"(Bearer realm="a",realm="b")", {{"bearer", {{"realm", "a"}}}}},  // first wins
      {R"(Bearer realm="unterminated)", {{"bearer", {{"realm", "unterminated"}}}}},
      {"Negotiate", {{"negotiate", {}}}},
      {"Basic, Bearer", {{"basic", {}}, {"bearer", {}}}},
      {"", {}},
      {" ,, ", {}},
      {R"(Bearer realm=)", {{"bearer", {{"realm", ""}}}}},
      {"\x01\xff Basic realm=x", {{"basic", {{"realm", "x"}}}}},  // junk skipped
      {R"(Bearer error="insufficient_scope",realm="r")",
       {{"bearer", {{"error", "insufficient_scope"}, {"realm", "r"}}}}},
  };
  for (const Case& tc : cases) {
    auto got = ParseChallenges(tc.header);
    ASSERT_EQ(got.size(), tc.want.size()) << tc.header;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].scheme, tc.want[i].first) << tc.header;
      EXPECT_EQ(got[i].params, tc.want[i].second) << tc.header;
    }
  }
}

TEST(ChallengeTest, HostileInputTerminates) {
  std::string s;
  for (int i = 0; i < 2000; ++i) s += "a=\"\\";
  ParseChallenges(s);
  ParseChallenges(std::string(10000, '='));
  ParseChallenges(std::string(10000, ','));
  ParseChallenges(std::string("\0\0\0", 3));
}

}  // namespace
}  // namespace regdisk::registry
