#include "registry/auth_file.h"

#include <sys/stat.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "util/fs.h"

namespace regdisk::registry {
namespace {

// Points HOME, XDG_RUNTIME_DIR and REGISTRY_AUTH_FILE into a temp dir.
class AuthFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = dir_.path() + "/home";
    run_ = dir_.path() + "/run";
    setenv("HOME", home_.c_str(), 1);
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("REGISTRY_AUTH_FILE");
  }
  static std::string Entry(const std::string& key, const std::string& user_pass) {
    return "\"" + key + "\": {\"auth\": \"" + Base64Encode(user_pass) + "\"}";
  }
  TempDir dir_;
  std::string home_, run_;
};

TEST_F(AuthFileTest, Base64) {
  for (std::string s : {"", "a", "ab", "abc", "user:pässword\x01"}) {
    EXPECT_EQ(Base64Decode(Base64Encode(s)), s);
  }
  EXPECT_EQ(Base64Encode("alice:secret"), "YWxpY2U6c2VjcmV0");
  EXPECT_EQ(Base64Decode("YWxpY2U6c2VjcmV0"), "alice:secret");
  EXPECT_EQ(Base64Decode("YQ"), "a");  // padding optional
  EXPECT_FALSE(Base64Decode("YW!j"));
  EXPECT_FALSE(Base64Decode("Y"));
}

TEST_F(AuthFileTest, ParseUserPassword) {
  auto c = ParseUserPassword("alice:pa:ss");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "pa:ss");
  auto bad = ParseUserPassword("nocolonsecret");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("nocolonsecret"), std::string::npos);
  EXPECT_FALSE(ParseUserPassword(":pw").ok());
}

TEST_F(AuthFileTest, KeyForms) {
  std::string json = "{\"auths\": {" + Entry("https://quay.io/v1/", "q:1") + "," +
                     Entry("http://127.0.0.1:5000", "l:2") + "," + Entry("https://index.docker.io/v1/", "d:3") +
                     "," + Entry("Example.COM", "e:4") + ", \"other.io\": {\"identitytoken\": \"x\"}}}";
  struct Case {
    const char* host;
    const char* user;
  } cases[] = {{"quay.io", "q"}, {"127.0.0.1:5000", "l"}, {"docker.io", "d"}, {"example.com", "e"}};
  for (const Case& tc : cases) {
    auto c = CredentialsFromJson(json, tc.host, "f");
    ASSERT_TRUE(c.ok()) << c.status().message();
    ASSERT_TRUE(c->has_value()) << tc.host;
    EXPECT_EQ((*c)->user, tc.user);
  }
  for (const char* host : {"127.0.0.1", "other.io", "quay.io:443", "nothing"}) {
    auto c = CredentialsFromJson(json, host, "f");
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->has_value()) << host;
  }
}

TEST_F(AuthFileTest, BadFilesAreErrorsWithoutSecrets) {
  EXPECT_FALSE(CredentialsFromJson("not json", "h", "f").ok());
  EXPECT_FALSE(CredentialsFromJson("{\"auths\": []}", "h", "f").ok());
  auto s = CredentialsFromJson("{\"auths\": {\"h\": {\"auth\": \"c2VjcmV0\"}}}", "h", "f");  // "secret", no ':'
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().find("secret"), std::string::npos) << s.status().message();
  EXPECT_EQ(s.status().message().find("c2VjcmV0"), std::string::npos) << s.status().message();
}

TEST_F(AuthFileTest, SearchOrder) {
  std::string env_file = dir_.path() + "/env.json";
  setenv("XDG_RUNTIME_DIR", run_.c_str(), 1);
  setenv("REGISTRY_AUTH_FILE", env_file.c_str(), 1);
  EXPECT_EQ(AuthFileSearchPath(),
            (std::vector<std::string>{env_file, run_ + "/containers/auth.json", home_ + "/.docker/config.json"}));
  ASSERT_TRUE(MakeDirs(home_ + "/.docker").ok());
  ASSERT_TRUE(WriteFileAtomic(home_ + "/.docker/config.json",
                              "{\"auths\": {" + Entry("a.io", "docker:1") + "," + Entry("b.io", "docker:2") + "," +
                                  Entry("c.io", "docker:3") + "}}").ok());
  ASSERT_TRUE(MakeDirs(run_ + "/containers").ok());
  ASSERT_TRUE(WriteFileAtomic(run_ + "/containers/auth.json",
                              "{\"auths\": {" + Entry("a.io", "xdg:1") + "," + Entry("b.io", "xdg:2") + "}}").ok());
  ASSERT_TRUE(WriteFileAtomic(env_file, "{\"auths\": {" + Entry("a.io", "env:1") + "}}").ok());
  for (auto [host, user] : {std::pair{"a.io", "env"}, {"b.io", "xdg"}, {"c.io", "docker"}}) {
    auto c = FindCredentials(host);
    ASSERT_TRUE(c.ok()) << c.status().message();
    ASSERT_TRUE(c->has_value()) << host;
    EXPECT_EQ((*c)->user, user) << host;
  }
  auto none = FindCredentials("d.io");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(AuthFileTest, WritePathRule) {
  EXPECT_EQ(AuthFileForWriting(), home_ + "/.docker/config.json");
  setenv("XDG_RUNTIME_DIR", run_.c_str(), 1);
  EXPECT_EQ(AuthFileForWriting(), run_ + "/containers/auth.json");
  setenv("REGISTRY_AUTH_FILE", "/x/auth.json", 1);
  EXPECT_EQ(AuthFileForWriting(), "/x/auth.json");
}

TEST_F(AuthFileTest, StoreKeepsOtherKeysAndIsPrivate) {
  std::string path = home_ + "/.docker/config.json";
  ASSERT_TRUE(MakeDirs(home_ + "/.docker").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "{\"credsStore\": \"x\", \"auths\": {" + Entry("https://quay.io/v1/", "old:1") +
                                        "," + Entry("keep.io", "k:2") + "}}").ok());
  ASSERT_TRUE(StoreCredentials(path, "quay.io", {"new", "p:w"}).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = ReadFile(path);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("credsStore"), std::string::npos);
  EXPECT_EQ(text->find("https://quay.io/v1/"), std::string::npos);  // the old spelling is replaced
  auto c = FindCredentials("quay.io");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->user, "new");
  EXPECT_EQ((*c)->password, "p:w");
  c = FindCredentials("keep.io");
  ASSERT_TRUE(c.ok() && c->has_value());

  ASSERT_TRUE(RemoveCredentials(path, "quay.io").ok());
  c = FindCredentials("quay.io");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
  EXPECT_EQ(RemoveCredentials(path, "quay.io").code(), Code::kNotFound);
}

TEST_F(AuthFileTest, StoreCreatesPrivateDirs) {
  std::string path = run_ + "/containers/auth.json";
  ASSERT_TRUE(StoreCredentials(path, "127.0.0.1:5000", {"u", "p"}).ok());
  struct stat st;
  ASSERT_EQ(::stat((run_ + "/containers").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(AuthFileTest, MalformedFileIsNotClobbered) {
  std::string path = dir_.path() + "/bad.json";
  ASSERT_TRUE(WriteFileAtomic(path, "[1,2]").ok());
  EXPECT_FALSE(StoreCredentials(path, "h", {"u", "p"}).ok());
  EXPECT_EQ(*ReadFile(path), "[1,2]");
}

}  // namespace
}  // namespace regdisk::registry
