// The registry client against the real Distribution registry (four
// flavours, see registry_server.h), the local layout and skopeo.
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"
#include "layout/layout.h"
#include "oci/copy.h"
#include "oci/media_types.h"
#include "registry/connection.h"  // white-box: Registry::Connect, shared connections
#include "registry/repository.h"
#include "registry_server.h"

namespace regdisk::testing {
namespace {

using Flavour = RegistryServer::Flavour;
using registry::Options;
using registry::Repository;

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  for (size_t i = n - n % 8; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

std::string Base64(const std::string& s) { return Base64Encode(s); }

// An image (one random layer, a config, a manifest) written into `store`.
// With `gzip` the layer is gzip data (skopeo would compress a plain one).
StatusOr<oci::RawManifest> PutTestImage(oci::Store& store, const std::string& tag, size_t layer_size,
                                        uint64_t seed, bool gzip = false) {
  std::string raw = RandomBytes(layer_size, seed), bytes = raw;
  if (gzip) {
    TempDir dir;
    RETURN_IF_ERROR(WriteFileAtomic(dir.path() + "/layer", raw));
    ASSIGN_OR_RETURN(ProcessResult r, RunChecked({"gzip", "-1", "-n", "-c", dir.path() + "/layer"},
                                                 {.output_limit = layer_size * 2 + 4096}));
    bytes = std::move(r.out);
  }
  ASSIGN_OR_RETURN(oci::Descriptor layer,
                   oci::WriteBlob(store, bytes, gzip ? oci::media::kOciLayerGzip : oci::media::kOciLayerTar));
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.diff_ids = {oci::Digest::Of(raw)};
  ASSIGN_OR_RETURN(oci::Descriptor cfg,
                   oci::WriteBlob(store, oci::EncodeImageConfig(config), oci::media::kOciConfig));
  oci::Manifest m{.media_type = oci::media::kOciManifest, .config = cfg, .layers = {layer}};
  return oci::PutManifest(store, m, tag);
}

class RegistryClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // No auth file of the machine's user may leak into a test.
    setenv("HOME", (home_.path()).c_str(), 1);
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("REGISTRY_AUTH_FILE");
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const auto& s : servers_) std::cerr << "=== registry log\n" << s->Log();
    }
  }

  RegistryServer* Start(Flavour f, const std::string& token_field = "token") {
    servers_.push_back(std::make_unique<RegistryServer>(f, token_field));
    return servers_.back().get();
  }

  static Options OptionsFor(const RegistryServer& s, bool credentials = true) {
    Options o;
    o.retry_delay = std::chrono::milliseconds(50);
    if (s.flavour() == Flavour::kTls) o.cert_dir = s.ca_dir();
    if (credentials && (s.flavour() == Flavour::kBasic || s.flavour() == Flavour::kToken)) {
      o.credentials = std::string(RegistryServer::kUser) + ":" + RegistryServer::kPassword;
    }
    return o;
  }

  static StatusOr<std::unique_ptr<Repository>> OpenRepo(const RegistryServer& s, const std::string& name,
                                                        const Options& o) {
    ASSIGN_OR_RETURN(oci::Reference ref, oci::Reference::Parse(s.host() + "/" + name));
    return Repository::Open(ref, o);
  }

  // The message of a failed status, checked to be one line without secrets.
  static std::string Message(const Status& s) {
    EXPECT_FALSE(s.ok());
    const std::string& m = s.message();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find(RegistryServer::kPassword), std::string::npos) << m;
    EXPECT_EQ(m.find(Base64(std::string(RegistryServer::kUser) + ":" + RegistryServer::kPassword)),
              std::string::npos) << m;
    return m;
  }

  TempDir home_{"regdisk-home"};
  std::vector<std::unique_ptr<RegistryServer>> servers_;
};

class RoundTripTest : public RegistryClientTest, public ::testing::WithParamInterface<Flavour> {};

