// The launcher Pod that `regdisk render pod` renders, run for real with
// `podman kube play` (podman.h) against a real Distribution registry on
// loopback.
//
// No real virt-launcher exists here, so the compute container's image is a
// trivial one built for the test with buildah: busybox, sleeping. What is
// checked is everything regdisk renders: the init container installs
// regdisk-serve, every wrapper container places a byte-identical disk
// (owned 107:107) in the shared emptyDir volume, and each readiness probe's
// command succeeds in its container. podman 4.3 does not run
// readinessProbes itself (it maps only livenessProbe to a healthcheck), so
// the test runs each probe's exec command with `podman exec`, as kubelet
// would.
//
// The image-volume form (`render pod --volumes image`) needs a podman whose
// kube play knows `volumes[].image`; 4.3 refuses it ("HostPath, ConfigMap,
// EmptyDir, and PersistentVolumeClaim are currently the only supported
// VolumeSource"), and then that test says so and skips.
//
// podman runs with its own storage and configuration under the test's temp
// dir (podman.h), and --network none.
#include <chrono>
#include <memory>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "podman.h"
#include "registry_server.h"

namespace regdisk::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

constexpr int kReadySeconds = 120;  // for the wrappers' copies to be ready, on a loaded machine

class PodmanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = std::make_unique<TempDir>("regdisk-podman");
    podman_ = std::make_unique<PodmanEnv>(work_->path());
    if (!podman_->error().empty()) {
      error_ = podman_->error();
      return;
    }
    registry_ = std::make_unique<RegistryServer>(RegistryServer::Flavour::kOpen);
    if (!registry_->error().empty()) {
      error_ = "registry: " + registry_->error();
      return;
    }
    const std::string w = work_->path();
    const std::string host = registry_->host(), store = w + "/store";
    // Two disks as users make them: one FROM scratch, one FROM the base by
    // the seed's Dockerfile; the base pushed as the serve image.
    if (!MakeDirs(w + "/ctx").ok()) {
      error_ = "mkdir " + w + "/ctx";
      return;
    }
    MakeSparseFile(w + "/root.img", 8 << 20, {0, 5 << 20}, "root-disk-bytes");
    MakeSparseFile(w + "/ctx/data.img", 4 << 20, {4096}, "data-disk-bytes");
    auto ok = [](const ProcessResult& r, const std::string& what) {
      if (r.exit_code != 0) error_ = what + ": " + Describe(r);
      return r.exit_code == 0;
    };
    if (!ok(Regdisk({"--store", store, "build", w + "/root.img", "-t", "p/root:v1"}), "build root") ||
        !ok(Regdisk({"--store", store, "build-base", "-t", "p/base:v1"}), "build-base") ||
        !WriteFileAtomic(w + "/ctx/Dockerfile", "FROM p/base:v1\nADD --chown=107:107 data.img /disk/\n").ok() ||
        !ok(Regdisk({"--store", store, "build", "-f", w + "/ctx/Dockerfile", w + "/ctx", "-t", "p/data:v1"}),
            "build data")) {
      return;
    }
    for (const char* image : {"p/root:v1", "p/base:v1", "p/data:v1"}) {
      if (!ok(Regdisk({"--store", store, "-q", "push", image, "docker://" + host + "/" + image}), "push")) return;
    }
    // The stand-in launcher: busybox, sleeping, pushed with buildah.
    ProcessResult from = Podman({"buildah", "from", "scratch"});
    if (!ok(from, "buildah from")) return;
    std::string ctr = Trim(from.out);
    if (!ok(Podman({"buildah", "copy", ctr, "/bin/busybox", "/bin/busybox"}), "buildah copy") ||
        !ok(Podman({"buildah", "config", "--entrypoint", "[\"/bin/busybox\", \"sleep\", \"3600\"]", ctr}),
            "buildah config") ||
        !ok(Podman({"buildah", "commit", "-q", ctr, "localhost/launcher:v1"}), "buildah commit") ||
        !ok(Podman({"buildah", "push", "--tls-verify=false", "localhost/launcher:v1",
                    "docker://" + host + "/p/launcher:v1"}),
            "buildah push")) {
      return;
    }
    (void)Podman({"buildah", "rm", ctr});
  }
  static void TearDownTestSuite() {
    if (podman_ && podman_->error().empty()) podman_->RemoveAll();
    podman_.reset();
    registry_.reset();
    work_.reset();
  }
  void SetUp() override { ASSERT_EQ(error_, "") << "the podman test environment could not be made"; }

  static ProcessResult Podman(std::vector<std::string> argv) { return podman_->Run(std::move(argv)); }

  std::string Spec() {
    const std::string host = registry_->host(), path = work_->path() + "/vm.yaml";
    EXPECT_TRUE(WriteFileAtomic(path, "apiVersion: kubevirt.io/v1\n"
                                      "kind: VirtualMachineInstance\n"
                                      "metadata: {name: podvm}\n"
                                      "spec:\n"
                                      "  domain:\n"
                                      "    devices:\n"
                                      "      disks: [{name: root, disk: {bus: virtio}}, {name: data, disk: {bus: virtio}}]\n"
                                      "  volumes:\n"
                                      "  - {name: root, containerDisk: {image: \"" + host + "/p/root:v1\"}}\n"
                                      "  - {name: data, containerDisk: {image: \"" + host + "/p/data:v1\"}}\n")
                    .ok());
    return path;
  }

  // `render pod` with the test's images and `extra` flags, as JSON too.
  std::pair<std::string, json> Render(const std::vector<std::string>& extra) {
    const std::string host = registry_->host();
    std::vector<std::string> args = {"render", "pod", Spec(), "--serve-image", host + "/p/base:v1",
                                     "--launcher-image", host + "/p/launcher:v1"};
    args.insert(args.end(), extra.begin(), extra.end());
    ProcessResult r = Regdisk(args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    std::string file = work_->path() + "/pod.yaml";
    EXPECT_TRUE(WriteFileAtomic(file, r.out).ok());
    json docs = YamlDocuments(file);
    return {file, docs.size() == 1 ? docs[0] : json::object()};
  }

  static std::string error_;
  static std::unique_ptr<TempDir> work_;
  static std::unique_ptr<PodmanEnv> podman_;
  static std::unique_ptr<RegistryServer> registry_;
};

