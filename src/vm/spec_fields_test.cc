// Every supported field of KubeVirt's layout: specs written for these tests
// in KubeVirt's field layout (testdata/*.yaml). The refusals are in
// spec_refusals_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vm/spec.h"
#include "vm/testutil.h"

namespace regdisk::vm {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<VmSet> MustParseFiles(const std::vector<SpecFile>& files) {
  auto sets = ParseVmFiles(files);
  EXPECT_TRUE(sets.ok()) << sets.status().ToString();
  return sets.ok() ? *sets : std::vector<VmSet>{};
}

VmSpec MustParseFile(const std::string& name) {
  std::vector<VmSet> sets = MustParseFiles({{name, ReadTestData(name)}});
  EXPECT_EQ(sets.size(), 1u);
  return sets.empty() ? VmSpec{} : sets[0].vm;
}

TEST(KubeVirtShapes, VmCirrosIsHaltedWithNoCloudUserData) {
  VmSpec vm = MustParseFile("kubevirt_vm_cirros.yaml");
  EXPECT_EQ(vm.run_strategy, RunStrategy::kHalted);  // running: false
  EXPECT_EQ(vm.labels.at("kubevirt.io/vm"), "cirros-demo");
  ASSERT_EQ(vm.disks.size(), 2u);
  EXPECT_EQ(vm.disks[1].volume.kind, VolumeKind::kCloudInitNoCloud);
  EXPECT_EQ(vm.disks[1].volume.cloud_init.user_data, "#!/bin/sh\necho 'hello from the seed'\n");
  EXPECT_FALSE(vm.disks[1].volume.cloud_init.network_data);
  EXPECT_EQ(vm.disks[1].target, "vdb");
  EXPECT_EQ(vm.memory_request, "128Mi");
  ASSERT_EQ(vm.interfaces.size(), 1u);  // KubeVirt's auto-attached pod interface
  EXPECT_EQ(vm.interfaces[0].kind, InterfaceKind::kUser);
  EXPECT_EQ(vm.hostname, "cirros-demo");
}

TEST(KubeVirtShapes, VmiFedoraDecodesBase64AndHasRng) {
  VmSpec vm = MustParseFile("kubevirt_vmi_fedora.yaml");
  EXPECT_EQ(vm.run_strategy, RunStrategy::kOnce);
  EXPECT_EQ(vm.memory_bytes, 1024000000u);
  EXPECT_TRUE(vm.rng);
  EXPECT_EQ(vm.disks[1].volume.cloud_init.user_data, "#cloud-config\npassword: fedora\nchpasswd: { expire: False }\n");
}

TEST(KubeVirtShapes, VmiNoCloudAttachesEveryVolumeAsAVirtioDisk) {
  VmSpec vm = MustParseFile("kubevirt_vmi_nocloud.yaml");
  ASSERT_EQ(vm.disks.size(), 3u);
  std::vector<std::string> targets;
  for (const VmDisk& d : vm.disks) {
    EXPECT_EQ(d.bus, DiskBus::kVirtio);
    EXPECT_EQ(d.device, DeviceKind::kDisk);
    targets.push_back(d.name + ":" + d.target);
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"rootdisk:vda", "scratch:vdb", "seed:vdc"}));
  EXPECT_EQ(vm.disks[0].volume.container.path, "/custom-disk/downloaded");
  EXPECT_EQ(vm.disks[1].volume.kind, VolumeKind::kEmptyDisk);
  EXPECT_EQ(vm.disks[1].volume.capacity, 2ull << 30);
  EXPECT_EQ(vm.disks[2].volume.kind, VolumeKind::kCloudInitConfigDrive);
  EXPECT_EQ(vm.disks[2].volume.cloud_init.network_data, "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n");
}

TEST(KubeVirtShapes, VmiSecureBootUsesEfiSmmAndQ35) {
  VmSpec vm = MustParseFile("kubevirt_vmi_secureboot.yaml");
  EXPECT_EQ(vm.firmware, Firmware::kEfi);
  EXPECT_TRUE(vm.secure_boot);
  EXPECT_TRUE(vm.smm);
  EXPECT_EQ(vm.machine, "q35");
  EXPECT_EQ(vm.uuid, "5d307ca9-b3ef-428c-8861-06e72d69f223");
  EXPECT_EQ(vm.serial, "e4686d2c-6e8d-4335-b8fd-81bee22f4814");
}