// Blobs (chunked and monolithic) and manifests through every flavour.
TEST_P(RoundTripTest, BlobsAndManifests) {
  RegistryServer* server = Start(GetParam());
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.chunk_size = 4 << 20;
  auto repo = OpenRepo(*server, "vm/disk", o);
  ASSERT_TRUE(repo.ok()) << repo.status().message();

  std::string big = RandomBytes(10 << 20, 1);  // three chunks, streamed in one PATCH
  ASSERT_TRUE(*(*repo)->HasBlob(oci::Digest::Of(big)) == false);
  auto writer = (*repo)->CreateBlob();
  ASSERT_TRUE(writer.ok());
  for (size_t off = 0; off < big.size(); off += 1 << 20) {
    ASSERT_TRUE((*writer)->Write(big.data() + off, std::min<size_t>(1 << 20, big.size() - off)).ok());
  }
  auto desc = (*writer)->Commit(oci::media::kOciLayerTar, oci::Digest::Of(big));
  ASSERT_TRUE(desc.ok()) << desc.status().message();
  EXPECT_TRUE((*writer)->created());
  EXPECT_EQ(desc->size, big.size());
  EXPECT_EQ(server->CountRequests("PATCH", "/v2/vm/disk/blobs/uploads/"), 1);

  auto read = oci::ReadBlob(**repo, desc->digest, 64 << 20);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_TRUE(*read == big);

  int puts = server->CountRequests("PUT", "/blobs/uploads/");
  auto image = PutTestImage(**repo, "v1", 1000, 2);  // small blobs: one PUT each, no PATCH
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(server->CountRequests("PUT", "/blobs/uploads/"), puts + 2);
  EXPECT_EQ(server->CountRequests("PATCH", "/v2/vm/disk/blobs/uploads/"), 1);

  auto again = (*repo)->CreateBlob();  // bytes the repository has: not created, not sent
  std::string small = RandomBytes(1000, 2);
  ASSERT_TRUE((*again)->Write(small.data(), small.size()).ok());
  ASSERT_TRUE((*again)->Commit(oci::media::kOciLayerTar, std::nullopt).ok());
  EXPECT_FALSE((*again)->created());
  EXPECT_EQ(server->CountRequests("PUT", "/blobs/uploads/"), puts + 2);

  for (std::string ref : {std::string("v1"), image->descriptor.digest.str()}) {
    auto m = (*repo)->GetManifest(ref);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->bytes, image->bytes);
    EXPECT_EQ(m->descriptor.digest, image->descriptor.digest);
    EXPECT_EQ(m->descriptor.media_type, oci::media::kOciManifest);
  }
  ASSERT_TRUE((*repo)->PutManifest(*image, "").ok());  // by digest only
  ASSERT_TRUE((*repo)->PutManifest(*image, "v2").ok());
  auto tags = (*repo)->ListTags();
  ASSERT_TRUE(tags.ok()) << tags.status().message();
  std::vector<std::string> names;
  for (const auto& t : *tags) names.push_back(t.first);
  EXPECT_EQ(names, (std::vector<std::string>{"v1", "v2"}));

  ASSERT_TRUE((*repo)->DeleteBlob(desc->digest).ok());
  EXPECT_FALSE(*(*repo)->HasBlob(desc->digest));
  EXPECT_EQ((*repo)->DeleteBlob(desc->digest).code(), Code::kNotFound);
}

std::string FlavourName(const ::testing::TestParamInfo<Flavour>& info) {
  static const char* const kNames[] = {"Open", "Basic", "Token", "Tls"};
  return kNames[static_cast<int>(info.param)];
}

INSTANTIATE_TEST_SUITE_P(Flavours, RoundTripTest,
                         ::testing::Values(Flavour::kOpen, Flavour::kBasic, Flavour::kToken, Flavour::kTls),
                         FlavourName);

