#include "vm/daemonset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <map>

#include "util/fs.h"
#include "vm/testutil.h"

namespace regdisk::vm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Labels = std::map<std::string, std::string>;

const char* const kImage =
    "registry.example.com/regdisk/node@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr int kPort = 7480;  // peer::kDefaultPort, which vm may not include

NodeDaemonSetOptions Options() {
  NodeDaemonSetOptions o;
  o.image = kImage;
  o.port = kPort;
  return o;
}

std::string Render(const NodeDaemonSetOptions& o) {
  auto yaml = RenderNodeDaemonSet(o);
  EXPECT_TRUE(yaml.ok()) << yaml.status().ToString();
  return yaml.ok() ? *yaml : "";
}

struct Golden {
  std::string file;
  bool host_network;
};

class DaemonSetForms : public testing::TestWithParam<Golden> {};

TEST_P(DaemonSetForms, MatchesAndIsValid) {
  NodeDaemonSetOptions o = Options();
  o.host_network = GetParam().host_network;
  ExpectGolden(GetParam().file, Render(o));
  VALIDATE_OR_SKIP(r, TestDataPath(GetParam().file), "DaemonSet", "Service");
  EXPECT_EQ(r->exit_code, 0) << r->err;
}

INSTANTIATE_TEST_SUITE_P(Table, DaemonSetForms,
                         testing::Values(Golden{"daemonset_host_network.yaml", true},
                                         Golden{"daemonset_host_port.yaml", false}),
                         [](const testing::TestParamInfo<Golden>& p) { return p.param.host_network ? "hostNetwork" : "hostPort"; });

// What Kubernetes does not check but the peers rely on: the selectors
// match the pods, the Service's port is the one the server listens on and
// is named for the SRV record, the probe asks that port.
TEST(RenderNodeDaemonSet, PartsAgree) {
  NodeDaemonSetOptions o = Options();
  o.ns = "vms";
  o.root = "/srv/regdisk";
  o.port = 9001;
  o.host_network = false;
  std::vector<YAML::Node> docs = YAML::LoadAll(Render(o));
  ASSERT_EQ(docs.size(), 2u);
  const YAML::Node ds = docs[0], svc = docs[1];
  EXPECT_EQ(ds["metadata"]["name"].as<std::string>(), kNodeDaemonSetName);
  EXPECT_EQ(svc["metadata"]["name"].as<std::string>(), kPeerServiceName);
  EXPECT_EQ(ds["metadata"]["namespace"].as<std::string>(), "vms");
  EXPECT_EQ(svc["metadata"]["namespace"].as<std::string>(), "vms");

  const YAML::Node pod = ds["spec"]["template"];
  auto labels = pod["metadata"]["labels"].as<Labels>();
  auto selector = ds["spec"]["selector"]["matchLabels"].as<Labels>();
  EXPECT_FALSE(selector.empty());
  EXPECT_EQ(selector, labels);
  EXPECT_EQ(svc["spec"]["selector"].as<Labels>(), labels);

  EXPECT_EQ(svc["spec"]["clusterIP"].as<std::string>(), "None");
  EXPECT_TRUE(svc["spec"]["publishNotReadyAddresses"].as<bool>());
  ASSERT_EQ(svc["spec"]["ports"].size(), 1u);
  EXPECT_EQ(svc["spec"]["ports"][0]["name"].as<std::string>(), "peer");
  EXPECT_EQ(svc["spec"]["ports"][0]["protocol"].as<std::string>(), "TCP");
  EXPECT_EQ(svc["spec"]["ports"][0]["port"].as<int>(), 9001);
  EXPECT_EQ(svc["spec"]["ports"][0]["targetPort"].as<int>(), 9001);

  ASSERT_EQ(pod["spec"]["containers"].size(), 1u);
  const YAML::Node c = pod["spec"]["containers"][0];
  EXPECT_EQ(c["command"].as<std::vector<std::string>>(),
            (std::vector<std::string>{"regdisk-node", "peer", "--root", "/srv/regdisk", "--listen", "0.0.0.0:9001"}));
  EXPECT_EQ(c["ports"][0]["name"].as<std::string>(), "peer");
  EXPECT_EQ(c["ports"][0]["containerPort"].as<int>(), 9001);
  EXPECT_EQ(c["ports"][0]["hostPort"].as<int>(), 9001);
  EXPECT_FALSE(pod["spec"]["hostNetwork"]);
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/v1/health");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"].as<int>(), 9001);
  EXPECT_EQ(c["volumeMounts"][0]["mountPath"].as<std::string>(), "/srv/regdisk");
  EXPECT_TRUE(c["volumeMounts"][0]["readOnly"].as<bool>());
  EXPECT_EQ(c["volumeMounts"][0]["name"].as<std::string>(), pod["spec"]["volumes"][0]["name"].as<std::string>());
  EXPECT_EQ(pod["spec"]["volumes"][0]["hostPath"]["path"].as<std::string>(), "/srv/regdisk");
  EXPECT_EQ(pod["spec"]["volumes"][0]["hostPath"]["type"].as<std::string>(), "DirectoryOrCreate");
}

