#include "oci/manifest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "oci/media_types.h"

namespace regdisk::oci {
namespace {

const std::string kHexA = std::string(64, 'a');
const std::string kDigestA = "sha256:" + kHexA;
const std::string kDigestB = "sha256:" + std::string(64, 'b');

Digest D(char c) { return *Digest::Parse("sha256:" + std::string(64, c)); }

// A descriptor as JSON text.
std::string Desc(const std::string& media_type, const std::string& digest, const std::string& size) {
  return R"({"mediaType":")" + media_type + R"(","digest":")" + digest + R"(","size":)" + size + "}";
}
const std::string kLayer = Desc(media::kOciLayerGzip, kDigestA, "10");
const std::string kConfig = Desc(media::kOciConfig, kDigestB, "20");

std::string ManifestJson(const std::string& layers, const std::string& config = kConfig) {
  return R"({"schemaVersion":2,"mediaType":")" + std::string(media::kOciManifest) + R"(","config":)" +
         config + R"(,"layers":[)" + layers + "]}";
}

// The fixed values behind the golden files.
Manifest SampleManifest() {
  Manifest m;
  m.media_type = media::kOciManifest;
  m.config = {media::kOciConfig, D('c'), 1234, {}, std::nullopt};
  m.layers.push_back({media::kOciLayerZstd,
                      D('1'),
                      1000000,
                      {{annotation::kDiskFormat, "qcow2"}, {annotation::kDiskPath, "/disk/root"}},
                      std::nullopt});
  m.layers.push_back({media::kOciLayerGzip, D('2'), 0, {}, std::nullopt});
  m.annotations = {{annotation::kCreated, "2024-01-02T03:04:05Z"}, {annotation::kDiskStandard, "v1alpha"}};
  return m;
}

ImageConfig SampleConfig() {
  ImageConfig c;
  c.architecture = "arm64";
  c.os = "linux";
  c.variant = "v8";
  c.created = "2024-01-02T03:04:05Z";
  c.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  c.entrypoint = {"/init"};
  c.cmd = {"--verbose"};
  c.user = "1000:1000";
  c.labels = {{"org.opencontainers.image.title", "fedora"}, {"io.regdisk.test", "yes"}};
  c.diff_ids = {D('1'), D('2')};
  c.history = {{"2024-01-02T03:04:05Z", "regdisk build", "disk root", false},
               {"2024-01-02T03:04:05Z", "LABEL a=b", "", true}};
  return c;
}

std::string ReadGolden(const std::string& name) {
  std::string path = std::string(REGDISK_SOURCE_DIR) + "/src/oci/testdata/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.ends_with("\n")) s.pop_back();  // editors add one; the encoding has none
  return s;
}

TEST(Manifest, RoundTrips) {
  Manifest m = SampleManifest();
  std::string bytes = EncodeManifest(m);
  auto back = ParseManifest(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->media_type, media::kOciManifest);
  EXPECT_EQ(back->config.digest, m.config.digest);
  EXPECT_EQ(back->config.size, 1234u);
  ASSERT_EQ(back->layers.size(), 2u);
  EXPECT_EQ(back->layers[0].media_type, media::kOciLayerZstd);
  EXPECT_EQ(back->layers[0].annotations, m.layers[0].annotations);
  EXPECT_EQ(back->layers[1].size, 0u);
  EXPECT_EQ(back->annotations, m.annotations);
  EXPECT_EQ(EncodeManifest(*back), bytes);
}

TEST(Manifest, GoldenFiles) {
  EXPECT_EQ(EncodeManifest(SampleManifest()), ReadGolden("manifest.golden.json"));
  EXPECT_EQ(EncodeImageConfig(SampleConfig()), ReadGolden("config.golden.json"));
}

TEST(Manifest, EncodingLeavesOutEmptyFieldsAndWritesOci) {
  Manifest m;
  m.media_type = media::kDockerManifest;
  m.config = {media::kDockerConfig, D('c'), 5, {}, std::nullopt};
  m.layers.push_back({media::kDockerLayerGzip, D('1'), 7, {}, std::nullopt});
  EXPECT_EQ(EncodeManifest(m),
            R"({"config":{"digest":"sha256:)" + std::string(64, 'c') +
                R"(","mediaType":"application/vnd.docker.container.image.v1+json","size":5},)"
                R"("layers":[{"digest":"sha256:)" +
                std::string(64, '1') +
                R"(","mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":7}],)"
                R"("mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2})");

  ImageConfig c;
  c.architecture = "amd64";
  c.os = "linux";
  EXPECT_EQ(EncodeImageConfig(c),
            R"({"architecture":"amd64","config":{},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}})");
}