// Layout -> registry -> layout with oci::CopyImage, byte-identical; a second
// push uploads nothing.
TEST_F(RegistryClientTest, CopyImageBothWays) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  TempDir dir;
  auto src = layout::Layout::Open(dir.path() + "/src", true);
  auto dst = layout::Layout::Open(dir.path() + "/dst", true);
  ASSERT_TRUE(src.ok() && dst.ok());
  auto image = PutTestImage(**src, "v1", 9 << 20, 3);
  ASSERT_TRUE(image.ok()) << image.status().message();
  oci::Index index{.media_type = oci::media::kOciIndex,
                   .manifests = {image->descriptor}};
  index.manifests[0].platform = oci::Platform{.architecture = "amd64", .os = "linux"};
  std::string index_bytes = oci::EncodeIndex(index);
  oci::RawManifest raw_index{.descriptor = {.media_type = oci::media::kOciIndex,
                                            .digest = oci::Digest::Of(index_bytes),
                                            .size = index_bytes.size()},
                             .bytes = index_bytes};
  ASSERT_TRUE((*src)->PutManifest(raw_index, "multi").ok());

  auto repo = OpenRepo(*server, "images/vm", OptionsFor(*server));
  ASSERT_TRUE(repo.ok()) << repo.status().message();
  for (const char* tag : {"v1", "multi"}) {
    Status pushed = oci::CopyImage(**src, tag, **repo, tag).status();
    ASSERT_TRUE(pushed.ok()) << pushed.message();
    Status pulled = oci::CopyImage(**repo, tag, **dst, tag).status();
    ASSERT_TRUE(pulled.ok()) << pulled.message();
  }
  auto manifest = oci::ParseManifest(image->bytes);
  ASSERT_TRUE(manifest.ok());
  std::vector<oci::Digest> all = {image->descriptor.digest, raw_index.descriptor.digest, manifest->config.digest,
                                  manifest->layers[0].digest};
  for (const oci::Digest& d : all) {
    EXPECT_EQ(Sha256File((*dst)->BlobPath(d)), d.hex());
    EXPECT_EQ(Sha256File((*src)->BlobPath(d)), d.hex());
  }
  auto got = (*repo)->GetManifest("multi");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->descriptor.media_type, oci::media::kOciIndex);

  // Pushing again (under a new tag) uploads no blob.
  int uploads = server->CountRequests("POST", "/blobs/uploads/") + server->CountRequests("PATCH", "/blobs/uploads/") +
                server->CountRequests("PUT", "/blobs/uploads/");
  ASSERT_TRUE(oci::CopyImage(**src, "multi", **repo, "again").ok());
  EXPECT_EQ(server->CountRequests("POST", "/blobs/uploads/") + server->CountRequests("PATCH", "/blobs/uploads/") +
                server->CountRequests("PUT", "/blobs/uploads/"),
            uploads);
  EXPECT_EQ(server->CountRequests("PUT", "/v2/images/vm/manifests/again"), 1);
}

// A blob of one repository mounted into another (token auth: the token
// needs two repository scopes) without uploading it.
TEST_F(RegistryClientTest, CrossRepositoryMount) {
  RegistryServer* server = Start(Flavour::kToken);
  ASSERT_EQ(server->error(), "");
  auto registry = registry::Registry::Connect(server->host(), OptionsFor(*server));
  ASSERT_TRUE(registry.ok()) << registry.status().message();
  Repository a(*registry, "team/a"), b(*registry, "team/b");
  auto desc = oci::WriteBlob(a, RandomBytes(3 << 20, 4), oci::media::kOciLayerTar);
  ASSERT_TRUE(desc.ok()) << desc.status().message();
  int patches = server->CountRequests("PATCH", "/blobs/uploads/");
  Status mounted = b.MountBlob(desc->digest, "team/a");
  ASSERT_TRUE(mounted.ok()) << mounted.message();
  EXPECT_TRUE(*b.HasBlob(desc->digest));
  EXPECT_EQ(server->CountRequests("POST", "/v2/team/b/blobs/uploads/?mount="), 1);
  EXPECT_EQ(server->CountRequests("PATCH", "/blobs/uploads/"), patches);

  auto absent = oci::Digest::Of("not there");
  Status s = b.MountBlob(absent, "team/a");
  EXPECT_EQ(s.code(), Code::kNotFound) << s.message();
  EXPECT_NE(Message(s).find("not mounted"), std::string::npos);
}

