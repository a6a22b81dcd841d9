// The node DaemonSet that `regdisk render daemonset` renders, run with
// `podman kube play` (podman.h): its peer container starts from an image
// holding regdisk-node, with the rendered command, securityContext (root
// without capabilities, read-only root filesystem) and hostPath, and its
// peer server answers the readiness probe's GET /v1/health.
//
// podman 4.3's kube play runs Pods and Deployments, not DaemonSets ("YAML
// document does not contain any supported kube kind"): then the test plays
// the DaemonSet's pod template as a Pod, and says so. It also publishes
// every containerPort, which a pod on the host's network cannot have: then
// the pod is played without its ports, and the test says so. The pod has the
// host's network, as it would on a node (hostNetwork): the server listens
// on 0.0.0.0 at a free port, and the test speaks to it on 127.0.0.1 only.
//
// The image is made for the test with buildah, FROM scratch: regdisk-node
// and the shared libraries ldd lists for it, at their paths.
//
// The peer verb (`regdisk-node peer`) comes with the peer server; a build
// without it skips this test and says so.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "podman.h"

namespace regdisk::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kReadySeconds = 60;  // for the server to answer, on a loaded machine
constexpr char kImage[] = "localhost/regdisk-node:test";
// podman 4.3 refusing a hostNetwork pod whose containers declare ports.
constexpr char kNoPortsOnHostNetwork[] = "PortMappings can only be used with Bridge or slirp4netns networking";

// A TCP port nothing listens on now (on any address), or 0.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

// The files ldd names for `binary` (its libraries and the loader).
std::vector<std::string> SharedLibraries(const std::string& binary, std::string* error) {
  ProcessResult r = RunCmd({"ldd", binary});
  if (r.exit_code != 0) {
    *error = "ldd: " + Describe(r);
    return {};
  }
  std::vector<std::string> files;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    size_t arrow = line.find("=> ");
    std::string path = arrow == std::string::npos ? line : line.substr(arrow + 3);
    path.erase(0, path.find_first_not_of(" \t"));
    path = path.substr(0, path.find(" ("));
    if (!path.empty() && path[0] == '/') files.push_back(path);
  }
  return files;
}

class DaemonSetPodmanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Without the verb, CLI11 prints the program's help (exit 0).
    ProcessResult help = RunCmd({REGDISK_NODE_BIN, "peer", "--help"});
    if (help.exit_code != 0 || help.out.find("--listen") == std::string::npos) {
      GTEST_SKIP() << "regdisk-node has no peer verb in this build (`regdisk-node peer --help` shows no --listen); "
                      "the DaemonSet runs it";
    }
    podman_ = std::make_unique<PodmanEnv>(work_.path());
    ASSERT_EQ(podman_->error(), "");
    ASSERT_NO_FATAL_FAILURE(BuildImage());
  }
  void TearDown() override {
    if (podman_ && podman_->error().empty()) podman_->RemoveAll();
  }

  ProcessResult Podman(std::vector<std::string> argv) { return podman_->Run(std::move(argv)); }

  // kImage: regdisk-node in /usr/local/bin, its libraries where ldd found them.
  void BuildImage() {
    const std::string rootfs = work_.path() + "/rootfs";
    std::string error;
    std::vector<std::string> files = SharedLibraries(REGDISK_NODE_BIN, &error);
    ASSERT_EQ(error, "");
    ASSERT_FALSE(files.empty());
    std::vector<std::pair<std::string, std::string>> copies = {{REGDISK_NODE_BIN, "/usr/local/bin/regdisk-node"}};
    for (const std::string& f : files) copies.emplace_back(f, f);
    for (const auto& [from, to] : copies) {
      std::error_code ec;
      fs::create_directories(fs::path(rootfs + to).parent_path(), ec);
      ASSERT_FALSE(ec) << to << ": " << ec.message();
      fs::copy_file(from, rootfs + to, fs::copy_options::overwrite_existing, ec);  // follows symlinks
      ASSERT_FALSE(ec) << from << ": " << ec.message();
    }
    ProcessResult from = Podman({"buildah", "from", "scratch"});
    ASSERT_EQ(from.exit_code, 0) << Describe(from);
    const std::string ctr = Trim(from.out);
    for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
             {"buildah", "copy", ctr, rootfs + "/", "/"},
             {"buildah", "config", "--env", "PATH=/usr/local/bin", "--env",
              "LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu", ctr},
             {"buildah", "commit", "-q", ctr, kImage},
             {"buildah", "rm", ctr}}) {
      ProcessResult r = Podman(step);
      ASSERT_EQ(r.exit_code, 0) << Describe(r);
    }
  }

  TempDir work_{"regdisk-daemonset"};
  std::unique_ptr<PodmanEnv> podman_;
};