TEST(Manifest, EncodingReplacesInvalidUtf8) {
  Manifest m = SampleManifest();
  m.annotations["bad"] = "\xff\xfe";
  std::string bytes = EncodeManifest(m);
  auto back = ParseManifest(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->annotations["bad"], "\xef\xbf\xbd\xef\xbf\xbd");  // two U+FFFD
}

TEST(Manifest, DockerSchema2) {
  const char* kDocker = R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 7023,
      "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
    },
    "layers": [
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
       "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"},
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 16724,
       "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b"},
      {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 73109,
       "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
       "urls": ["https://example.com/layer"]}
    ]
  })";
  auto m = ParseManifest(kDocker);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->media_type, media::kDockerManifest);
  EXPECT_TRUE(IsManifestType(m->media_type));
  EXPECT_EQ(m->config.media_type, media::kDockerConfig);
  EXPECT_EQ(m->config.size, 7023u);
  ASSERT_EQ(m->layers.size(), 3u);
  EXPECT_EQ(m->layers[2].digest.short_hex(), "ec4b89559586");
  EXPECT_EQ(*SniffMediaType(kDocker), media::kDockerManifest);
}

TEST(Manifest, OciWithoutMediaType) {
  std::string j = R"({"schemaVersion":2,"config":)" + kConfig + R"(,"layers":[)" + kLayer + "]}";
  auto m = ParseManifest(j);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->media_type, media::kOciManifest);
  EXPECT_EQ(*SniffMediaType(j), media::kOciManifest);
}

TEST(Manifest, NullOptionalFieldsAndBracketsInStrings) {
  // Brackets inside strings do not count towards the nesting limit.
  std::string deep_string(1000, '[');
  std::string j = R"({"schemaVersion":2,"annotations":{"x":"\")" + deep_string + R"("},"config":)" + kConfig +
                  R"(,"layers":[)" + kLayer + "]}";
  auto m = ParseManifest(j);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->annotations["x"], "\"" + deep_string);
}

struct Bad {
  std::string json, why;
};

void ExpectAllFail(const std::vector<Bad>& cases, const char* prefix,
                   const std::function<Status(std::string_view)>& parse) {
  for (const auto& c : cases) {
    Status st = parse(c.json);
    std::string shown = c.json.substr(0, 200);
    ASSERT_FALSE(st.ok()) << "accepted: " << shown;
    EXPECT_TRUE(st.message().starts_with(prefix)) << st.message();
    EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.message();
    EXPECT_LT(st.message().size(), 1000u) << st.message().substr(0, 200);
    EXPECT_NE(st.message().find(c.why), std::string::npos) << shown << "\n gave: " << st.message();
  }
}