// Bytes altered in the registry's storage are refused at the end of the GET.
TEST_F(RegistryClientTest, CorruptBlobInStorageIsRefused) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  auto repo = OpenRepo(*server, "vm/corrupt", OptionsFor(*server));
  ASSERT_TRUE(repo.ok());
  std::string data = RandomBytes(5 << 20, 5);
  auto desc = oci::WriteBlob(**repo, data, oci::media::kOciLayerTar);
  ASSERT_TRUE(desc.ok()) << desc.status().message();
  {
    std::fstream f(server->BlobDataPath(desc->digest.hex()), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekp(4 << 20);
    f.put(static_cast<char>(data[4 << 20] ^ 1));
  }
  auto reader = (*repo)->OpenBlob(desc->digest);
  ASSERT_TRUE(reader.ok());
  std::vector<char> buf(1 << 20);
  Status end;
  for (;;) {
    auto n = (*reader)->Read(buf.data(), buf.size());
    if (!n.ok()) {
      end = n.status();
      break;
    }
    ASSERT_GT(*n, 0u) << "read to the end without an error";
  }
  EXPECT_EQ(end.code(), Code::kCorrupt);
  EXPECT_NE(Message(end).find("does not match its digest"), std::string::npos) << end.message();
  EXPECT_NE(end.message().find(server->host()), std::string::npos) << end.message();
}

TEST_F(RegistryClientTest, WrongPasswordBasic) {
  RegistryServer* server = Start(Flavour::kBasic);
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.credentials = std::string(RegistryServer::kUser) + ":wrong-" + RegistryServer::kPassword;
  auto repo = OpenRepo(*server, "vm/a", o);
  ASSERT_TRUE(repo.ok()) << repo.status().message();  // the ping needs no credentials
  auto m = (*repo)->GetManifest("v1");
  EXPECT_EQ(m.status().code(), Code::kUnauthorized);
  std::string msg = Message(m.status());
  EXPECT_EQ(msg, "registry " + server->host() +
                     ": repository vm/a: manifest \"v1\": UNAUTHORIZED: authentication required; the "
                     "credentials of user \"alice\" were refused");
  EXPECT_EQ(msg.find("wrong-"), std::string::npos);

  auto anonymous = OpenRepo(*server, "vm/a", OptionsFor(*server, false));
  ASSERT_TRUE(anonymous.ok());
  msg = Message((*anonymous)->GetManifest("v1").status());
  EXPECT_NE(msg.find("no credentials for " + server->host()), std::string::npos) << msg;
}

TEST_F(RegistryClientTest, WrongPasswordToken) {
  RegistryServer* server = Start(Flavour::kToken);
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.credentials = std::string(RegistryServer::kUser) + ":" + RegistryServer::kPassword + "x";
  auto repo = OpenRepo(*server, "vm/a", o);
  ASSERT_TRUE(repo.ok()) << repo.status().message();
  auto has = (*repo)->HasBlob(oci::Digest::Of("x"));
  EXPECT_EQ(has.status().code(), Code::kUnauthorized);
  std::string msg = Message(has.status());
  EXPECT_NE(msg.find("registry " + server->host() + ": getting a token from 127.0.0.1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("credentials of user \"alice\" were refused"), std::string::npos) << msg;
}

