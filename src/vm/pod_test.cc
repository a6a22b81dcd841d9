#include "vm/pod.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/fs.h"
#include "vm/testutil.h"

namespace regdisk::vm {
namespace {

using ::testing::HasSubstr;

const char* const kDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// The last VM of a file (its other documents may be what it refers to).
VmSpec Parse(const std::string& yaml) {
  auto sets = ParseVmFiles({{"spec.yaml", yaml}});
  EXPECT_TRUE(sets.ok()) << sets.status().ToString();
  return sets.ok() ? sets->back().vm : VmSpec{};
}

// The images a user names (the library has no defaults).
PodOptions Images(PodVolumes form = PodVolumes::kContainer) {
  PodOptions o;
  o.volumes = form;
  o.launcher_image = "localhost:5000/regdisk/launcher@" + std::string(kDigest);
  o.serve_image = "kubevirt.io/registry-disk-v1alpha@" + std::string(kDigest);
  return o;
}

TEST(RenderLauncherPod, GoldenIsAValidPod) {
  VmSpec spec = Parse(ReadTestData("containerdisk_vm.yaml"));
  PodOptions o = Images();
  o.pinned_digests["rootdisk"] = kDigest;
  ExpectGolden("pod_two_disks.yaml", RenderLauncherPod(spec, o));
  VALIDATE_OR_SKIP(r, TestDataPath("pod_two_disks.yaml"), "Pod");
  EXPECT_EQ(r->exit_code, 0) << r->err;
}

struct PodGolden {
  std::string golden, spec;
  PodVolumes form;
};

class PodForms : public testing::TestWithParam<PodGolden> {};

TEST_P(PodForms, MatchesAndIsAValidPod) {
  const PodGolden& g = GetParam();
  VmSpec spec = Parse(ReadTestData(g.spec));
  PodOptions o = Images(g.form);
  for (const VmDisk& d : spec.disks) o.pinned_digests[d.name] = kDigest;
  ExpectGolden(g.golden, RenderLauncherPod(spec, o));
  VALIDATE_OR_SKIP(r, TestDataPath(g.golden), "Pod");
  EXPECT_EQ(r->exit_code, 0) << r->err;
}

INSTANTIATE_TEST_SUITE_P(Table, PodForms, testing::Values(
    PodGolden{"pod_image_volumes.yaml", "containerdisk_vm.yaml", PodVolumes::kImage},
    PodGolden{"pod_image_cloud_init.yaml", "devices_all.yaml", PodVolumes::kImage},
    PodGolden{"pod_container_cloud_init.yaml", "kubevirt_vmi_nocloud.yaml", PodVolumes::kContainer}),
    [](const testing::TestParamInfo<PodGolden>& p) {
      std::string n = p.param.golden.substr(0, p.param.golden.find('.'));
      return n;
    });

TEST(RenderLauncherPod, ImageFormHasNoWrapperOrInitContainers) {
  VmSpec spec = Parse(ReadTestData("containerdisk_vm.yaml"));
  std::string pod = RenderLauncherPod(spec, Images(PodVolumes::kImage));
  EXPECT_EQ(pod.find("initContainers"), std::string::npos);
  EXPECT_EQ(pod.find("regdisk-serve"), std::string::npos);
  EXPECT_THAT(pod, HasSubstr("image:\n        reference: \"registry.example.com:5000/vmdisks/fedora38:latest\"\n"
                             "        pullPolicy: Always"));
  EXPECT_THAT(pod, HasSubstr("mountPath: \"/var/run/regdisk/images/datadisk\"\n          readOnly: true"));
}

TEST(RenderLauncherPod, NamesThatLookLikeNumbersStayStrings) {
  VmSpec spec = Parse(R"(kind: VirtualMachine
metadata: {name: 1e3, namespace: "true"}
spec:
  domain: {devices: {disks: [{name: "null"}]}}
  volumes: [{name: "null", containerDisk: {image: "localhost:5000/x"}}]
)");
  PodOptions o = Images();
  o.pinned_digests["null"] = kDigest;
  std::string pod = RenderLauncherPod(spec, o);
  EXPECT_THAT(pod, HasSubstr("regdisk.io/vm: \"1e3\""));
  EXPECT_THAT(pod, HasSubstr(std::string("image: \"localhost:5000/x@") + kDigest + "\""));
  EXPECT_THAT(pod, HasSubstr("name: \"volume-null\""));
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/pod.yaml", pod).ok());
  VALIDATE_OR_SKIP(r, dir.path() + "/pod.yaml", "Pod");
  EXPECT_EQ(r->exit_code, 0) << r->err;
}

TEST(RenderLauncherPod, UnpinnedDiskKeepsItsReference) {
  VmSpec spec = Parse(ReadTestData("seed_user_guide.yaml"));
  std::string pod = RenderLauncherPod(spec, Images());
  EXPECT_THAT(pod, HasSubstr("image: \"vmdisks/fedora25:latest\""));
  EXPECT_THAT(pod, HasSubstr("\"--dest\", \"/var/run/regdisk/disks/registryvolume\""));
  EXPECT_EQ(pod.find("imagePullSecrets"), std::string::npos);
  // No path: regdisk-serve takes the only file in /disk (no empty --disk).
  EXPECT_THAT(pod, HasSubstr("command: [\"/var/run/regdisk/bin/regdisk-serve\", \"--dest\""));
}

TEST(RenderLauncherPod, InitContainerInstallsRegdiskServeForScratchImages) {
  VmSpec spec = Parse(ReadTestData("seed_user_guide.yaml"));
  PodOptions o = Images();
  o.serve_image = "localhost:5000/registry-disk-v1alpha@" + std::string(kDigest);
  std::string pod = RenderLauncherPod(spec, o);
  EXPECT_THAT(pod, HasSubstr("initContainers:\n    - name: install-regdisk-serve\n      image: \"" +
                             o.serve_image + "\"\n      command: [\"/regdisk-serve\", \"--install\", "
                             "\"/var/run/regdisk/bin\"]"));
  EXPECT_THAT(pod, HasSubstr("- name: regdisk-bin\n          mountPath: \"/var/run/regdisk/bin\"\n"
                             "          readOnly: true"));
}

TEST(ValidateK8sTool, RejectsAnInvalidPod) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/bad.yaml",
                              "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"
                              "spec: {containers: [{image: i, securityContext: {runAsUser: \"107\"}}]}\n")
                  .ok());
  VALIDATE_OR_SKIP(r, dir.path() + "/bad.yaml", "Pod");
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, HasSubstr("must have required property name"));
}

// The installed kubernetes-models knows ImageVolumeSource: it checks the
// image volume's fields, so the image form's validation means something.
TEST(ValidateK8sTool, ChecksImageVolumes) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/bad.yaml",
                              "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"
                              "spec: {volumes: [{name: v, image: {reference: [1]}}], containers: [{name: c, image: i}]}\n")
                  .ok());
  VALIDATE_OR_SKIP(r, dir.path() + "/bad.yaml", "Pod");
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, HasSubstr("image/reference must be string"));
}

}  // namespace
}  // namespace regdisk::vm