TEST(Manifest, RefusesMaliciousInput) {
  std::string valid = ManifestJson(kLayer);
  std::string huge = valid + std::string(kMaxManifestBytes, ' ');
  const std::vector<Bad> cases = {
      {"", "invalid JSON"},
      {"null", "must be a JSON object"},
      {"[]", "must be a JSON object"},
      {"\"manifest\"", "must be a JSON object"},
      {"42", "must be a JSON object"},
      {"{", "invalid JSON"},
      {valid.substr(0, valid.size() - 10), "invalid JSON"},
      {valid + "garbage", "invalid JSON"},
      {valid.substr(0, 20) + std::string("\0", 1) + valid.substr(20), "invalid JSON"},
      {"{\"schemaVersion\":2,\"mediaType\":\"a\xff\"}", "invalid JSON"},  // not UTF-8
      {huge, "more than the limit"},
      {std::string(100000, '['), "nested deeper than 64"},
      {"{\"schemaVersion\":2,\"x\":" + std::string(65, '[') + std::string(65, ']') + "}", "nested deeper"},
      {[] {
         std::string s;
         for (int i = 0; i < 50000; ++i) s += "{\"a\":";
         return s;
       }(),
       "nested deeper"},
      {"{}", "schemaVersion: required field is missing"},
      {R"({"schemaVersion":"2"})", "schemaVersion: must be 2"},
      {R"({"schemaVersion":2.0})", "schemaVersion: must be 2"},
      {R"({"schemaVersion":3})", "schemaVersion: must be 2"},
      {R"({"schemaVersion":-2})", "schemaVersion: must be 2"},
      {R"({"schemaVersion":1,"name":"x","fsLayers":[]})", "schema 1"},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})",
       "is not an image manifest"},
      {R"({"schemaVersion":2,"mediaType":5})", "mediaType: must be a string"},
      {R"({"schemaVersion":2,"layers":[]})", "config: required field is missing"},
      {R"({"schemaVersion":2,"config":[],"layers":[]})", "config: must be an object"},
      {R"({"schemaVersion":2,"config":{"mediaType":"a/b","size":1},"layers":[]})",
       "config.digest: required field is missing"},
      {R"({"schemaVersion":2,"config":)" + kConfig + "}", "layers: required field is missing"},
      {R"({"schemaVersion":2,"config":)" + kConfig + R"(,"layers":{}})", "layers: must be an array"},
      {ManifestJson("1"), "layers[0]: must be an object"},
      {ManifestJson(kLayer + "," + kLayer + "," + Desc("a/b", "x", "1")),
       "manifest: layers[2].digest: invalid digest \"x\": "},
      {ManifestJson(Desc("a/b", "sha256:../../etc/passwd", "1")), "layers[0].digest: invalid digest"},
      {ManifestJson(Desc("a/b", "sha512:" + kHexA + kHexA, "1")), "invalid digest"},
      {ManifestJson(R"({"mediaType":"a/b","digest":5,"size":1})"), "layers[0].digest: must be a string"},
      {ManifestJson(Desc("a/b", kDigestA, "-1")), "layers[0].size: must be an integer"},
      {ManifestJson(Desc("a/b", kDigestA, "1.5")), "size: must be an integer"},
      {ManifestJson(Desc("a/b", kDigestA, "1e3")), "size: must be an integer"},
      {ManifestJson(Desc("a/b", kDigestA, "\"12\"")), "size: must be an integer"},
      {ManifestJson(Desc("a/b", kDigestA, "true")), "size: must be an integer"},
      {ManifestJson(Desc("a/b", kDigestA, "9223372036854775808")), "size: must be an integer"},
      {ManifestJson(Desc("a/b", kDigestA, "18446744073709551616")), "size: must be an integer"},
      {ManifestJson(Desc("a/b", kDigestA, "1" + std::string(400, '0'))), "number overflow"},
      {ManifestJson(R"({"mediaType":"a/b","digest":")" + kDigestA + "\"}"), "layers[0].size: required field"},
      {ManifestJson(Desc("", kDigestA, "1")), "layers[0].mediaType: invalid media type"},
      {ManifestJson(Desc("text/plain\\r\\nX-Evil: 1", kDigestA, "1")), "invalid media type"},
      {ManifestJson(R"({"digest":")" + kDigestA + R"(","size":1})"), "layers[0].mediaType: required field"},
      {ManifestJson(kLayer, Desc("noslash", kDigestB, "1")), "config.mediaType: invalid media type"},
      {R"({"schemaVersion":2,"config":)" + kConfig + R"(,"layers":[],"annotations":{"a":1}})",
       "annotations[\"a\"]: must be a string"},
      {R"({"schemaVersion":2,"config":)" + kConfig + R"(,"layers":[],"annotations":[]})",
       "annotations: must be an object"},
  };
  ExpectAllFail(cases, "manifest: ", [](std::string_view s) { return ParseManifest(s).status(); });
}