TEST(RenderNodeDaemonSet, HostNetworkHasNoHostPort) {
  std::vector<YAML::Node> docs = YAML::LoadAll(Render(Options()));
  ASSERT_EQ(docs.size(), 2u);
  const YAML::Node spec = docs[0]["spec"]["template"]["spec"];
  EXPECT_TRUE(spec["hostNetwork"].as<bool>());
  EXPECT_FALSE(spec["containers"][0]["ports"][0]["hostPort"]);
  EXPECT_EQ(spec["containers"][0]["ports"][0]["containerPort"].as<int>(), kPort);
}

// A root with YAML's special characters reaches the command and the
// hostPath unchanged.
TEST(RenderNodeDaemonSet, QuotesTheRoot) {
  NodeDaemonSetOptions o = Options();
  o.root = "/var/lib/reg disk: \"#x\"/true";
  std::vector<YAML::Node> docs = YAML::LoadAll(Render(o));
  ASSERT_EQ(docs.size(), 2u);
  const YAML::Node spec = docs[0]["spec"]["template"]["spec"];
  EXPECT_EQ(spec["volumes"][0]["hostPath"]["path"].as<std::string>(), o.root);
  EXPECT_EQ(spec["containers"][0]["command"][3].as<std::string>(), o.root);
}

struct Refusal {
  std::string name;
  NodeDaemonSetOptions options;
  std::string message;
};

NodeDaemonSetOptions With(void (*change)(NodeDaemonSetOptions&)) {
  NodeDaemonSetOptions o = Options();
  change(o);
  return o;
}

void PrintTo(const Refusal& r, std::ostream* os) { *os << r.name; }
void PrintTo(const Golden& g, std::ostream* os) { *os << g.file; }

class DaemonSetRefusals : public testing::TestWithParam<Refusal> {};

