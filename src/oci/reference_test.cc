#include "oci/reference.h"

#include <gtest/gtest.h>

#include <string>

namespace regdisk::oci {
namespace {

const std::string kD = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Valid {
  std::string in, str, familiar;
};

const Valid kValid[] = {
    {"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
    {"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
    {"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
    {"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
    {"docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"},
    {"index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
    {"index.docker.io/busybox:v1", "docker.io/library/busybox:v1", "busybox:v1"},
    {"vmdisks/fedora25", "docker.io/vmdisks/fedora25:latest", "vmdisks/fedora25:latest"},
    {"vmdisks/fedora25:v1", "docker.io/vmdisks/fedora25:v1", "vmdisks/fedora25:v1"},
    {"docker.io/library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar:latest"},
    {"a", "docker.io/library/a:latest", "a:latest"},
    {"0/1", "docker.io/0/1:latest", "0/1:latest"},
    {"localhost/foo", "localhost/foo:latest", "localhost/foo:latest"},
    {"localhost:5000/a/b", "localhost:5000/a/b:latest", "localhost:5000/a/b:latest"},
    {"localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"},
    {"127.0.0.1:5000/test", "127.0.0.1:5000/test:latest", "127.0.0.1:5000/test:latest"},
    {"quay.io/x/y@" + kD, "quay.io/x/y@" + kD, "quay.io/x/y@" + kD},
    {"a/b:v1@" + kD, "docker.io/a/b:v1@" + kD, "a/b:v1@" + kD},
    {"busybox@" + kD, "docker.io/library/busybox@" + kD, "busybox@" + kD},
    {"[::1]:5000/foo", "[::1]:5000/foo:latest", "[::1]:5000/foo:latest"},
    {"[fe80::1]/foo:bar", "[fe80::1]/foo:bar", "[fe80::1]/foo:bar"},
    {"[2001:db8::1]:443/a/b@" + kD, "[2001:db8::1]:443/a/b@" + kD, "[2001:db8::1]:443/a/b@" + kD},
    {"registry.example.com/team/project/image:2024.01.02-rc_1",
     "registry.example.com/team/project/image:2024.01.02-rc_1",
     "registry.example.com/team/project/image:2024.01.02-rc_1"},
    {"my-registry.io:8443/a-b/c_d/e.f/g__h", "my-registry.io:8443/a-b/c_d/e.f/g__h:latest",
     "my-registry.io:8443/a-b/c_d/e.f/g__h:latest"},
    {"foo--bar/baz", "docker.io/foo--bar/baz:latest", "foo--bar/baz:latest"},
    {"a.b.c/d", "a.b.c/d:latest", "a.b.c/d:latest"},
    {"A.Example.COM/x", "A.Example.COM/x:latest", "A.Example.COM/x:latest"},
    {"gcr.io/distroless/static:nonroot", "gcr.io/distroless/static:nonroot",
     "gcr.io/distroless/static:nonroot"},
    {"ghcr.io/owner/repo:TAG_with.Upper-case", "ghcr.io/owner/repo:TAG_with.Upper-case",
     "ghcr.io/owner/repo:TAG_with.Upper-case"},
    {"busybox:_x", "docker.io/library/busybox:_x", "busybox:_x"},
    {"busybox:" + std::string(128, 't'), "docker.io/library/busybox:" + std::string(128, 't'),
     "busybox:" + std::string(128, 't')},
    // No '/': "localhost" is a repository and ":5000" a tag, as in docker.
    {"localhost", "docker.io/library/localhost:latest", "localhost:latest"},
    {"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"},
    // Dropping docker.io/ would turn the first component into a host.
    {"docker.io/localhost/x", "docker.io/localhost/x:latest", "docker.io/localhost/x:latest"},
    {"docker.io/a.b/c", "docker.io/a.b/c:latest", "docker.io/a.b/c:latest"},
    {"r.io/" + std::string(250, 'a'), "r.io/" + std::string(250, 'a') + ":latest",
     "r.io/" + std::string(250, 'a') + ":latest"},
};

TEST(Reference, ParsesAndNormalises) {
  ASSERT_GE(std::size(kValid), 30u);
  for (const auto& c : kValid) {
    auto r = Reference::Parse(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().message();
    EXPECT_EQ(r->str(), c.str) << c.in;
    EXPECT_EQ(r->familiar(), c.familiar) << c.in;
    // Both forms parse back to the same reference.
    auto again = Reference::Parse(r->str());
    ASSERT_TRUE(again.ok()) << c.in;
    EXPECT_EQ(again->str(), c.str);
    auto from_familiar = Reference::Parse(r->familiar());
    ASSERT_TRUE(from_familiar.ok()) << c.in;
    EXPECT_EQ(from_familiar->str(), c.str);
  }
}

TEST(Reference, Parts) {
  auto r = *Reference::Parse("localhost:5000/a/b:v1@" + kD);
  EXPECT_EQ(r.registry, "localhost:5000");
  EXPECT_EQ(r.repository, "a/b");
  EXPECT_EQ(r.tag, "v1");
  ASSERT_TRUE(r.digest);
  EXPECT_EQ(r.digest->str(), kD);
  EXPECT_EQ(r.name(), "localhost:5000/a/b");
  EXPECT_EQ(r.identifier(), kD);

  auto t = *Reference::Parse("busybox");
  EXPECT_EQ(t.identifier(), "latest");
  EXPECT_EQ(t.name(), "docker.io/library/busybox");

  auto d = *Reference::Parse("busybox@" + kD);
  EXPECT_EQ(d.tag, "") << "no default tag when a digest is given";
}

TEST(Reference, WithTagAndDigest) {
  auto r = *Reference::Parse("quay.io/x/y:v1@" + kD);
  EXPECT_EQ(r.WithTag("v2").str(), "quay.io/x/y:v2");
  auto other = *Digest::Parse("sha256:" + std::string(64, 'f'));
  EXPECT_EQ(r.WithDigest(other).str(), "quay.io/x/y:v1@" + other.str());
  EXPECT_EQ(r.WithTag("v2").WithDigest(other).identifier(), other.str());
}

struct Invalid {
  std::string in, why;
};

const Invalid kInvalid[] = {
    {"", "empty reference"},
    {"Foo/bar", "repository name must be lowercase"},
    {"UPPER", "repository name must be lowercase"},
    {"busybox/Bar", "repository name must be lowercase"},
    {"quay.io/Foo", "repository name must be lowercase"},
    {"a//b", "empty path component"},
    {"/a", "empty path component"},
    {"a/", "empty path component"},
    {"a/b/", "empty path component"},
    {"docker.io/", "empty path component"},
    {"localhost:5000/", "empty path component"},
    {":tag", "missing repository name"},
    {"@" + kD, "missing repository name"},
    {"a:", "empty tag"},
    {"a:-bad", "invalid tag \"-bad\""},
    {"a:.bad", "invalid tag"},
    {"a:b/c:d e", "invalid tag"},
    {"a:" + std::string(129, 't'), "invalid tag"},
    {"a:b@", "invalid digest"},
    {"a@sha256:abc", "invalid digest"},
    {"a@sha512:" + std::string(128, 'a'), "invalid digest"},
    {"a@sha256:../../etc/passwd", "invalid digest"},
    {"a@b@c", "invalid digest"},
    {"-a/b", "invalid path component \"-a\""},
    {"a-/b", "invalid path component"},
    {"a..b", "invalid path component"},
    {"a___b", "invalid path component"},
    {"a._b", "invalid path component"},
    {"a b", "invalid path component"},
    {"a:b:c", "invalid path component"},
    {"busybox:latest:latest", "invalid path component"},
    {"r.io/" + std::string(251, 'a'), "longer than 255"},
    {std::string(250, 'a'), "longer than 255"},  // docker.io/library/ counts
    {std::string(64, 'a'), "image ID"},
    {"localhost:port/x", "invalid registry host"},
    {"a:tag/b", "invalid registry host"},
    {"[::1/x", "invalid registry host"},
    {"[]:5000/x", "invalid registry host"},
    {"[::1]x/y", "invalid registry host"},
    {"exa_mple.com/x", "invalid registry host"},
    {"-example.com/x", "invalid registry host"},
    {"example.com:/x", "invalid registry host"},
    {"example..com/x", "invalid registry host"},
};

TEST(Reference, RejectsInvalid) {
  ASSERT_GE(std::size(kInvalid), 20u);
  for (const auto& c : kInvalid) {
    auto r = Reference::Parse(c.in);
    ASSERT_FALSE(r.ok()) << "accepted \"" << c.in << "\" as " << r->str();
    const std::string& msg = r.status().message();
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(msg.starts_with("invalid reference \"")) << msg;
    EXPECT_NE(msg.find(c.why), std::string::npos) << c.in << " gave: " << msg;
  }
}

TEST(Reference, ErrorIsOneLineNamingTheInput) {
  auto r = Reference::Parse("Foo/bar");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "invalid reference \"Foo/bar\": repository name must be lowercase");

  const std::string inputs[] = {"a\nb", "a@sha256:\n", "a:\r\n", std::string("a\0b", 3)};
  for (const auto& in : inputs) {
    auto bad = Reference::Parse(in);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().message().find_first_of(std::string("\n\r\0", 3)), std::string::npos)
        << bad.status().message();
  }
  auto huge = Reference::Parse(std::string(100000, 'A'));
  ASSERT_FALSE(huge.ok());
  EXPECT_LT(huge.status().message().size(), 500u);
}

}  // namespace
}  // namespace regdisk::oci