TEST_F(RegistryClientTest, MissingRepositoryAndUnknownTag) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  auto repo = OpenRepo(*server, "no/such", OptionsFor(*server));
  ASSERT_TRUE(repo.ok());
  auto tags = (*repo)->ListTags();
  EXPECT_EQ(tags.status().code(), Code::kNotFound);
  EXPECT_EQ(Message(tags.status()), "registry " + server->host() +
                                        ": repository no/such: listing tags: NAME_UNKNOWN: repository name not "
                                        "known to registry");
  auto blob = (*repo)->OpenBlob(oci::Digest::Of("x"));
  EXPECT_EQ(blob.status().code(), Code::kNotFound);
  EXPECT_NE(Message(blob.status()).find("BLOB_UNKNOWN"), std::string::npos) << blob.status().message();

  ASSERT_TRUE(PutTestImage(**repo, "v1", 100, 6).ok());
  auto m = (*repo)->GetManifest("v9");
  EXPECT_EQ(m.status().code(), Code::kNotFound);
  EXPECT_EQ(Message(m.status()),
            "registry " + server->host() + ": repository no/such: manifest \"v9\": MANIFEST_UNKNOWN: manifest unknown");
  EXPECT_EQ((*repo)->GetManifest("../x").status().code(), Code::kInvalidArgument);
}

