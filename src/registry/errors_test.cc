#include "registry/errors.h"

#include <gtest/gtest.h>

#include "registry/http.h"

namespace regdisk::registry {
namespace {

TEST(ErrorsTest, RegistryErrorDocument) {
  Status s = ResponseError("r:5000", "vm/a", "manifest \"v9\"", 404,
                           R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]})");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "registry r:5000: repository vm/a: manifest \"v9\": MANIFEST_UNKNOWN: manifest unknown");
}

TEST(ErrorsTest, CodesFollowTheRegistry) {
  struct Case {
    long status;
    const char* code;
    Code want;
  } cases[] = {
      {401, "UNAUTHORIZED", Code::kUnauthorized}, {403, "DENIED", Code::kUnauthorized},
      {404, "NAME_UNKNOWN", Code::kNotFound},     {404, "BLOB_UNKNOWN", Code::kNotFound},
      {429, "TOOMANYREQUESTS", Code::kUnavailable}, {400, "DIGEST_INVALID", Code::kCorrupt},
      {400, "TAG_INVALID", Code::kInvalidArgument}, {405, "UNSUPPORTED", Code::kUnsupported},
  };
  for (const Case& c : cases) {
    std::string body = std::string(R"({"errors":[{"code":")") + c.code + R"(","message":"m"}]})";
    EXPECT_EQ(ResponseError("h", "r", "w", c.status, body).code(), c.want) << c.code;
  }
}

TEST(ErrorsTest, NoDocument) {
  Status s = ResponseError("h", "", "pinging /v2/", 502, "<html>\n<b>Bad gateway</b></html>");
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.message(), "registry h: pinging /v2/: HTTP 502");  // no HTML in messages
  s = ResponseError("h", "r", "w", 400, "plain\ntext\r\n");
  EXPECT_EQ(s.message(), "registry h: repository r: w: HTTP 400: plain text");
}

TEST(ErrorsTest, OneLine) {
  EXPECT_EQ(OneLine("a\n\n\tb  "), "a b");
  EXPECT_EQ(OneLine(std::string(300, 'x'), 10), "xxxxxxxxxx...");
}

TEST(ErrorsTest, Redact) {
  Status s = Redact(Status(Code::kUnauthorized, "pw hunter2 and hunter2hunter2"), {"", "hunter2"});
  EXPECT_EQ(s.message(), "pw *** and ******");
  EXPECT_EQ(RedactText("aaaa", {"aa"}), "******");
}

TEST(HttpHelpersTest, Loopback) {
  for (const char* h : {"localhost", "localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000", "::1"}) {
    EXPECT_TRUE(http::IsLoopback(h)) << h;
  }
  for (const char* h : {"example.com", "127.0.0.1.example.com", "128.0.0.1", "[::2]:5000", "10.0.0.1:5000"}) {
    EXPECT_FALSE(http::IsLoopback(h)) << h;
  }
  EXPECT_EQ(http::HostOf("https://u@Quay.io:443/v2/?x"), "quay.io:443");
  EXPECT_EQ(http::Escape("sha256:ab/c d"), "sha256%3Aab%2Fc%20d");
}

}  // namespace
}  // namespace regdisk::registry