TEST_F(DaemonSetPodmanTest, PeerServerAnswersTheReadinessProbe) {
  const int port = FreePort();
  ASSERT_NE(port, 0);
  const std::string root = work_.path() + "/node/regdisk";  // made by the hostPath's DirectoryOrCreate
  ProcessResult r = Regdisk({"render", "daemonset", "--image", kImage, "--namespace", "regdisk-test", "--root", root,
                             "--port", std::to_string(port)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string file = work_.path() + "/daemonset.yaml";
  ASSERT_TRUE(WriteFileAtomic(file, r.out).ok());
  json docs = YamlDocuments(file);
  ASSERT_EQ(docs.size(), 2u) << r.out;
  const json& ds = docs[0];
  ASSERT_EQ(ds["kind"], "DaemonSet");

  ProcessResult play = Podman({"podman", "kube", "play", file});
  std::string played = file;
  if (play.exit_code != 0 && play.err.find("does not contain any supported kube kind") != std::string::npos) {
    std::printf("[ note     ] podman %s kube play runs no DaemonSet (%s): playing its pod template as a Pod\n",
                podman_->Version().c_str(), Trim(play.err).c_str());
    json meta = ds["spec"]["template"]["metadata"];
    meta["name"] = ds["metadata"]["name"];
    meta["namespace"] = ds["metadata"]["namespace"];
    json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}, {"spec", ds["spec"]["template"]["spec"]}};
    played = work_.path() + "/pod.json";
    ASSERT_TRUE(WriteFileAtomic(played, pod.dump(2)).ok());
    play = Podman({"podman", "kube", "play", played});
    if (play.exit_code != 0 && play.err.find(kNoPortsOnHostNetwork) != std::string::npos) {
      std::printf("[ note     ] podman %s publishes containerPorts, which the host's network cannot have (%s): "
                  "playing the pod without its ports (Kubernetes reads them as the host ports it takes)\n",
                  podman_->Version().c_str(), Trim(play.err).c_str());
      pod["spec"]["containers"][0].erase("ports");
      ASSERT_TRUE(WriteFileAtomic(played, pod.dump(2)).ok());
      play = Podman({"podman", "kube", "play", played});
    }
  }
  ASSERT_EQ(play.exit_code, 0) << Describe(play);

  // The readiness probe, as kubelet makes it: with hostNetwork, at the node's address.
  const json& c = ds["spec"]["template"]["spec"]["containers"][0];
  const json& probe = c["readinessProbe"]["httpGet"];
  const std::string url =
      "http://127.0.0.1:" + std::to_string(probe["port"].get<int>()) + probe["path"].get<std::string>();
  ProcessResult health;
  for (int i = 0; i < kReadySeconds * 2; ++i) {
    health = RunCmd({"curl", "-s", "-f", "-m", "2", url});
    if (health.exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const std::string ctr = ds["metadata"]["name"].get<std::string>() + "-" + c["name"].get<std::string>();
  EXPECT_EQ(health.exit_code, 0) << Describe(health) << "\nlogs: " << Describe(Podman({"podman", "logs", ctr}));
  EXPECT_EQ(health.out, "ok\n");
  EXPECT_TRUE(fs::is_directory(root)) << "the hostPath (DirectoryOrCreate) was not made";
  // Not a health page for every path: the server is the peer server.
  ProcessResult other = RunCmd({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                                "http://127.0.0.1:" + std::to_string(port) + "/v1/nothing"});
  EXPECT_EQ(other.out, "404") << Describe(other);

  ProcessResult down = Podman({"podman", "kube", "down", played});
  EXPECT_EQ(down.exit_code, 0) << Describe(down);
}

}  // namespace
}  // namespace regdisk::testing