TEST_F(RegistryClientTest, RegistryDown) {
  int port = FreePort();
  Options o;
  o.retry_times = 2;
  o.retry_delay = std::chrono::milliseconds(10);
  auto start = std::chrono::steady_clock::now();
  auto repo = Repository::Open(*oci::Reference::Parse("127.0.0.1:" + std::to_string(port) + "/a/b"), o);
  EXPECT_EQ(repo.status().code(), Code::kUnavailable);
  EXPECT_EQ(Message(repo.status()), "registry 127.0.0.1:" + std::to_string(port) + " is unreachable: Connection refused");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(RegistryClientTest, TlsNeedsTheCaOrNoVerification) {
  RegistryServer* server = Start(Flavour::kTls);
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.cert_dir.clear();
  auto untrusted = OpenRepo(*server, "vm/a", o);
  EXPECT_EQ(untrusted.status().code(), Code::kUnauthorized);
  EXPECT_NE(Message(untrusted.status()).find("TLS certificate not trusted"), std::string::npos)
      << untrusted.status().message();
  o.tls_verify = false;
  auto insecure = OpenRepo(*server, "vm/a", o);
  ASSERT_TRUE(insecure.ok()) << insecure.status().message();
  EXPECT_TRUE((*insecure)->registry().base_url().starts_with("https://"));  // never downgraded
  ASSERT_TRUE(PutTestImage(**insecure, "v1", 100, 7).ok());
}

TEST_F(RegistryClientTest, LoginStoresVerifiedCredentialsOnly) {
  for (Flavour f : {Flavour::kBasic, Flavour::kToken}) {
    RegistryServer* server = Start(f, "access_token");
    ASSERT_EQ(server->error(), "");
    std::string auth_file = home_.path() + "/auth.json";
    setenv("REGISTRY_AUTH_FILE", auth_file.c_str(), 1);
    Options o = OptionsFor(*server, false);
    Status bad = registry::Login(server->host(), RegistryServer::kUser, "nope-" + std::string(RegistryServer::kPassword), o);
    EXPECT_EQ(bad.code(), Code::kUnauthorized);
    EXPECT_EQ(Message(bad).find("nope-"), std::string::npos);
    auto stored = registry::FindCredentials(server->host());
    ASSERT_TRUE(stored.ok());
    EXPECT_FALSE(stored->has_value());

    Status good = registry::Login(server->host(), RegistryServer::kUser, RegistryServer::kPassword, o);
    ASSERT_TRUE(good.ok()) << good.message();
    struct stat st;
    ASSERT_EQ(::stat(auth_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto repo = OpenRepo(*server, "vm/login", o);  // credentials from the auth file
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    Status pushed = PutTestImage(**repo, "v1", 100, 8).status();
    EXPECT_TRUE(pushed.ok()) << pushed.message();

    ASSERT_TRUE(registry::Logout(server->host()).ok());
    EXPECT_EQ(registry::Logout(server->host()).code(), Code::kNotFound);
    auto anonymous = OpenRepo(*server, "vm/login", o);
    ASSERT_TRUE(anonymous.ok());
    EXPECT_EQ((*anonymous)->GetManifest("v1").status().code(), Code::kUnauthorized);
    // The secret travelled only in headers: no log line holds it.
    std::string log = server->Log();
    EXPECT_EQ(log.find(RegistryServer::kPassword), std::string::npos);
    EXPECT_EQ(log.find(Base64(std::string(RegistryServer::kUser) + ":" + RegistryServer::kPassword)),
              std::string::npos);
  }
}

// The registry is killed mid-download and started again: the reader resumes
// with a Range request and still verifies the whole blob.
TEST_F(RegistryClientTest, DownloadResumesAfterTheRegistryDied) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.retry_delay = std::chrono::milliseconds(200);
  o.parallel = 1;  // one stream, resumed with "Range: bytes=N-"
  auto repo = OpenRepo(*server, "vm/resume", o);
  ASSERT_TRUE(repo.ok());
  std::string data = RandomBytes(64 << 20, 9);
  auto desc = oci::WriteBlob(**repo, data, oci::media::kOciLayerTar);
  ASSERT_TRUE(desc.ok()) << desc.status().message();

  auto reader = (*repo)->OpenBlob(desc->digest);
  ASSERT_TRUE(reader.ok());
  std::string got;
  std::vector<char> buf(1 << 20);
  auto n = (*reader)->Read(buf.data(), buf.size());
  ASSERT_TRUE(n.ok());
  got.append(buf.data(), *n);
  ASSERT_TRUE(server->Restart());
  for (;;) {
    n = (*reader)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok()) << n.status().message();
    if (*n == 0) break;
    got.append(buf.data(), *n);
  }
  EXPECT_TRUE(got == data);
  // The GET cut by the kill is not logged; the resumed one is a 206.
  EXPECT_EQ(server->CountRequests("GET", "/v2/vm/resume/blobs/" + desc->digest.str(), 206), 1);
}

// Parallel Range requests against the real registry (which honours Range)
// give the same bytes, and so the same digest, as one stream; with
// parallel 1 the blob comes in one GET, with 4 in several 206 answers.
TEST_F(RegistryClientTest, ParallelRangedPullEqualsOneStream) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  std::string data = RandomBytes((21 << 20) + 4321, 11);
  std::string path = "/v2/vm/ranged/blobs/" + oci::Digest::Of(data).str();
  std::string got[2];
  for (int parallel : {1, 4}) {
    Options o = OptionsFor(*server);
    o.parallel = parallel;
    auto repo = OpenRepo(*server, "vm/ranged", o);
    ASSERT_TRUE(repo.ok());
    auto desc = oci::WriteBlob(**repo, data, oci::media::kOciLayerTar);
    ASSERT_TRUE(desc.ok()) << desc.status().message();
    int before = server->CountRequests("GET", path);
    auto back = oci::ReadBlob(**repo, desc->digest, 64 << 20);
    ASSERT_TRUE(back.ok()) << back.status().message();
    got[parallel == 4] = *back;
    if (parallel == 1) {
      EXPECT_EQ(server->CountRequests("GET", path), before + 1);
    } else {
      EXPECT_GT(server->CountRequests("GET", path, 206), 4);  // the window is bounded in segments
    }
  }
  EXPECT_EQ(oci::Digest::Of(got[0]), oci::Digest::Of(got[1]));
  EXPECT_TRUE(got[0] == data);
  EXPECT_TRUE(got[1] == data);
}

