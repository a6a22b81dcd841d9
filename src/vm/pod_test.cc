#include "vm/pod.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/fs.h"
#include "util/subprocess.h"
#include "vm/testutil.h"

namespace regdisk::vm {
namespace {

using ::testing::HasSubstr;

const char* const kDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

VmSpec Parse(const std::string& yaml) {
  auto set = ParseVmYaml(yaml);
  EXPECT_TRUE(set.ok()) << set.status().ToString();
  return set.ok() ? set->vm : VmSpec{};
}

// Runs tests/tools/validate_pod.mjs (npm kubernetes-models) on a file.
StatusOr<ProcessResult> ValidatePod(const std::string& file) {
  std::string tools = std::string(REGDISK_SOURCE_DIR) + "/tests/tools";
  if (!PathExists(tools + "/node_modules")) return NotFound("no node_modules");
  return RunProcess({"node", tools + "/validate_pod.mjs", file});
}

#define VALIDATE_OR_SKIP(file, result)                                                \
  auto result = ValidatePod(file);                                                    \
  if (!result.ok()) GTEST_SKIP() << "kubernetes-models is not installed: run "        \
                                    "`npm ci --prefix tests/tools` (node 20)"

TEST(RenderLauncherPod, GoldenIsAValidPod) {
  VmSpec spec = Parse(ReadTestData("containerdisk_vm.yaml"));
  PodOptions o;
  o.pinned_digests["rootdisk"] = kDigest;
  ExpectGolden("pod_two_disks.yaml", RenderLauncherPod(spec, o));
  VALIDATE_OR_SKIP(TestDataPath("pod_two_disks.yaml"), r);
  EXPECT_EQ(r->exit_code, 0) << r->err;
}

TEST(RenderLauncherPod, NamesThatLookLikeNumbersStayStrings) {
  VmSpec spec = Parse(R"(kind: VirtualMachine
metadata: {name: 1e3, namespace: "true"}
spec:
  domain: {devices: {disks: [{name: "null"}]}}
  volumes: [{name: "null", containerDisk: {image: "localhost:5000/x"}}]
)");
  PodOptions o;
  o.pinned_digests["null"] = kDigest;
  std::string pod = RenderLauncherPod(spec, o);
  EXPECT_THAT(pod, HasSubstr("regdisk.io/vm: \"1e3\""));
  EXPECT_THAT(pod, HasSubstr(std::string("image: \"localhost:5000/x@") + kDigest + "\""));
  EXPECT_THAT(pod, HasSubstr("name: \"volume-null\""));
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/pod.yaml", pod).ok());
  VALIDATE_OR_SKIP(dir.path() + "/pod.yaml", r);
  EXPECT_EQ(r->exit_code, 0) << r->err;
}

TEST(RenderLauncherPod, UnpinnedDiskKeepsItsReference) {
  VmSpec spec = Parse(ReadTestData("seed_user_guide.yaml"));
  std::string pod = RenderLauncherPod(spec, {});
  EXPECT_THAT(pod, HasSubstr("image: \"vmdisks/fedora25:latest\""));
  EXPECT_THAT(pod, HasSubstr("\"--dest\", \"/var/run/regdisk/disks/registryvolume\""));
  EXPECT_EQ(pod.find("imagePullSecrets"), std::string::npos);
  // No path: regdisk-serve takes the only file in /disk (no empty --disk).
  EXPECT_THAT(pod, HasSubstr("command: [\"/var/run/regdisk/bin/regdisk-serve\", \"--dest\""));
}

TEST(RenderLauncherPod, InitContainerInstallsRegdiskServeForScratchImages) {
  VmSpec spec = Parse(ReadTestData("seed_user_guide.yaml"));
  PodOptions o;
  o.serve_image = "localhost:5000/registry-disk-v1alpha@" + std::string(kDigest);
  std::string pod = RenderLauncherPod(spec, o);
  EXPECT_THAT(pod, HasSubstr("initContainers:\n    - name: install-regdisk-serve\n      image: \"" +
                             o.serve_image + "\"\n      command: [\"/regdisk-serve\", \"--install\", "
                             "\"/var/run/regdisk/bin\"]"));
  EXPECT_THAT(pod, HasSubstr("- name: regdisk-bin\n          mountPath: \"/var/run/regdisk/bin\"\n"
                             "          readOnly: true"));
}

TEST(ValidatePodTool, RejectsAnInvalidPod) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/bad.yaml",
                              "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"
                              "spec: {containers: [{image: i, securityContext: {runAsUser: \"107\"}}]}\n")
                  .ok());
  VALIDATE_OR_SKIP(dir.path() + "/bad.yaml", r);
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, HasSubstr("must have required property name"));
}

}  // namespace
}  // namespace regdisk::vm