TEST(KubeVirtShapes, MasqueradeIsUserModeNetworking) {
  VmSpec vm = MustParseFile("kubevirt_vmi_masquerade.yaml");
  ASSERT_EQ(vm.interfaces.size(), 1u);
  EXPECT_EQ(vm.interfaces[0].name, "podnet");
  EXPECT_EQ(vm.interfaces[0].kind, InterfaceKind::kUser);
  EXPECT_EQ(vm.machine, "");  // machine.type: "" is the default
}

TEST(KubeVirtShapes, EveryDeviceField) {
  VmSpec vm = MustParseFile("devices_all.yaml");
  EXPECT_EQ(vm.ns, "lab");
  EXPECT_EQ(vm.hostname, "devices");
  EXPECT_EQ(vm.run_strategy, RunStrategy::kRerunOnFailure);
  EXPECT_EQ(vm.sockets * 100 + vm.cores * 10 + vm.threads, 122);
  EXPECT_EQ(vm.memory_bytes, 2ull << 30);
  EXPECT_EQ(vm.cpu_request + "/" + vm.cpu_limit + "/" + vm.memory_request + "/" + vm.memory_limit, "500m/4/2Gi/3Gi");
  EXPECT_EQ(vm.firmware, Firmware::kEfi);
  EXPECT_FALSE(vm.secure_boot);
  EXPECT_FALSE(vm.smm);
  EXPECT_TRUE(vm.apic && vm.acpi && vm.rng);
  EXPECT_EQ(vm.labels.at("app"), "lab");
  ASSERT_EQ(vm.disks.size(), 5u);
  const VmDisk& iso = vm.disks[0];
  EXPECT_EQ(iso.device, DeviceKind::kCdrom);
  EXPECT_EQ(iso.bus, DiskBus::kScsi);
  EXPECT_TRUE(iso.read_only);
  EXPECT_EQ(iso.boot_order, 2);
  EXPECT_EQ(iso.volume.container.path, "/disk/virtio-win.iso");
  EXPECT_EQ(vm.disks[1].serial, "ROOT-0001");
  EXPECT_EQ(vm.disks[1].boot_order, 1);
  EXPECT_EQ(vm.disks[2].volume.capacity, 10ull << 30);
  EXPECT_EQ(vm.disks[3].bus, DiskBus::kUsb);
  EXPECT_EQ(vm.disks[4].device, DeviceKind::kCdrom);
  EXPECT_EQ(vm.disks[4].bus, DiskBus::kSata);  // a cdrom's default bus
  std::vector<std::string> targets;
  for (const VmDisk& d : vm.disks) targets.push_back(d.target);
  EXPECT_EQ(targets, (std::vector<std::string>{"sda", "vda", "sdb", "sdc", "sdd"}));
  ASSERT_EQ(vm.interfaces.size(), 1u);
  EXPECT_EQ(vm.interfaces[0].kind, InterfaceKind::kBridge);
  EXPECT_EQ(vm.interfaces[0].network, "labnet");
  EXPECT_EQ(vm.interfaces[0].model, "e1000e");
  EXPECT_EQ(vm.interfaces[0].mac, "02:00:00:aa:bb:cc");
}

TEST(KubeVirtShapes, InstancetypePreferenceAndSecretGivenAlongside) {
  VmSpec vm = MustParseFile("with_references.yaml");
  EXPECT_EQ(vm.run_strategy, RunStrategy::kAlways);
  EXPECT_EQ(vm.cores, 2);  // cpu.guest 2, preferCores
  EXPECT_EQ(vm.sockets * vm.threads, 1);
  EXPECT_EQ(vm.memory_bytes, 512ull << 20);
  EXPECT_EQ(vm.disks[0].bus, DiskBus::kSata);  // preferredDiskBus
  EXPECT_EQ(vm.interfaces[0].model, "e1000e");
  EXPECT_TRUE(vm.rng);
  EXPECT_EQ(vm.firmware, Firmware::kEfi);
  EXPECT_FALSE(vm.secure_boot);
  EXPECT_EQ(vm.disks[1].volume.cloud_init.user_data, "#cloud-config\nhostname: app\n");
}