// ReadAt: one Range request per call, exactly the bytes asked for; a range
// past the blob's end is an error, not a short read.
TEST_F(RegistryClientTest, ReadAtIsOneRangeRequestForExactlyTheBytes) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  auto repo = OpenRepo(*server, "vm/readat", OptionsFor(*server));
  ASSERT_TRUE(repo.ok());
  std::string data = RandomBytes((3 << 20) + 77, 12);
  auto desc = oci::WriteBlob(**repo, data, oci::media::kOciLayerTar);
  ASSERT_TRUE(desc.ok()) << desc.status().message();
  std::string path = "/v2/vm/readat/blobs/" + desc->digest.str();
  int before = server->CountRequests("GET", path, 206);
  std::string buf(100000, '\0');
  ASSERT_TRUE((*repo)->ReadAt(desc->digest, (2 << 20) + 5, buf.data(), buf.size()).ok());
  EXPECT_TRUE(buf == data.substr((2 << 20) + 5, buf.size()));
  ASSERT_TRUE((*repo)->ReadAt(desc->digest, data.size() - 7, buf.data(), 7).ok());
  EXPECT_EQ(buf.substr(0, 7), data.substr(data.size() - 7));
  EXPECT_EQ(server->CountRequests("GET", path, 206), before + 2);
  EXPECT_FALSE((*repo)->ReadAt(desc->digest, data.size() - 7, buf.data(), 8).ok());
  EXPECT_FALSE((*repo)->ReadAt(oci::Digest::Of("absent"), 0, buf.data(), 8).ok());
}

// The same blob as a PATCH per chunk (Options::stream_uploads off).
TEST_F(RegistryClientTest, ChunkedUpload) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.chunk_size = 4 << 20;
  o.stream_uploads = false;
  auto repo = OpenRepo(*server, "vm/chunked", o);
  ASSERT_TRUE(repo.ok());
  std::string data = RandomBytes(10 << 20, 3);
  auto desc = oci::WriteBlob(**repo, data, oci::media::kOciLayerTar);
  ASSERT_TRUE(desc.ok()) << desc.status().message();
  EXPECT_EQ(server->CountRequests("PATCH", "/v2/vm/chunked/blobs/uploads/"), 3);
  auto back = oci::ReadBlob(**repo, desc->digest, 16 << 20);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == data);
}

// The registry dies while a blob streams in one PATCH, after the ring freed
// its first chunks: the writer fails with kUnavailable (the caller must
// send it again), the registry has no such blob, and sending it again works.
TEST_F(RegistryClientTest, StreamBrokenMidwayIsUnavailable) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.chunk_size = 1 << 20;
  o.retry_delay = std::chrono::milliseconds(10);
  auto repo = OpenRepo(*server, "vm/stream", o);
  ASSERT_TRUE(repo.ok());
  std::string data = RandomBytes((6 << 20) + 5, 12);
  auto writer = (*repo)->CreateBlob();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(data.data(), 3 << 20).ok());  // the first chunks left the ring
  server->Kill();
  Status s = (*writer)->Write(data.data() + (3 << 20), data.size() - (3 << 20));
  if (s.ok()) s = (*writer)->Commit(oci::media::kOciLayerTar, oci::Digest::Of(data)).status();
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.message();
  EXPECT_NE(Message(s).find("sent again"), std::string::npos) << s.message();
  writer->reset();
  server->Restart();
  EXPECT_FALSE(*(*repo)->HasBlob(oci::Digest::Of(data)));
  auto desc = oci::WriteBlob(**repo, data, oci::media::kOciLayerTar);
  ASSERT_TRUE(desc.ok()) << desc.status().message();
  auto back = oci::ReadBlob(**repo, desc->digest, 16 << 20);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == data);
}