TEST(Index, DockerManifestListAndSelectPlatform) {
  const char* kList = R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [
      {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 7143,
       "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
       "platform": {"architecture": "ppc64le", "os": "linux"}},
      {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 7682,
       "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
       "platform": {"architecture": "amd64", "os": "linux", "features": ["sse4"]}},
      {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
       "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
       "platform": {"architecture": "arm64", "os": "linux"}},
      {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
       "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
       "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}}
    ]
  })";
  auto index = ParseIndex(kList);
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->media_type, media::kDockerManifestList);
  EXPECT_TRUE(IsIndexType(index->media_type));
  EXPECT_EQ(*SniffMediaType(kList), media::kDockerManifestList);
  ASSERT_EQ(index->manifests.size(), 4u);

  auto pick = SelectPlatform(*index, *Platform::Parse("linux/amd64"));
  ASSERT_TRUE(pick.ok()) << pick.status().message();
  EXPECT_EQ(pick->size, 7682u);
  // arm64 without a variant is arm64/v8.
  pick = SelectPlatform(*index, *Platform::Parse("linux/arm64/v8"));
  ASSERT_TRUE(pick.ok()) << pick.status().message();
  EXPECT_EQ(pick->digest, D('1'));
  pick = SelectPlatform(*index, *Platform::Parse("linux/arm/v7"));
  ASSERT_TRUE(pick.ok());
  EXPECT_EQ(pick->digest, D('2'));

  auto none = SelectPlatform(*index, *Platform::Parse("linux/s390x"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_EQ(none.status().message(),
            "no image for platform linux/s390x in the index (it has: \"linux/ppc64le\", \"linux/amd64\", "
            "\"linux/arm64\", \"linux/arm/v7\")");
  EXPECT_FALSE(SelectPlatform(*index, *Platform::Parse("linux/arm/v6")).ok());
  auto empty = SelectPlatform(Index{}, *Platform::Parse("linux/amd64"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no platforms"), std::string::npos);
}

TEST(Index, RoundTrips) {
  Index index;
  index.media_type = media::kOciIndex;
  index.manifests.push_back({media::kOciManifest, D('1'), 100, {}, Platform{"amd64", "linux", ""}});
  index.manifests.push_back(
      {media::kOciManifest, D('2'), 200, {{annotation::kRefName, "v1"}}, Platform{"arm64", "linux", "v8"}});
  index.manifests.push_back({media::kOciManifest, D('3'), 300, {}, std::nullopt});
  index.annotations[annotation::kCreated] = "2024-01-02T03:04:05Z";
  std::string bytes = EncodeIndex(index);
  EXPECT_EQ(bytes.find("\"variant\":\"\""), std::string::npos);
  auto back = ParseIndex(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->manifests.size(), 3u);
  EXPECT_EQ(back->manifests[1].platform->str(), "linux/arm64/v8");
  EXPECT_EQ(back->manifests[1].annotations, index.manifests[1].annotations);
  EXPECT_FALSE(back->manifests[2].platform);
  EXPECT_EQ(EncodeIndex(*back), bytes);
  EXPECT_EQ(*SniffMediaType(bytes), media::kOciIndex);
}

TEST(Index, RefusesMalformed) {
  auto entry = [](const std::string& platform) {
    return R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":")" + kDigestA +
           R"(","size":1,"platform":)" + platform + "}]}";
  };
  const std::vector<Bad> cases = {
      {R"({"schemaVersion":2})", "index: manifests: required field is missing"},
      {R"({"schemaVersion":2,"manifests":null})", "manifests: required field is missing"},
      {R"({"schemaVersion":2,"manifests":"x"})", "manifests: must be an array"},
      {R"({"schemaVersion":2,"manifests":[{}]})", "manifests[0].mediaType: required field is missing"},
      {ManifestJson(kLayer), "is not an image index"},
      {entry("\"linux/amd64\""), "manifests[0].platform: must be an object"},
      {entry(R"({"architecture":"amd64"})"), "manifests[0].platform.os: required field is missing"},
      {entry(R"({"architecture":"amd64","os":["linux"]})"), "platform.os: must be a string"},
      {entry(R"({"architecture":"amd64","os":"linux","variant":8})"), "platform.variant: must be a string"},
  };
  ExpectAllFail(cases, "index: ", [](std::string_view s) { return ParseIndex(s).status(); });
}

TEST(ImageConfig, RoundTrips) {
  ImageConfig c = SampleConfig();
  std::string bytes = EncodeImageConfig(c);
  auto back = ParseImageConfig(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->architecture, "arm64");
  EXPECT_EQ(back->variant, "v8");
  EXPECT_EQ(back->created, c.created);
  EXPECT_EQ(back->env, c.env);
  EXPECT_EQ(back->entrypoint, c.entrypoint);
  EXPECT_EQ(back->cmd, c.cmd);
  EXPECT_EQ(back->user, c.user);
  EXPECT_EQ(back->labels, c.labels);
  EXPECT_EQ(back->diff_ids, c.diff_ids);
  ASSERT_EQ(back->history.size(), 2u);
  EXPECT_EQ(back->history[0].comment, "disk root");
  EXPECT_FALSE(back->history[0].empty_layer);
  EXPECT_TRUE(back->history[1].empty_layer);
  EXPECT_EQ(EncodeImageConfig(*back), bytes);
}