TEST(ParseVmFiles, ReferencesInSeparateFilesAndSeveralVms) {
  std::string text = ReadTestData("with_references.yaml");
  size_t vm_at = text.find("apiVersion: kubevirt.io/v1\nkind: VirtualMachine\n");
  ASSERT_NE(vm_at, std::string::npos);
  std::vector<VmSet> sets = MustParseFiles({{"vm.yaml", text.substr(vm_at) + "---\n" + ReadTestData("replicaset.yaml")},
                                            {"refs.yaml", text.substr(0, vm_at)}});
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].vm.name, "app");
  EXPECT_EQ(sets[0].vm.cores, 2);
  EXPECT_EQ(sets[1].replicas, 3);
  EXPECT_EQ(sets[1].vm.run_strategy, RunStrategy::kAlways);  // the set replaces a VMI that stops
}

TEST(ParseVmFiles, LegacyKindsAndTheSeedsStillParse) {
  for (const char* f : {"seed_design.yaml", "seed_user_guide.yaml", "containerdisk_vm.yaml", "replicaset.yaml"}) {
    MustParseFile(f);
  }
  VmSpec legacy = MustParseFile("seed_user_guide.yaml");
  EXPECT_EQ(legacy.run_strategy, RunStrategy::kOnce);  // v1alpha1 VirtualMachine is today's VMI
  std::vector<VmSet> offline = MustParseFiles({{"o.yaml", "apiVersion: kubevirt.io/v1alpha1\n"
                                                           "kind: OfflineVirtualMachine\nmetadata: {name: o}\n"
                                                           "spec:\n  running: true\n  template:\n    spec:\n"
                                                           "      domain: {devices: {disks: [{name: r, volumeName: r}]}}\n"
                                                           "      volumes: [{name: r, registryDisk: {image: i}}]\n"}});
  ASSERT_EQ(offline.size(), 1u);
  EXPECT_EQ(offline[0].vm.run_strategy, RunStrategy::kAlways);
  std::vector<VmSet> rs = MustParseFiles({{"rs.yaml", "apiVersion: kubevirt.io/v1alpha1\n"
                                                      "kind: VirtualMachineReplicaSet\nmetadata: {name: rs}\n"
                                                      "spec:\n  replicas: 2\n  template:\n    spec:\n"
                                                      "      domain: {devices: {disks: [{name: r}]}}\n"
                                                      "      volumes: [{name: r, registryDisk: {image: i}}]\n"}});
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].replicas, 2);
}

struct Strategy {
  std::string lines;
  RunStrategy want;
};

class RunStrategies : public testing::TestWithParam<Strategy> {};

TEST_P(RunStrategies, AsKubeVirt) {
  std::vector<VmSet> sets = MustParseFiles({{"vm.yaml", VmWith(GetParam().lines)}});
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(RunStrategyName(sets[0].vm.run_strategy), std::string(RunStrategyName(GetParam().want)));
}

INSTANTIATE_TEST_SUITE_P(Table, RunStrategies, testing::Values(
    Strategy{"  running: true\n", RunStrategy::kAlways}, Strategy{"  running: false\n", RunStrategy::kHalted},
    Strategy{"", RunStrategy::kHalted}, Strategy{"  runStrategy: Always\n", RunStrategy::kAlways},
    Strategy{"  runStrategy: RerunOnFailure\n", RunStrategy::kRerunOnFailure},
    Strategy{"  runStrategy: Manual\n", RunStrategy::kManual}, Strategy{"  runStrategy: Once\n", RunStrategy::kOnce},
    Strategy{"  runStrategy: Halted\n", RunStrategy::kHalted}));

}  // namespace
}  // namespace regdisk::vm
