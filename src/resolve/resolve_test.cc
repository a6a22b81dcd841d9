#include <cstdlib>

#include <gtest/gtest.h>

#include "oci/media_types.h"
#include "resolve/image.h"
#include "resolve/store.h"
#include "util/fs.h"

namespace regdisk::resolve {
namespace {

TEST(Resolve, LocalNamesOpenTheStoreAndOciNamesTheirLayout) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  auto local = OpenImage(store, {}, "vmdisks/fedora:38", true);
  ASSERT_TRUE(local.ok()) << local.status().message();
  EXPECT_TRUE(PathExists(store + "/oci-layout"));
  EXPECT_EQ(local->location.tag, "docker.io/vmdisks/fedora:38");

  auto layout = OpenImage(store, {}, "oci:" + dir.path() + "/out:v1", true);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  EXPECT_TRUE(PathExists(dir.path() + "/out/oci-layout"));
  EXPECT_EQ(layout->location.tag, "v1");

  EXPECT_EQ(OpenImage(store, {}, "oci:" + dir.path() + "/missing", false).status().code(), Code::kNotFound);
  EXPECT_EQ(OpenLayoutImage(store, "docker://localhost:5000/x", false).status().code(), Code::kUnsupported);
}

TEST(Resolve, RegistryFlagsRoundTripThroughJsonAndBadValuesAreRefused) {
  RegistryFlags f;
  f.creds = "u:p";
  f.tls_verify = false;
  f.cert_dir = "/certs";
  f.retry_times = 7;
  f.stall_timeout = 9;
  f.parallel = 2;
  auto back = ParseRegistryFlagsJson(RegistryFlagsJson(f));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->creds, "u:p");
  EXPECT_FALSE(back->tls_verify);
  EXPECT_EQ(back->cert_dir, "/certs");
  EXPECT_EQ(back->retry_times, 7);
  EXPECT_EQ(back->stall_timeout, 9);
  EXPECT_EQ(back->parallel, 2);
  EXPECT_EQ(ParseRegistryFlagsJson("{}")->parallel, RegistryFlags().parallel);
  for (const char* bad : {"[]", "{\"parallel\": 0}", "{\"parallel\": 17}", "{\"retryTimes\": -1}",
                          "{\"tlsVerify\": 1}", "{\"creds\": 5}", "{\"stallTimeout\": 1e9}", "{"}) {
    EXPECT_EQ(ParseRegistryFlagsJson(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

// The fill leaves the boot the link by default, --fill-rate takes a
// quantity, and --creds is never handed to a serving process.
TEST(Resolve, ServeSettingsTakeTheFillFlagsAndNoCreds) {
  RegistryFlags f;
  f.creds = "u:p";
  auto c = ServeSettings(f, FillFlags{}, "/secret.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->fill_rate, kDefaultFillRate);
  EXPECT_EQ(c->fill_delay, static_cast<uint64_t>(kDefaultFillDelay));
  EXPECT_EQ(c->auth_file, "/secret.json");
  EXPECT_EQ(c->registry.find("u:p"), std::string::npos);
  c = ServeSettings(f, FillFlags{.rate = "100Mi", .delay = 0}, "");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->fill_rate, 100ull << 20);
  EXPECT_EQ(c->fill_delay, 0u);
  EXPECT_EQ(ServeSettings(f, FillFlags{.rate = "0"}, "")->fill_rate, 0u);
  auto bad = ServeSettings(f, FillFlags{.rate = "fast"}, "");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--fill-rate"), std::string::npos) << bad.status().message();
  EXPECT_EQ(ServeSettings(f, FillFlags{.delay = -1}, "").status().code(), Code::kInvalidArgument);
}

// The peer flags reach serve.json as given, checked; none given, none kept.
TEST(Resolve, ServeSettingsTakeThePeerFlags) {
  auto none = ServeSettings(RegistryFlags{}, FillFlags{}, "");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->peers, "");
  EXPECT_EQ(none->peer_self, "");
  EXPECT_EQ(none->peer_timeout_ms, 0u);
  FillFlags f{.peers = "127.0.1.2:7480,[::1]:7481,@/etc/regdisk/peers,dns:peers.ns.svc:7480,srv:_peer._tcp.x",
              .peer_self = "127.0.1.1:7480",
              .peer_timeout = 500};
  auto c = ServeSettings(RegistryFlags{}, f, "");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->peers, f.peers);
  EXPECT_EQ(c->peer_self, "127.0.1.1:7480");
  EXPECT_EQ(c->peer_timeout_ms, 500u);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "host:http", ":7480", "::1:7480",
                          "a:1,,b:2", "@relative/file", "srv:", "dns:name", "a b:1"}) {
    auto s = ServeSettings(RegistryFlags{}, FillFlags{.peers = bad}, "");
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.status().message().find("--peers"), std::string::npos) << s.status().message();
    EXPECT_EQ(s.status().message().find('\n'), std::string::npos) << s.status().message();
  }
  EXPECT_NE(ServeSettings(RegistryFlags{}, FillFlags{.peer_self = "self"}, "").status().message().find("--peer-self"),
            std::string::npos);
  for (int ms : {-1, static_cast<int>(lazy::kMaxPeerTimeoutMs) + 1}) {
    EXPECT_EQ(ServeSettings(RegistryFlags{}, FillFlags{.peer_timeout = ms}, "").status().code(),
              Code::kInvalidArgument)
        << ms;
  }
}