TEST(ImageConfig, DockerConfig) {
  const char* kDocker = R"({"architecture":"amd64","config":{"Hostname":"","Env":["PATH=/usr/bin:/bin"],
    "Cmd":["sh"],"Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},
    "container":"abc","created":"2023-07-18T23:19:33.655005962Z","docker_version":"20.10.23",
    "history":[{"created":"2023-07-18T23:19:33.538571854Z","created_by":"/bin/sh -c #(nop) ADD file:x in / "},
      {"created":"2023-07-18T23:19:33.655005962Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],
    "os":"linux","rootfs":{"type":"layers","diff_ids":
      ["sha256:3d24ee258efc3bfe4066a1a9fb83febf6dc0b1548dfe896161533668281c9f4f"]}})";
  auto c = ParseImageConfig(kDocker);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->os, "linux");
  EXPECT_EQ(c->cmd, std::vector<std::string>{"sh"});
  EXPECT_TRUE(c->entrypoint.empty());
  EXPECT_TRUE(c->labels.empty());
  ASSERT_EQ(c->diff_ids.size(), 1u);
  ASSERT_EQ(c->history.size(), 2u);
  EXPECT_TRUE(c->history[1].empty_layer);

  // Docker leaves diff_ids out for an image without layers.
  auto scratch = ParseImageConfig(R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})");
  ASSERT_TRUE(scratch.ok()) << scratch.status().message();
  EXPECT_TRUE(scratch->diff_ids.empty());
}

TEST(ImageConfig, RefusesMalformed) {
  auto with = [](const std::string& extra) {
    return R"({"architecture":"amd64","os":"linux",)" + extra + "}";
  };
  const std::string rootfs = R"("rootfs":{"type":"layers","diff_ids":[]})";
  const std::vector<Bad> cases = {
      {"[]", "config: must be a JSON object"},
      {R"({"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})",
       "architecture: required field is missing"},
      {R"({"architecture":"amd64","os":1})", "os: must be a string"},
      {with(R"("x":1)"), "rootfs: required field is missing"},
      {with(R"("rootfs":[])"), "rootfs: must be an object"},
      {with(R"("rootfs":{"diff_ids":[]})"), "rootfs.type: required field is missing"},
      {with(R"("rootfs":{"type":"tar","diff_ids":[]})"), "rootfs.type: must be \"layers\""},
      {with(R"("rootfs":{"type":"layers","diff_ids":"x"})"), "rootfs.diff_ids: must be an array"},
      {with(R"("rootfs":{"type":"layers","diff_ids":[1]})"), "rootfs.diff_ids[0]: must be a string"},
      {with(R"("rootfs":{"type":"layers","diff_ids":["sha256:00"]})"), "rootfs.diff_ids[0]: invalid digest"},
      {with(rootfs + R"(,"config":[])"), "config: config: must be an object"},
      {with(rootfs + R"(,"config":{"Env":"A=B"})"), "config.Env: must be an array of strings"},
      {with(rootfs + R"(,"config":{"Cmd":["a",2]})"), "config.Cmd[1]: must be a string"},
      {with(rootfs + R"(,"config":{"User":0})"), "config.User: must be a string"},
      {with(rootfs + R"(,"config":{"Labels":{"a":true}})"), "config.Labels[\"a\"]: must be a string"},
      {with(rootfs + R"(,"history":{})"), "history: must be an array"},
      {with(rootfs + R"(,"history":[1])"), "history[0]: must be an object"},
      {with(rootfs + R"(,"history":[{"empty_layer":"yes"}])"),
       "history[0].empty_layer: must be true or false"},
      {with(rootfs + R"(,"created":5)"), "created: must be a string"},
  };
  ExpectAllFail(cases, "config: ", [](std::string_view s) { return ParseImageConfig(s).status(); });
}

TEST(SniffMediaType, Cases) {
  EXPECT_EQ(*SniffMediaType(R"({"mediaType":"application/vnd.oci.image.index.v1+json"})"), media::kOciIndex);
  EXPECT_EQ(*SniffMediaType(R"({"schemaVersion":2,"manifests":[]})"), media::kOciIndex);
  EXPECT_EQ(*SniffMediaType(R"({"schemaVersion":2,"config":{}})"), media::kOciManifest);
  const std::vector<Bad> cases = {
      {"{}", "schemaVersion: required field is missing"},
      {R"({"schemaVersion":2})", "cannot tell the media type"},
      {R"({"schemaVersion":1,"fsLayers":[]})", "schema 1"},
      {R"({"mediaType":1})", "mediaType: must be a string"},
      {R"({"mediaType":"nonsense"})", "invalid media type"},
      {"[1]", "must be a JSON object"},
      {"{\"mediaType\":", "invalid JSON"},
  };
  ExpectAllFail(cases, "manifest: ", [](std::string_view s) { return SniffMediaType(s).status(); });
}

