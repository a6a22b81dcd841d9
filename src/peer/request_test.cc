// The peer server's request parser and router (peer/request.h), including
// malicious input: every refusal has its status, nothing crashes, nothing
// but the protocol's exact paths is routed.
#include "peer/request.h"

#include <gtest/gtest.h>

#include "peer/protocol.h"

namespace regdisk::peer {
namespace {

using Kind = ParseResult::Kind;

const std::string kHex(64, 'a');

TEST(RequestTest, ParsesGetHeadAndPost) {
  auto r = ParseRequest("GET /v1/health HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\nGET /next");
  ASSERT_EQ(r.kind, Kind::kDone) << r.reason;
  EXPECT_EQ(r.request.method, Method::kGet);
  EXPECT_EQ(r.request.target, "/v1/health");
  EXPECT_TRUE(r.request.keep_alive);
  EXPECT_EQ(r.consumed, std::string("GET /v1/health HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n").size());

  r = ParseRequest("HEAD / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.kind, Kind::kDone) << r.reason;
  EXPECT_EQ(r.request.method, Method::kHead);
  EXPECT_FALSE(r.request.keep_alive);  // HTTP/1.0 without keep-alive

  r = ParseRequest("POST /v1/have HTTP/1.1\r\nHost: x\r\ncontent-length: 3\r\nConnection: Close\r\n\r\nabcdef");
  ASSERT_EQ(r.kind, Kind::kDone) << r.reason;
  EXPECT_EQ(r.request.body, "abc");
  EXPECT_FALSE(r.request.keep_alive);
}

TEST(RequestTest, WaitsForTheRestAndAsksForContinue) {
  EXPECT_EQ(ParseRequest("").kind, Kind::kNeedMore);
  EXPECT_EQ(ParseRequest("GET /v1/health HTTP/1.1\r\nHost: x\r\n").kind, Kind::kNeedMore);
  auto r = ParseRequest("POST /v1/have HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\nabc");
  EXPECT_EQ(r.kind, Kind::kNeedMore);
  EXPECT_TRUE(r.expect_continue);
}

TEST(RequestTest, RefusesMalformedRequests) {
  struct Case {
    std::string bytes;
    int status;
  };
  const std::string end = " HTTP/1.1\r\nHost: x\r\n\r\n";
  const Case cases[] = {
      {"GET http://evil/v1/health" + end, 400},     // absolute-form
      {"GET *" + end, 400},                          // asterisk-form
      {"CONNECT evil:443" + end, 400},               // authority-form
      {"GET  /v1/health" + end, 400},                // two spaces
      {"GET /v1/health HTTP/2.0\r\nHost: x\r\n\r\n", 400},
      {"GET /v1/health\r\n\r\n", 400},               // HTTP/0.9
      {"GET /v1/he\x01lth" + end, 400},              // control byte in the target
      {"GET /v1/h\xc3\xa9" + end, 400},              // 8-bit target
      {"G(T /v1/health" + end, 400},                 // not a token
      {"GET /v1/health HTTP/1.1\r\n\r\n", 400},      // no Host
      {"GET /v1/health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
      {"GET /v1/health HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
      {"GET /v1/health HTTP/1.1\r\nHost x\r\n\r\n", 400},
      {"GET /v1/health HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400},   // bare LF
      {"GET /v1/health HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400},   // bare CR
      {"GET /v1/health HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n", 400},
      {"GET /v1/health HTTP/1.1\r\nHost: x\r\nX: \x1b[2J\r\n\r\n", 400},
      {"POST /v1/have HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"POST /v1/have HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 400},
      {"POST /v1/have HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na", 400},
      {"POST /v1/have HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na", 400},
      {"POST /v1/have HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST /v1/have HTTP/1.1\r\nHost: x\r\n\r\n", 411},
      {"POST /v1/have HTTP/1.1\r\nHost: x\r\nContent-Length: 66561\r\n\r\n", 413},
      {"POST /v1/have HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
      {"PUT /v1/have" + end, 405},
      {"DELETE /v1/chunks/sha256/" + kHex + end, 405},
      {"\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(Quote(c.bytes));
    auto r = ParseRequest(c.bytes);
    ASSERT_EQ(r.kind, Kind::kError);
    EXPECT_EQ(r.status, c.status) << r.reason;
    EXPECT_FALSE(r.reason.empty());
    // The reason is safe for a log line: no raw control bytes.
    for (char ch : r.reason) EXPECT_FALSE(static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f);
  }
}

TEST(RequestTest, BoundsTheHead) {
  // No end of head within the bound: 431 without waiting for more.
  std::string endless = "GET /v1/health HTTP/1.1\r\nX: " + std::string(kMaxHeadBytes, 'a');
  EXPECT_EQ(ParseRequest(endless).status, 431);
  std::string many = "GET /v1/health HTTP/1.1\r\nHost: x\r\n";
  for (size_t i = 0; i < kMaxHeaderCount; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  EXPECT_EQ(ParseRequest(many + "\r\n").status, 431);
  std::string overlong_target = "GET /" + std::string(kMaxHeadBytes, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(ParseRequest(overlong_target).status, 431);
  // Just within the bound is fine.
  std::string fits = "GET /v1/health HTTP/1.1\r\nHost: x\r\nX: ";
  fits += std::string(kMaxHeadBytes - fits.size() - 4, 'a') + "\r\n\r\n";
  EXPECT_EQ(ParseRequest(fits).kind, Kind::kDone);
}

TEST(RequestTest, RoutesOnlyTheProtocolsExactPaths) {
  const std::string prefix = kChunkPathPrefix;
  auto chunk = RouteTarget(prefix + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  ASSERT_EQ(chunk.kind, Route::Kind::kChunk);
  EXPECT_EQ(chunk.digest[0], 0x01);
  EXPECT_EQ(chunk.digest[31], 0xef);
  EXPECT_EQ(RouteTarget(kHavePath).kind, Route::Kind::kHave);
  EXPECT_EQ(RouteTarget(kHealthPath).kind, Route::Kind::kHealth);
  for (const std::string& t : std::vector<std::string>{
           prefix + std::string(64, 'A'),                 // uppercase hex
           prefix + std::string(63, 'a'),                 // short
           prefix + std::string(65, 'a'),                 // long
           prefix + kHex + "/",                           // trailing junk
           prefix + kHex + "?x=1",
           prefix + std::string(63, 'a') + "g",
           prefix + "../../../../etc/passwd",
           prefix + "..%2f..%2f" + std::string(54, 'a'),  // encoded
           "/v1/chunks/sha256/%2e%2e/" + kHex,
           "/v1/chunks/sha256//" + kHex,
           "/v1/chunks/sha512/" + kHex,
           "/v1/./chunks/sha256/" + kHex,
           "/v1/have/",
           "/v1/health?",
           "/V1/HEALTH",
           "/",
           "",
       }) {
    EXPECT_EQ(RouteTarget(t).kind, Route::Kind::kNone) << t;
  }
}

TEST(RequestTest, ParsesHaveBodies) {
  auto none = ParseHaveBody("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto two = ParseHaveBody(kHex + "\n" + std::string(64, '0') + "\n");
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_EQ(two->size(), 2u);
  for (const std::string& bad : std::vector<std::string>{kHex, kHex + "\r\n", std::string(64, 'A') + "\n", kHex + "\n\n",
                                 std::string(63, 'a') + "\n", kHex + "0\n", std::string("\x1b[2J\n")}) {
    auto r = ParseHaveBody(bad);
    ASSERT_FALSE(r.ok()) << Quote(bad);
    EXPECT_EQ(r.status().message().find('\x1b'), std::string::npos);
  }
  std::string many;
  for (size_t i = 0; i <= kMaxHaveDigests; ++i) many += kHex + "\n";
  EXPECT_FALSE(ParseHaveBody(many).ok());
  many.resize(kMaxHaveBody);
  EXPECT_TRUE(ParseHaveBody(many).ok());
}

}  // namespace
}  // namespace regdisk::peer