// The registry dies between two chunks of an upload and comes back: the
// writer asks the upload URL where it stands and goes on from there.
TEST_F(RegistryClientTest, UploadResumesAfterTheRegistryDied) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.chunk_size = 1 << 20;
  o.stream_uploads = false;  // a PATCH per chunk
  o.retry_times = 6;
  o.retry_delay = std::chrono::milliseconds(100);
  auto repo = OpenRepo(*server, "vm/upload", o);
  ASSERT_TRUE(repo.ok());
  std::string data = RandomBytes((5 << 20) + 123, 10);
  auto writer = (*repo)->CreateBlob();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(data.data(), 2 << 20).ok());  // two chunks handed to the sender
  // The sender sends them while Write goes on: wait until the registry
  // accepted both, so that it dies between two chunks.
  for (int i = 0; i < 200 && server->CountRequests("PATCH", "/v2/vm/upload/blobs/uploads/", 202) < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  server->Kill();
  std::thread revive([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    server->Restart();
  });
  Status s = (*writer)->Write(data.data() + (2 << 20), data.size() - (2 << 20));
  revive.join();
  ASSERT_TRUE(s.ok()) << s.message();
  auto desc = (*writer)->Commit(oci::media::kOciLayerTar, oci::Digest::Of(data));
  ASSERT_TRUE(desc.ok()) << desc.status().message();
  EXPECT_GE(server->CountRequests("GET", "/v2/vm/upload/blobs/uploads/"), 1);  // asked where it stood
  auto back = oci::ReadBlob(**repo, desc->digest, 16 << 20);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == data);
}

// One Repository used by several threads at once, for different blobs.
TEST_F(RegistryClientTest, ConcurrentBlobs) {
  RegistryServer* server = Start(Flavour::kToken);
  ASSERT_EQ(server->error(), "");
  Options o = OptionsFor(*server);
  o.chunk_size = 1 << 20;
  auto repo = OpenRepo(*server, "vm/parallel", o);
  ASSERT_TRUE(repo.ok());
  std::vector<Status> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      std::string data = RandomBytes((3 << 20) + i, 20 + i);
      auto desc = oci::WriteBlob(**repo, data, oci::media::kOciLayerTar);
      if (!desc.ok()) return void(results[i] = desc.status());
      auto back = oci::ReadBlob(**repo, desc->digest, 16 << 20);
      if (!back.ok()) return void(results[i] = back.status());
      if (*back != data) results[i] = Corrupt("thread " + std::to_string(i) + " read other bytes");
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.message();
}

// skopeo reads what regdisk pushed, and regdisk reads what skopeo pushed.
TEST_F(RegistryClientTest, SkopeoInterop) {
  RegistryServer* server = Start(Flavour::kOpen);
  ASSERT_EQ(server->error(), "");
  TempDir dir;
  auto src = layout::Layout::Open(dir.path() + "/src", true);
  ASSERT_TRUE(src.ok());
  auto image = PutTestImage(**src, "v1", 3 << 20, 11, /*gzip=*/true);
  ASSERT_TRUE(image.ok());
  auto repo = OpenRepo(*server, "interop/ours", OptionsFor(*server));
  ASSERT_TRUE(repo.ok());
  ASSERT_TRUE(oci::CopyImage(**src, "v1", **repo, "v1").ok());

  std::string pulled = dir.path() + "/skopeo-pulled";
  auto r = testing::RunCmd({"skopeo", "copy", "--src-tls-verify=false", "docker://" + server->host() + "/interop/ours:v1",
                "oci:" + pulled + ":v1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto theirs = layout::Layout::Open(pulled, false);
  ASSERT_TRUE(theirs.ok());
  auto m = (*theirs)->GetManifest("v1");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->bytes, image->bytes);  // not re-encoded on the way

  r = testing::RunCmd({"skopeo", "copy", "--dest-tls-verify=false", "oci:" + dir.path() + "/src:v1",
           "docker://" + server->host() + "/interop/theirs:sk"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto their_repo = OpenRepo(*server, "interop/theirs", OptionsFor(*server));
  ASSERT_TRUE(their_repo.ok());
  auto dst = layout::Layout::Open(dir.path() + "/dst", true);
  ASSERT_TRUE(dst.ok());
  Status copied = oci::CopyImage(**their_repo, "sk", **dst, "sk").status();
  ASSERT_TRUE(copied.ok()) << copied.message();
  auto got = (*dst)->GetManifest("sk");
  ASSERT_TRUE(got.ok());
  auto parsed = oci::ParseManifest(got->bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->config.digest, oci::ParseManifest(image->bytes)->config.digest);
}

}  // namespace
}  // namespace regdisk::testing
