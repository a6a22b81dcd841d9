// Every refusal, table-driven: each names the field path and the reason.
// The specs are fragments in KubeVirt's field layout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vm/spec.h"
#include "vm/testutil.h"

namespace regdisk::vm {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A VirtualMachineInstance from flow-style pieces.
struct Vmi {
  std::string md = "name: vm";
  std::string devices = "disks: [{name: root}]";
  std::string domain;   // more keys of spec.domain
  std::string volumes = "[{name: root, containerDisk: {image: img}}]";
  std::string spec;     // more lines of spec (2-space indented)
  std::string Yaml() const {
    return "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {" + md + "}\nspec:\n  domain: {devices: {" +
           devices + "}" + (domain.empty() ? "" : ", " + domain) + "}\n  volumes: " + volumes + "\n" + spec;
  }
};

Vmi Devices(const std::string& devices) {
  Vmi v;
  v.devices = devices;
  return v;
}
Vmi Domain(const std::string& domain) {
  Vmi v;
  v.domain = domain;
  return v;
}
Vmi Volumes(const std::string& volumes, const std::string& disks = "disks: [{name: root}]") {
  Vmi v;
  v.volumes = volumes;
  v.devices = disks;
  return v;
}
Vmi Spec(const std::string& spec) {
  Vmi v;
  v.spec = spec;
  return v;
}
Vmi Metadata(const std::string& md) {
  Vmi v;
  v.md = md;
  return v;
}

// `s` with its first `from` replaced by `to`.
std::string Replace(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? s : s.replace(at, from.size(), to);
}

struct Refusal {
  std::string yaml;
  std::string path;    // the error is "vm.yaml[ (document N)]: PATH: ..."
  std::string reason;  // and contains this
};

void PrintTo(const Refusal& r, std::ostream* os) { *os << r.path << ": " << r.reason; }

class Refusals : public testing::TestWithParam<Refusal> {};

TEST_P(Refusals, NameTheField) {
  auto sets = ParseVmFiles({{"vm.yaml", GetParam().yaml}});
  ASSERT_FALSE(sets.ok()) << GetParam().yaml;
  EXPECT_EQ(sets.status().code(), Code::kInvalidArgument);
  std::string m = sets.status().message();
  std::string where = m.starts_with("vm.yaml (document ") ? m.substr(0, m.find("): ") + 3) : "vm.yaml: ";
  ASSERT_THAT(m, StartsWith(where));
  EXPECT_THAT(m.substr(where.size()), StartsWith(GetParam().path + ": ")) << GetParam().yaml;
  EXPECT_THAT(m, HasSubstr(GetParam().reason));
}

const std::string kVol = "spec.volumes[0]";
const std::string kDisk0 = "spec.domain.devices.disks[0]";
const std::string kNoStorage = "not supported: regdisk runs registry disks on one node without Kubernetes storage";
const std::string kTwoVols = "[{name: root, containerDisk: {image: img}}, ";

std::string SecretDoc(const std::string& data) {
  return "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n" + data + "\n---\n";
}

INSTANTIATE_TEST_SUITE_P(Volumes, Refusals, testing::Values(
    Refusal{Volumes("[{name: root, persistentVolumeClaim: {claimName: c}}]").Yaml(), kVol + ".persistentVolumeClaim", kNoStorage},
    Refusal{Volumes("[{name: root, dataVolume: {name: d}}]").Yaml(), kVol + ".dataVolume", kNoStorage},
    Refusal{Volumes("[{name: root, hostDisk: {path: /x, type: Disk}}]").Yaml(), kVol + ".hostDisk", "files of the host"},
    Refusal{Volumes("[{name: root, ephemeral: {}}]").Yaml(), kVol + ".ephemeral", kNoStorage},
    Refusal{Volumes("[{name: root, configMap: {name: c}}]").Yaml(), kVol + ".configMap", "API server"},
    Refusal{Volumes("[{name: root, secret: {secretName: c}}]").Yaml(), kVol + ".secret", "API server"},
    Refusal{Volumes("[{name: root, serviceAccount: {}}]").Yaml(), kVol + ".serviceAccount", "API server"},
    Refusal{Volumes("[{name: root, downwardAPI: {}}]").Yaml(), kVol + ".downwardAPI", "API server"},
    Refusal{Volumes("[{name: root, downwardMetrics: {}}]").Yaml(), kVol + ".downwardMetrics", "metrics"},
    Refusal{Volumes("[{name: root, sysprep: {}}]").Yaml(), kVol + ".sysprep", "sysprep"},
    Refusal{Volumes("[{name: root, memoryDump: {}}]").Yaml(), kVol + ".memoryDump", "memory dumps"},
    Refusal{Volumes("[{name: root, gitRepo: {}}]").Yaml(), kVol + ".gitRepo", "unknown field"},
    Refusal{Volumes("[{name: root}]").Yaml(), kVol, "no volume source"},
    Refusal{Volumes("[{name: root, containerDisk: {image: i, tag: x}}]").Yaml(), kVol + ".containerDisk.tag", "unknown field"},
    Refusal{Volumes("[{name: root, containerDisk: {image: i, path: disk/x}}]").Yaml(), kVol + ".containerDisk.path", "clean absolute path"},
    Refusal{Volumes("[{name: root, containerDisk: {image: i, path: /}}]").Yaml(), kVol + ".containerDisk.path", "clean absolute path"},
    Refusal{Volumes("[{name: root, emptyDisk: {}}]").Yaml(), kVol + ".emptyDisk.capacity", "required"},
    Refusal{Volumes("[{name: root, emptyDisk: {capacity: 2Ti}}]").Yaml(), kVol + ".emptyDisk.capacity", "out of range"},
    Refusal{Volumes(kTwoVols + "{name: ci, cloudInitNoCloud: {}}]").Yaml(), "spec.volumes[1].cloudInitNoCloud", "needs user data"},
    Refusal{Volumes(kTwoVols + "{name: ci, cloudInitNoCloud: {userData: a, userDataBase64: YQ==}}]").Yaml(),
            "spec.volumes[1].cloudInitNoCloud", "only one of userData, userDataBase64 and secretRef"},
    Refusal{Volumes(kTwoVols + "{name: ci, cloudInitNoCloud: {userDataBase64: \"not base64!\"}}]").Yaml(),
            "spec.volumes[1].cloudInitNoCloud.userDataBase64", "not valid base64"},
    Refusal{Volumes(kTwoVols + "{name: ci, cloudInitConfigDrive: {userData: " + std::string(2049, 'x') + "}}]").Yaml(),
            "spec.volumes[1].cloudInitConfigDrive.userData", "larger than 2048 bytes"},
    Refusal{Volumes(kTwoVols + "{name: ci, cloudInitNoCloud: {networkData: " + std::string(2049, 'x') + "}}]").Yaml(),
            "spec.volumes[1].cloudInitNoCloud.networkData", "use networkDataSecretRef"},
    Refusal{Volumes(kTwoVols + "{name: ci, cloudInitNoCloud: {secretRef: {name: nope}}}]").Yaml(),
            "spec.volumes[1].cloudInitNoCloud.secretRef.name", "no Secret \"nope\" in namespace \"default\""},
    Refusal{SecretDoc("stringData: {other: x}") +
                Volumes(kTwoVols + "{name: ci, cloudInitNoCloud: {secretRef: {name: s}}}]").Yaml(),
            "spec.volumes[1].cloudInitNoCloud.secretRef.name", "has no userdata or userData key"},
    Refusal{SecretDoc("data: {userdata: \"%%%\"}") + Vmi().Yaml(), "data.userdata", "not valid base64"},
    Refusal{Volumes(kTwoVols + "{name: ci, cloudInitNoCloud: {userData: a, userDataSecretRef: {name: s}}}]").Yaml(),
            "spec.volumes[1].cloudInitNoCloud.userDataSecretRef", "unknown field"},
    Refusal{Volumes(kTwoVols + "{name: a, cloudInitNoCloud: {userData: a}}, {name: b, cloudInitConfigDrive: {userData: b}}]").Yaml(),
            "spec.volumes[2]", "a second cloud-init volume"}));

INSTANTIATE_TEST_SUITE_P(Disks, Refusals, testing::Values(
    Refusal{Devices("disks: [{name: root, lun: {}}]").Yaml(), kDisk0 + ".lun", "LUN"},
    Refusal{Devices("disks: [{name: root, floppy: {}}]").Yaml(), kDisk0 + ".floppy", "floppy"},
    Refusal{Devices("disks: [{name: root, cache: none}]").Yaml(), kDisk0 + ".cache", "cache mode"},
    Refusal{Devices("disks: [{name: root, io: native}]").Yaml(), kDisk0 + ".io", "I/O mode"},
    Refusal{Devices("disks: [{name: root, dedicatedIOThread: true}]").Yaml(), kDisk0 + ".dedicatedIOThread", "I/O threads"},
    Refusal{Devices("disks: [{name: root, tag: t}]").Yaml(), kDisk0 + ".tag", "metadata service"},
    Refusal{Devices("disks: [{name: root, shareable: true}]").Yaml(), kDisk0 + ".shareable", "one VM"},
    Refusal{Devices("disks: [{name: root, errorPolicy: report}]").Yaml(), kDisk0 + ".errorPolicy", "stops the VM"},
    Refusal{Devices("disks: [{name: root, blockSize: {}}]").Yaml(), kDisk0 + ".blockSize", "block sizes"},
    Refusal{Devices("disks: [{name: root, disk: {pciAddress: \"0000:81:01.0\"}}]").Yaml(), kDisk0 + ".disk.pciAddress", "libvirt place"},
    Refusal{Devices("disks: [{name: root, cdrom: {bus: virtio}}]").Yaml(), kDisk0 + ".cdrom.bus", "sata or scsi, not virtio"},
    Refusal{Devices("disks: [{name: root, cdrom: {readonly: false}}]").Yaml(), kDisk0 + ".cdrom.readonly", "read-only"},
    Refusal{Devices("disks: [{name: root, cdrom: {tray: open}}]").Yaml(), kDisk0 + ".cdrom.tray", "closed tray"},
    Refusal{Devices("disks: [{name: root, disk: {}, cdrom: {}}]").Yaml(), kDisk0, "both disk and cdrom"},
    Refusal{Volumes("[{name: root, emptyDisk: {capacity: 1Gi}}]", "disks: [{name: root, cdrom: {}}]").Yaml(),
            kDisk0 + ".cdrom", "an emptyDisk cannot be a cdrom"},
    Refusal{Devices("disks: [{name: root, serial: \"has space\"}]").Yaml(), kDisk0 + ".serial", "is not a serial"},
    Refusal{Devices("disks: [{name: root, serial: \"" + std::string(21, 'a') + "\"}]").Yaml(), kDisk0 + ".serial", "at most 20"},
    Refusal{Devices("disks: [{name: root, disk: {bus: fdc}}]").Yaml(), kDisk0 + ".disk.bus", "unknown bus"}));

INSTANTIATE_TEST_SUITE_P(Devices, Refusals, testing::Values(
    Refusal{Devices("disks: [{name: root}], gpus: [{name: g, deviceName: x}]").Yaml(), "spec.domain.devices.gpus", "devices of the host"},
    Refusal{Devices("disks: [{name: root}], hostDevices: []").Yaml(), "spec.domain.devices.hostDevices", "devices of the host"},
    Refusal{Devices("disks: [{name: root}], tpm: {}").Yaml(), "spec.domain.devices.tpm", "TPM"},
    Refusal{Devices("disks: [{name: root}], watchdog: {name: w}").Yaml(), "spec.domain.devices.watchdog", "watchdog"},
    Refusal{Devices("disks: [{name: root}], sound: {name: s}").Yaml(), "spec.domain.devices.sound", "sound"},
    Refusal{Devices("disks: [{name: root}], inputs: []").Yaml(), "spec.domain.devices.inputs", "input"},
    Refusal{Devices("disks: [{name: root}], filesystems: []").Yaml(), "spec.domain.devices.filesystems", "virtiofs"},
    Refusal{Devices("disks: [{name: root}], clientPassthrough: {}").Yaml(), "spec.domain.devices.clientPassthrough", "host"},
    Refusal{Devices("disks: [{name: root}], useVirtioTransitional: true").Yaml(), "spec.domain.devices.useVirtioTransitional", "not supported"},
    Refusal{Devices("disks: [{name: root}], autoattachVSOCK: true").Yaml(), "spec.domain.devices.autoattachVSOCK", "vsock"},
    Refusal{Devices("disks: [{name: root}], rng: {source: x}").Yaml(), "spec.domain.devices.rng.source", "unknown field"},
    Refusal{Devices("disks: [{name: root}], autoattachPodInterface: maybe").Yaml(), "spec.domain.devices.autoattachPodInterface", "true or false"},
    Refusal{Devices("disks: [{name: root}], blinkenlights: true").Yaml(), "spec.domain.devices.blinkenlights", "unknown field"}));

// An interface list and a network list (flow style).
Vmi Net(const std::string& interfaces, const std::string& networks = "[{name: n, pod: {}}]") {
  Vmi v;
  v.devices = "disks: [{name: root}], interfaces: " + interfaces;
  v.spec = "  networks: " + networks + "\n";
  return v;
}
const std::string kIf0 = "spec.domain.devices.interfaces[0]";

INSTANTIATE_TEST_SUITE_P(Networks, Refusals, testing::Values(
    Refusal{Net("[{name: n, sriov: {}}]").Yaml(), kIf0 + ".sriov", "SR-IOV"},
    Refusal{Net("[{name: n, macvtap: {}}]").Yaml(), kIf0 + ".macvtap", "macvtap"},
    Refusal{Net("[{name: n, passt: {}}]").Yaml(), kIf0 + ".passt", "masquerade"},
    Refusal{Net("[{name: n, binding: {name: b}}]").Yaml(), kIf0 + ".binding", "binding plugins"},
    Refusal{Net("[{name: n, masquerade: {}, bootOrder: 1}]").Yaml(), kIf0 + ".bootOrder", "network boot"},
    Refusal{Net("[{name: n, masquerade: {}, slirp: {}}]").Yaml(), kIf0, "more than one of masquerade"},
    Refusal{Net("[{name: n, bridge: {}, macAddress: \"zz:00:00:00:00:00\"}]").Yaml(), kIf0 + ".macAddress", "not a MAC"},
    Refusal{Net("[{name: n, bridge: {}, macAddress: \"03:00:00:00:00:01\"}]").Yaml(), kIf0 + ".macAddress", "multicast"},
    Refusal{Net("[{name: n, masquerade: {}, model: vmxnet3}]").Yaml(), kIf0 + ".model", "unknown model"},
    Refusal{Net("[{name: x, masquerade: {}}]").Yaml(), kIf0 + ".name", "no network named \"x\""},
    Refusal{Net("[{name: n, masquerade: {}}]", "[{name: n, pod: {}}, {name: m, multus: {networkName: m}}]").Yaml(),
            "spec.networks[1].multus", "Multus"},
    Refusal{Net("[{name: n, masquerade: {}}]", "[{name: n, pod: {}}, {name: m, pod: {}}]").Yaml(), "spec.networks[1]",
            "a second pod network"},
    Refusal{Net("[]", "[{name: n, pod: {}}]").Yaml(), "spec.networks[0]", "no interface for network"},
    Refusal{Net("[{name: n, masquerade: {}}]", "[{name: n, pod: {vmNetworkCIDR: 10.0.0.0/24}}]").Yaml(),
            "spec.networks[0].pod.vmNetworkCIDR", "picks its own addresses"},
    Refusal{Metadata("name: vm, annotations: {regdisk.io/bridge-network: \"no/slash\"}").Yaml(),
            "metadata.annotations.regdisk.io/bridge-network", "not a libvirt network name"}));

INSTANTIATE_TEST_SUITE_P(Domain, Refusals, testing::Values(
    Refusal{Domain("cpu: {model: host-passthrough}").Yaml(), "spec.domain.cpu.model", "default CPU model"},
    Refusal{Domain("cpu: {dedicatedCpuPlacement: true}").Yaml(), "spec.domain.cpu.dedicatedCpuPlacement", "pin"},
    Refusal{Domain("cpu: {numa: {}}").Yaml(), "spec.domain.cpu.numa", "pin"},
    Refusal{Domain("memory: {hugepages: {pageSize: 2Mi}}").Yaml(), "spec.domain.memory.hugepages", "pin"},
    Refusal{Domain("firmware: {kernelBoot: {}}").Yaml(), "spec.domain.firmware.kernelBoot", "boots from disks only"},
    Refusal{Domain("firmware: {bootloader: {efi: {persistent: true}}}").Yaml(), "spec.domain.firmware.bootloader.efi.persistent", "per run"},
    Refusal{Domain("firmware: {bootloader: {efi: {}, bios: {}}}").Yaml(), "spec.domain.firmware.bootloader", "both bios and efi"},
    Refusal{Domain("firmware: {uuid: not-a-uuid}").Yaml(), "spec.domain.firmware.uuid", "not a UUID"},
    Refusal{Domain("firmware: {bootloader: {efi: {}}}, features: {smm: {enabled: false}}").Yaml(),
            "spec.domain.features.smm", "secure boot needs SMM"},
    Refusal{Domain("firmware: {bootloader: {efi: {secureBoot: false}}}, features: {acpi: {enabled: false}}").Yaml(),
            "spec.domain.features.acpi", "EFI needs ACPI"},
    Refusal{Domain("features: {hyperv: {relaxed: {}}}").Yaml(), "spec.domain.features.hyperv", "Hyper-V"},
    Refusal{Domain("features: {kvm: {hidden: true}}").Yaml(), "spec.domain.features.kvm", "hiding KVM"},
    Refusal{Domain("machine: {type: pc-i440fx-8.0}").Yaml(), "spec.domain.machine.type", "not a q35 machine type"},
    Refusal{Domain("ioThreadsPolicy: auto").Yaml(), "spec.domain.ioThreadsPolicy", "I/O threads"},
    Refusal{Domain("launchSecurity: {sev: {}}").Yaml(), "spec.domain.launchSecurity", "SEV"},
    Refusal{Domain("clock: {timezone: Europe/Paris}").Yaml(), "spec.domain.clock.timezone", "UTC"},
    Refusal{Domain("resources: {requests: {nvidia.com/gpu: 1}}").Yaml(), "spec.domain.resources.requests.nvidia.com/gpu", "unknown field"},
    Refusal{Domain("resources: {limits: {cpu: lots}}").Yaml(), "spec.domain.resources.limits.cpu", "invalid quantity"},
    Refusal{Domain("resources: {requests: {cpu: \"300\"}}").Yaml(), "spec.domain.resources.requests.cpu", "more than 256 vCPUs"},
    Refusal{Replace(Domain("machine: {type: q35}").Yaml(), "disks: [{name: root}]", "disks: [{name: root, disk: {dev: hda}}]"),
            kDisk0, "no IDE bus"}));

const std::string kInstancetype =
    "apiVersion: instancetype.kubevirt.io/v1beta1\nkind: VirtualMachineClusterInstancetype\nmetadata: {name: it}\n"
    "spec: {cpu: {guest: 2}, memory: {guest: 1Gi}}\n---\n";

INSTANTIATE_TEST_SUITE_P(Objects, Refusals, testing::Values(
    Refusal{Spec("  accessCredentials: []\n").Yaml(), "spec.accessCredentials", "cloud-init"},
    Refusal{Spec("  readinessProbe: {}\n").Yaml(), "spec.readinessProbe", "probes"},
    Refusal{Spec("  startStrategy: Paused\n").Yaml(), "spec.startStrategy", "starts when it is run"},
    Refusal{Spec("  architecture: arm64\n").Yaml(), "spec.architecture", "only amd64"},
    Refusal{Spec("  dnsConfig: {}\n").Yaml(), "spec.dnsConfig", "DNS"},
    Refusal{Spec("  hostNetwork: true\n").Yaml(), "spec.hostNetwork", "unknown field"},
    Refusal{Metadata("name: vm, annotations: {hooks.kubevirt.io/hookSidecars: \"[]\"}").Yaml(), "metadata.annotations",
            "sidecar hooks"},
    Refusal{Metadata("generateName: vm-").Yaml(), "metadata.generateName", "fixed name"},
    Refusal{Metadata("name: vm, labels: {\"bad key!\": x}").Yaml(), "metadata.labels", "not a valid label key"},
    Refusal{VmWith("  running: true\n  runStrategy: Always\n"), "spec.runStrategy", "mutually exclusive"},
    Refusal{VmWith("  runStrategy: WaitAsReceiver\n"), "spec.runStrategy", "is not Always"},
    Refusal{VmWith("  dataVolumeTemplates: [{metadata: {name: d}}]\n"), "spec.dataVolumeTemplates", "DataVolumes"},
    Refusal{VmWith("  instancetype: {name: u1.medium}\n"), "spec.instancetype",
            "VirtualMachineClusterInstancetype \"u1.medium\" is not among the given files"},
    Refusal{VmWith("  preference: {name: fedora, kind: VirtualMachinePreference}\n"), "spec.preference",
            "VirtualMachinePreference \"fedora\" is not among the given files"},
    Refusal{VmWith("  instancetype: {name: it, inferFromVolume: root}\n"), "spec.instancetype.inferFromVolume",
            "instancetype labels"},
    Refusal{kInstancetype + Replace(VmWith("  instancetype: {name: it}\n"), "domain: {devices", "domain: {cpu: {cores: 2}, devices"),
            "spec.template.spec.domain.cpu", "conflicts with instancetype"},
    Refusal{"apiVersion: instancetype.kubevirt.io/v1beta1\nkind: VirtualMachineInstancetype\nmetadata: {name: it}\n"
            "spec: {cpu: {guest: 2, dedicatedCPUPlacement: true}, memory: {guest: 1Gi}}\n---\n" + Vmi().Yaml(),
            "spec.cpu.dedicatedCPUPlacement", "pin"},
    Refusal{"apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceReplicaSet\nmetadata: {name: rs}\n"
            "spec: {paused: true, template: {spec: {domain: {devices: {}}}}}\n", "spec.paused", "paused"},
    Refusal{"apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceReplicaSet\nmetadata: {name: rs}\n"
            "spec: {replicas: 2, template: {spec: {domain: {firmware: {uuid: 5d307ca9-b3ef-428c-8861-06e72d69f223}, "
            "devices: {disks: [{name: r}]}}, volumes: [{name: r, containerDisk: {image: i}}]}}}\n",
            "spec.template.spec.domain.firmware.uuid", "distinct UUIDs"},
    Refusal{"apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceReplicaSet\nmetadata: {name: rs}\n"
            "spec: {replicas: 2, template: {spec: {domain: {devices: {disks: [{name: r}], interfaces: [{name: n, "
            "masquerade: {}, macAddress: \"02:00:00:00:00:01\"}]}}, networks: [{name: n, pod: {}}], "
            "volumes: [{name: r, containerDisk: {image: i}}]}}}\n",
            "spec.template.spec.domain.devices.interfaces[0].macAddress", "distinct MAC addresses"},
    Refusal{"apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: vm}\nspec: {domain: {}}\n",
            "spec.domain.devices.disks", "required (no disks and no volumes)"}));

// The few refusals whose message has no "FILE: PATH:" form of its own.
TEST(Refusals, WholeFileErrors) {
  auto none = ParseVmFiles({{"s.yaml", SecretDoc("stringData: {userdata: x}")}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "no VirtualMachine, VirtualMachineInstance or replica set in the given files");
  auto dup = ParseVmFiles({{"vm.yaml", Vmi().Yaml() + "---\n" + Vmi().Yaml()}});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "vm.yaml (document 2): a second VM named \"vm\"");
  // One node names VMs by name alone: another namespace, or a replica's
  // name, collides too.
  Vmi other_ns;
  other_ns.md = "name: vm, namespace: other";
  auto ns = ParseVmFiles({{"vm.yaml", Vmi().Yaml() + "---\n" + other_ns.Yaml()}});
  ASSERT_FALSE(ns.ok());
  EXPECT_EQ(ns.status().message(), "vm.yaml (document 2): a second VM named \"vm\"");
  Vmi replica;
  replica.md = "name: web-1";
  std::string set = "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceReplicaSet\nmetadata: {name: web}\n"
                    "spec: {replicas: 2, template: {spec: {domain: {devices: {disks: [{name: r}]}}, "
                    "volumes: [{name: r, containerDisk: {image: i}}]}}}\n";
  auto rs = ParseVmFiles({{"vm.yaml", set + "---\n" + replica.Yaml()}});
  ASSERT_FALSE(rs.ok());
  EXPECT_EQ(rs.status().message(), "vm.yaml (document 2): a second VM named \"web-1\"");
  auto kind = ParseVmFiles({{"vm.yaml", Vmi().Yaml() + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"}});
  ASSERT_FALSE(kind.ok());
  EXPECT_THAT(kind.status().message(), StartsWith("vm.yaml (document 2): kind: \"ConfigMap\" is not a VM kind"));
}

TEST(Refusals, DocumentAndFileCountsAreBounded) {
  std::string docs;
  for (int i = 0; i < 65; ++i) docs += "---\nkind: Secret\n";
  auto many = ParseVmFiles({{"vm.yaml", docs}});
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.status().message(), "vm.yaml: yaml: more than 64 documents");
  std::vector<SpecFile> files(65, SpecFile{"vm.yaml", Vmi().Yaml()});
  auto too_many = ParseVmFiles(files);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().message(), "more than 64 spec files");
  // Empty documents between separators are skipped.
  auto skipped = ParseVmFiles({{"vm.yaml", "---\n---\n" + Vmi().Yaml() + "---\n"}});
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(skipped->size(), 1u);
}

}  // namespace
}  // namespace regdisk::vm