std::string PodmanTest::error_;
std::unique_ptr<TempDir> PodmanTest::work_;
std::unique_ptr<PodmanEnv> PodmanTest::podman_;
std::unique_ptr<RegistryServer> PodmanTest::registry_;

TEST_F(PodmanTest, WrapperPodPlacesIdenticalDisksAndIsReady) {
  auto [file, pod] = Render({});
  ASSERT_FALSE(HasFailure());
  const std::string name = pod["metadata"]["name"];
  auto t0 = std::chrono::steady_clock::now();
  ProcessResult play = Podman({"podman", "kube", "play", "--network", "none", "--tls-verify=false", file});
  ASSERT_EQ(play.exit_code, 0) << Describe(play);

  // Each wrapper's readiness probe, run in its container until it passes.
  std::vector<std::string> wrappers;
  for (const auto& c : pod["spec"]["containers"]) {
    if (c["name"] == "compute") continue;
    wrappers.push_back(c["name"]);
    const std::string container = name + "-" + c["name"].get<std::string>();
    std::vector<std::string> probe = {"podman", "exec", container};
    for (const auto& a : c["readinessProbe"]["exec"]["command"]) probe.push_back(a);
    ProcessResult last;
    for (int i = 0; i < kReadySeconds * 2; ++i) {
      last = Podman(probe);
      // A container that exited will not become ready: its log says why.
      if (last.exit_code == 0 || last.err.find("state improper") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    EXPECT_EQ(last.exit_code, 0) << c["name"] << " never became ready: " << Describe(last) << "\n=== its log\n"
                                 << Describe(Podman({"podman", "logs", container}))
                                 << Describe(Podman({"podman", "ps", "-a"}));
  }
  ASSERT_EQ(wrappers.size(), 2u) << pod.dump(2);
  std::printf("[ measure  ] podman kube play to all wrappers ready: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  // The shared volume holds both disks, byte-identical, owned by 107:107.
  ProcessResult vol = Podman({"podman", "volume", "inspect", "regdisk-disks", "--format", "{{.Mountpoint}}"});
  ASSERT_EQ(vol.exit_code, 0) << Describe(vol);
  std::string disks = Trim(vol.out);
  EXPECT_EQ(Sha256File(disks + "/root/root.img"), Sha256File(work_->path() + "/root.img"));
  EXPECT_EQ(Sha256File(disks + "/data/data.img"), Sha256File(work_->path() + "/ctx/data.img"));
  ProcessResult st = RunCmd({"stat", "-c", "%u:%g", disks + "/root/root.img", disks + "/data/data.img"});
  EXPECT_EQ(st.out, "107:107\n107:107\n") << Describe(st);
  // The compute container sees them at the shared mount.
  ProcessResult seen = Podman({"podman", "exec", name + "-compute", "/bin/busybox", "ls",
                               "/var/run/regdisk/disks/root", "/var/run/regdisk/disks/data"});
  EXPECT_THAT(seen.out, HasSubstr("root.img")) << Describe(seen);
  EXPECT_THAT(seen.out, HasSubstr("data.img")) << Describe(seen);

  ProcessResult down = Podman({"podman", "kube", "down", file});
  EXPECT_EQ(down.exit_code, 0) << Describe(down);
}

TEST_F(PodmanTest, ImageVolumePodWhereSupported) {
  auto [file, pod] = Render({"--volumes", "image"});
  ASSERT_FALSE(HasFailure());
  ProcessResult play = Podman({"podman", "kube", "play", "--network", "none", "--tls-verify=false", file});
  if (play.exit_code != 0 && play.err.find("are currently the only supported VolumeSource") != std::string::npos) {
    GTEST_SKIP() << "podman " << podman_->Version() << " does not support image volumes in kube play: "
                 << Trim(play.err);
  }
  ASSERT_EQ(play.exit_code, 0) << Describe(play);
  // A podman that mounts image volumes: the compute container sees each
  // disk image's /disk read-only at its mount path.
  const std::string name = pod["metadata"]["name"];
  for (const auto& m : pod["spec"]["containers"][0]["volumeMounts"]) {
    ProcessResult ls = Podman({"podman", "exec", name + "-compute", "/bin/busybox", "ls", "-R",
                               m["mountPath"].get<std::string>()});
    EXPECT_EQ(ls.exit_code, 0) << Describe(ls);
    EXPECT_THAT(ls.out, ::testing::ContainsRegex("root.img|data.img")) << Describe(ls);
  }
  EXPECT_EQ(Podman({"podman", "kube", "down", file}).exit_code, 0);
}

}  // namespace
}  // namespace regdisk::testing
