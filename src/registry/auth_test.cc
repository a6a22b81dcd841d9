// The token answer parser and the request check that keep outside data out
// of header lines (issue 12, class 6).
#include <gtest/gtest.h>

#include "registry/auth.h"
#include "registry/http.h"

namespace regdisk::registry {
namespace {

constexpr char kRealm[] = "http://127.0.0.1:5001/token";

TEST(TokenAnswer, AcceptsJwtsAndAccessTokens) {
  auto a = ParseTokenAnswer(R"({"token":"eyJhbGciOi.eyJzdWIi_-.sig+/==","expires_in":300})", kRealm);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->token, "eyJhbGciOi.eyJzdWIi_-.sig+/==");
  EXPECT_EQ(a->expires_in, 300);
  a = ParseTokenAnswer(R"({"access_token":"abc~1","expires_in":5})", kRealm);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->token, "abc~1");
  EXPECT_EQ(a->expires_in, 60);  // clamped up to the spec's minimum
}

TEST(TokenAnswer, RefusesWhatIsNotToken68NamingTheRealm) {
  for (const char* body : {R"({"token":"abc\r\nX-Injected: 1"})", R"({"token":"abc def"})",
                           R"({"token":"abc\u0000"})", R"({"token":"=abc"})", R"({"token":"a=b"})",
                           R"({"token":"caf\u00e9"})"}) {
    auto a = ParseTokenAnswer(body, kRealm);
    ASSERT_FALSE(a.ok()) << body;
    EXPECT_NE(a.status().message().find(kRealm), std::string::npos) << a.status().message();
    EXPECT_NE(a.status().message().find("token68"), std::string::npos) << a.status().message();
    EXPECT_EQ(a.status().message().find('\n'), std::string::npos);
  }
}

TEST(TokenAnswer, RefusesMissingAndHugeTokens) {
  for (std::string body : {std::string("not json"), std::string("[]"), std::string(R"({"token":""})"),
                           std::string(R"({"token":7})"), R"({"token":")" + std::string(20000, 'a') + "\"}"}) {
    auto a = ParseTokenAnswer(body, kRealm);
    ASSERT_FALSE(a.ok()) << body.substr(0, 40);
    EXPECT_NE(a.status().message().find(kRealm), std::string::npos);
  }
}

TEST(RequestCheck, HeaderOrUrlWithControlCharactersIsNeverSent) {
  // Port 1 on loopback: a request that got through would fail differently.
  http::Client client(http::ClientOptions{});
  http::Request bad_header{.url = "http://127.0.0.1:1/v2/", .headers = {"Authorization: Bearer a\r\nX-Injected: 1"}};
  http::Request bad_url{.url = "http://127.0.0.1:1/v2/a\r\nX-Injected: 1"};
  for (const auto& r : {bad_header, bad_url}) {
    auto got = client.Do(r);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), Code::kInvalidArgument) << got.status().message();
    EXPECT_NE(got.status().message().find("control characters"), std::string::npos);
    EXPECT_EQ(got.status().message().find("Bearer a"), std::string::npos) << "no secret in the message";
    auto stream = client.Open(r);
    ASSERT_FALSE(stream.ok());
    EXPECT_EQ(stream.status().code(), Code::kInvalidArgument);
  }
}

}  // namespace
}  // namespace regdisk::registry