TEST(Resolve, ServeSourceIsALayoutOrARegistry) {
  TempDir dir;
  ASSERT_TRUE(layout::Layout::Open(dir.path() + "/l", true).ok());
  auto layout = OpenServeSource("oci:" + dir.path() + "/l@" + oci::Digest::Of("m").str(), "{}", "");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  EXPECT_EQ((*layout)->id().domain, "oci:" + dir.path() + "/l");
  EXPECT_EQ(OpenServeSource("oci:" + dir.path() + "/missing", "{}", "").status().code(), Code::kNotFound);
  EXPECT_EQ(OpenServeSource("vmdisks/fedora:38", "{}", "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenServeSource("docker://127.0.0.1:1/a", "{\"parallel\": 99}", "").status().code(),
            Code::kInvalidArgument);
}

TEST(Resolve, PullSecretIsOneSafeNameUnderRoot) {
  TempDir dir;
  EXPECT_EQ(*PullSecretFile(dir.path(), ""), "");
  EXPECT_EQ(PullSecretFile(dir.path(), "../etc/x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(PullSecretFile(dir.path(), "a/b").status().code(), Code::kInvalidArgument);
  auto missing = PullSecretFile(dir.path(), "regcred");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find(dir.path() + "/secrets/regcred.json"), std::string::npos);
  ASSERT_TRUE(MakeDirs(dir.path() + "/secrets").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/secrets/regcred.json", "{}").ok());
  EXPECT_EQ(*PullSecretFile(dir.path(), "regcred"), dir.path() + "/secrets/regcred.json");
}

TEST(Resolve, NodeRootFlagThenEnvironment) {
  EXPECT_EQ(NodeRoot("/r"), "/r");
  ::setenv("REGDISK_ROOT", "/from-env", 1);
  EXPECT_EQ(NodeRoot(""), "/from-env");
  ::unsetenv("REGDISK_ROOT");
  EXPECT_EQ(NodeRoot(""), "/var/lib/regdisk");
}

TEST(Resolve, RegistryFlagsBecomeOptions) {
  RegistryFlags f{.creds = "u:p", .tls_verify = false, .cert_dir = "/c", .retry_times = 7, .stall_timeout = 9};
  registry::Options o = f.Options();
  EXPECT_EQ(o.credentials, "u:p");
  EXPECT_FALSE(o.tls_verify);
  EXPECT_EQ(o.cert_dir, "/c");
  EXPECT_EQ(o.retry_times, 7);
  EXPECT_EQ(o.stall_timeout, std::chrono::seconds(9));
}

TEST(Resolve, PlatformAndNames) {
  EXPECT_EQ(ChoosePlatform("")->str(), oci::Platform::Host().str());
  EXPECT_EQ(ChoosePlatform("linux/arm64")->str(), "linux/arm64");
  EXPECT_FALSE(ChoosePlatform("nonsense").ok());
  EXPECT_EQ(RegistryImageName("docker://quay.io/a/b:1"), "quay.io/a/b:1");
  EXPECT_EQ(RegistryImageName("quay.io/a/b:1"), "quay.io/a/b:1");
}

// A base image in the destination store is read through that store.
TEST(Resolve, BaseInTheDestinationIsReadThroughIt) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  auto dest = OpenImage(store, {}, "out:1", true);
  ASSERT_TRUE(dest.ok());
  auto config = oci::WriteBlob(*dest->store, "{\"architecture\":\"amd64\",\"os\":\"linux\"}",
                               oci::media::kOciConfig);
  ASSERT_TRUE(config.ok());
  oci::Manifest m;
  m.media_type = oci::media::kOciManifest;
  m.config = *config;
  ASSERT_TRUE(oci::PutManifest(*dest->store, m, "docker.io/library/base:latest").ok());
  auto base = OpenBase(store, {}, "base", *dest->store, oci::Platform::Host());
  ASSERT_TRUE(base.ok()) << base.status().message();
  EXPECT_EQ(base->image.store, dest->store.get());
  EXPECT_EQ(base->owned, nullptr);

  auto elsewhere = OpenBase(store, {}, "base", *OpenImage(store, {}, "oci:" + dir.path() + "/o", true)->store,
                            oci::Platform::Host());
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.status().message();
  EXPECT_NE(elsewhere->owned, nullptr);
  EXPECT_EQ(elsewhere->image.store, elsewhere->owned.get());
  EXPECT_EQ(OpenBase(store, {}, "absent", *dest->store, oci::Platform::Host()).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace regdisk::resolve