TEST(DiskLimits, SizeAnnotationsAreCheckedNumbers) {
  EXPECT_EQ(*ParseSizeAnnotation("k", "1048576"), 1048576u);
  EXPECT_EQ(*ParseSizeAnnotation("k", "18446744073709551615"), UINT64_MAX);
  for (const char* bad : {"", "12abc", "-1", "+1", " 1", "1e9", "18446744073709551616", "0x10"}) {
    auto r = ParseSizeAnnotation("io.regdisk.disk.virtual-size", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message(), "annotation io.regdisk.disk.virtual-size = " + Quote(bad) +
                                        ": expected a size in bytes (decimal digits)");
  }
}

TEST(DiskLimits, LayersAndDeclaredSizesOverTheLimitAreRefused) {
  Manifest m;
  Descriptor layer{media::kOciLayerZstd, Digest::Of("l"), 67 << 10, {}, {}};
  layer.annotations = {{annotation::kDiskPath, "/disk/\x1b[2Jbomb.img"}, {annotation::kDiskVirtualSize, "2147483648"}};
  m.layers.push_back(layer);
  EXPECT_TRUE(CheckDiskLimits(m, 2ull << 30).ok());
  EXPECT_EQ(CheckDiskLimits(m, 1ull << 30).message(),
            "disk \"/disk/\\x1b[2Jbomb.img\" declares a virtual size of 2147483648 bytes, over the disk size limit "
            "of 1073741824 bytes (--max-disk-size)");
  EXPECT_NE(CheckDiskLimits(m, 64 << 10).message().find("is 68608 bytes, over the disk size limit"), std::string::npos);
  m.layers[0].annotations[annotation::kDiskVirtualSize] = "lots";
  EXPECT_NE(CheckDiskLimits(m, 2ull << 30).message().find("expected a size in bytes"), std::string::npos);
}

TEST(Platform, Parse) {
  struct Case {
    std::string in, str;
  };
  const Case valid[] = {
      {"linux/amd64", "linux/amd64"},     {"linux/arm64/v8", "linux/arm64/v8"},
      {"linux/arm/v7", "linux/arm/v7"},   {"linux/x86_64", "linux/amd64"},
      {"linux/aarch64", "linux/arm64"},   {"linux/armv7l", "linux/arm/v7"},
      {"linux/riscv64", "linux/riscv64"}, {"windows/amd64", "windows/amd64"},
  };
  for (const auto& c : valid) {
    auto p = Platform::Parse(c.in);
    ASSERT_TRUE(p.ok()) << c.in << ": " << p.status().message();
    EXPECT_EQ(p->str(), c.str);
  }
  for (std::string bad : {"", "linux", "linux/", "/amd64", "linux//v8", "linux/amd64/", "linux/amd64/v8/x",
                          "Linux/amd64", "linux/amd 64", "linux\n/amd64"}) {
    auto p = Platform::Parse(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_TRUE(p.status().message().starts_with("invalid platform \"")) << p.status().message();
    EXPECT_EQ(p.status().message().find('\n'), std::string::npos);
  }
}

TEST(Platform, Matches) {
  Platform arm64{"arm64", "linux", ""}, arm64v8{"arm64", "linux", "v8"}, armv7{"arm", "linux", "v7"},
      armv6{"arm", "linux", "v6"}, amd64{"amd64", "linux", ""};
  EXPECT_TRUE(arm64.Matches(arm64v8));
  EXPECT_TRUE(arm64v8.Matches(arm64));
  EXPECT_FALSE(arm64.Matches(amd64));
  EXPECT_TRUE(Platform({"arm", "linux", ""}).Matches(armv7));
  EXPECT_FALSE(armv7.Matches(armv6));
  EXPECT_FALSE(amd64.Matches(Platform{"amd64", "windows", ""}));
}

TEST(Platform, Host) {
  Platform p = Platform::Host();
  EXPECT_EQ(p.os, "linux");
  EXPECT_FALSE(p.architecture.empty());
  EXPECT_NE(p.architecture, "x86_64");
  EXPECT_NE(p.architecture, "aarch64");
  EXPECT_TRUE(Platform::Parse(p.str()).ok()) << p.str();
}

}  // namespace
}  // namespace regdisk::oci