TEST_P(DaemonSetRefusals, OneLineNamingTheFlag) {
  const Refusal& r = GetParam();
  auto yaml = RenderNodeDaemonSet(r.options);
  ASSERT_FALSE(yaml.ok());
  EXPECT_EQ(yaml.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(yaml.status().message(), StartsWith(r.message));
  EXPECT_THAT(yaml.status().message(), Not(HasSubstr("\n")));
}

INSTANTIATE_TEST_SUITE_P(
    Table, DaemonSetRefusals,
    testing::Values(
        Refusal{"UpperNamespace", With([](auto& o) { o.ns = "Kube-System"; }), "--namespace \"Kube-System\": not a DNS label"},
        Refusal{"DottedNamespace", With([](auto& o) { o.ns = "a.b"; }), "--namespace \"a.b\": not a DNS label"},
        Refusal{"EmptyNamespace", With([](auto& o) { o.ns = ""; }), "--namespace \"\": not a DNS label"},
        Refusal{"LongNamespace", With([](auto& o) { o.ns = std::string(64, 'a'); }), "--namespace"},
        Refusal{"NoImage", With([](auto& o) { o.image = ""; }), "--image is required"},
        Refusal{"BadImage", With([](auto& o) { o.image = "img\nkind: Secret"; }), "--image \"img\\x0akind: Secret\": not an image"},
        Refusal{"DashImage", With([](auto& o) { o.image = "-x"; }), "--image \"-x\": not an image"},
        Refusal{"RelativeRoot", With([](auto& o) { o.root = "var/lib/regdisk"; }), "--root \"var/lib/regdisk\": want an absolute"},
        Refusal{"SlashRoot", With([](auto& o) { o.root = "/"; }), "--root \"/\": want an absolute"},
        Refusal{"DotDotRoot", With([](auto& o) { o.root = "/var/../etc"; }), "--root \"/var/../etc\""},
        Refusal{"DotRoot", With([](auto& o) { o.root = "/var/./lib"; }), "--root \"/var/./lib\""},
        Refusal{"EmptyComponent", With([](auto& o) { o.root = "/var//lib"; }), "--root \"/var//lib\""},
        Refusal{"TrailingSlash", With([](auto& o) { o.root = "/var/lib/"; }), "--root \"/var/lib/\""},
        Refusal{"ControlInRoot", With([](auto& o) { o.root = "/var/\tlib"; }), "--root \"/var/\\x09lib\""},
        Refusal{"LongRoot", With([](auto& o) { o.root = "/" + std::string(kMaxRootPath, 'a'); }), "--root"},
        Refusal{"PortZero", With([](auto& o) { o.port = 0; }), "--port 0: want 1024-65535"},
        Refusal{"PortTooBig", With([](auto& o) { o.port = 65536; }), "--port 65536: want 1024-65535"},
        Refusal{"PrivilegedPort", With([](auto& o) { o.port = 1023; }), "--port 1023: want 1024-65535 (the peer server runs without capabilities"},
        Refusal{"PortNegative", With([](auto& o) { o.port = -1; }), "--port -1: want 1024-65535"}),
    [](const testing::TestParamInfo<Refusal>& p) { return p.param.name; });

TEST(RenderNodeDaemonSet, AcceptsTheBounds) {
  for (int port : {kMinPort, 65535}) {
    NodeDaemonSetOptions o = Options();
    o.port = port;
    EXPECT_TRUE(CheckNodeDaemonSet(o).ok()) << port;
  }
  NodeDaemonSetOptions o = Options();
  o.ns = std::string(63, 'a');
  o.root = "/" + std::string(kMaxRootPath - 1, 'a');
  EXPECT_TRUE(CheckNodeDaemonSet(o).ok());
}

// The validator checks DaemonSets and Services deeply, and the documents'
// kinds and count: so the goldens' validation means something.
TEST(ValidateK8sTool, RejectsAnInvalidDaemonSetAndWrongKinds) {
  TempDir dir;
  const std::string bad = dir.path() + "/bad.yaml", good = dir.path() + "/good.yaml";
  ASSERT_TRUE(WriteFileAtomic(bad, "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\n"
                                   "spec: {template: {spec: {containers: [{name: c, image: i}]}}}\n---\n"
                                   "apiVersion: v1\nkind: Service\nmetadata: {name: y}\nspec: {}\n")
                  .ok());
  VALIDATE_OR_SKIP(r, bad, "DaemonSet", "Service");
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, HasSubstr("must have required property"));
  EXPECT_THAT(r->err, HasSubstr("selector"));

  ASSERT_TRUE(WriteFileAtomic(good, Render(Options())).ok());
  auto swapped = ValidateManifests(good, {"Service", "DaemonSet"});
  ASSERT_TRUE(swapped.ok());
  EXPECT_EQ(swapped->exit_code, 1);
  EXPECT_THAT(swapped->err, HasSubstr("document 1: apiVersion must be v1 and kind Service"));
  auto one = ValidateManifests(good, {"DaemonSet"});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->exit_code, 2);
  EXPECT_THAT(one->err, HasSubstr("want 1 document(s), found 2"));
}

}  // namespace
}  // namespace regdisk::vm
