#include "vm/spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vm/testutil.h"

namespace regdisk::vm {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

VmSet MustParse(const std::string& yaml) {
  auto set = ParseVmYaml(yaml);
  EXPECT_TRUE(set.ok()) << set.status().ToString();
  return set.ok() ? *set : VmSet{};
}

TEST(ParseVmYaml, SeedDesignFormAsWritten) {
  VmSet s = MustParse(ReadTestData("seed_design.yaml"));
  EXPECT_EQ(s.replicas, 1);
  EXPECT_EQ(s.vm.source_form, "design");
  EXPECT_EQ(s.vm.name, "fedora25");  // no metadata: named after the image
  EXPECT_EQ(s.vm.ns, "default");
  EXPECT_EQ(s.vm.memory_bytes, 128ull << 20);
  ASSERT_EQ(s.vm.disks.size(), 1u);
  const VmDisk& d = s.vm.disks[0];
  EXPECT_EQ(d.name, "disk0");
  EXPECT_EQ(d.target, "sda");
  EXPECT_EQ(d.bus, DiskBus::kSata);
  EXPECT_EQ(d.volume.container.image, "vmdisks/fedora25:latest");
  EXPECT_EQ(d.volume.name, "disk0");
}

TEST(ParseVmYaml, SeedUserGuideForm) {
  VmSet s = MustParse(ReadTestData("seed_user_guide.yaml"));
  EXPECT_EQ(s.vm.source_form, "v1alpha1");
  EXPECT_EQ(s.vm.name, "testvm-ephemeral");
  EXPECT_EQ(s.vm.memory_bytes, 64000000u);
  EXPECT_EQ(s.vm.cpus(), 1);
  ASSERT_EQ(s.vm.disks.size(), 1u);
  EXPECT_EQ(s.vm.disks[0].name, "registrydisk");
  EXPECT_EQ(s.vm.disks[0].target, "vda");
  EXPECT_EQ(s.vm.disks[0].bus, DiskBus::kVirtio);
  EXPECT_EQ(s.vm.disks[0].volume.name, "registryvolume");
  EXPECT_EQ(s.vm.disks[0].volume.container.image, "vmdisks/fedora25:latest");
}

TEST(ParseVmYaml, ContainerDiskVmWithTwoDisks) {
  VmSet s = MustParse(ReadTestData("containerdisk_vm.yaml"));
  EXPECT_EQ(s.vm.source_form, "containerDisk");
  EXPECT_EQ(s.vm.name, "fedora-two-disks");
  EXPECT_EQ(s.vm.ns, "vms");
  EXPECT_EQ(s.vm.cpus(), 4);
  EXPECT_EQ(s.vm.memory_bytes, 1ull << 30);  // memory.guest wins over requests
  ASSERT_EQ(s.vm.disks.size(), 2u);
  const VmDisk& root = s.vm.disks[0];
  EXPECT_EQ(root.target, "vda");
  EXPECT_EQ(root.boot_order, 1);
  EXPECT_EQ(root.volume.container.pull_policy, "Always");
  EXPECT_EQ(root.volume.container.pull_secret, "regcred");
  const VmDisk& data = s.vm.disks[1];
  EXPECT_EQ(data.target, "sda");
  EXPECT_EQ(data.bus, DiskBus::kSata);
  EXPECT_EQ(data.volume.container.path, "/disk/data.qcow2");
  EXPECT_FALSE(data.boot_order.has_value());
}

TEST(ParseVmYaml, ReplicaSet) {
  VmSet s = MustParse(ReadTestData("replicaset.yaml"));
  EXPECT_EQ(s.replicas, 3);
  EXPECT_EQ(s.vm.name, "web");
  EXPECT_EQ(s.vm.memory_bytes, 256ull << 20);
  ASSERT_EQ(s.vm.disks.size(), 1u);
  EXPECT_EQ(s.vm.disks[0].target, "vda");
  EXPECT_EQ(s.vm.disks[0].volume.container.image, "vmdisks/cirros:0.6");
}

TEST(ParseVmYaml, DesignFormWithMappingsOrOneItemLists) {
  VmSet s = MustParse(R"(kind: VirtualMachine
metadata: {name: vm}
spec:
  domain:
    devices:
      disks:
      - {type: "RegistryDisk:v1alpha", source: {name: a/b:1}, target: {device: sdb, bus: scsi}}
      - {type: "RegistryDisk:v1alpha", name: data, source: [{name: a/c}], target: [{}]}
)");
  ASSERT_EQ(s.vm.disks.size(), 2u);
  EXPECT_EQ(s.vm.disks[0].target, "sdb");
  EXPECT_EQ(s.vm.disks[0].bus, DiskBus::kScsi);
  EXPECT_EQ(s.vm.disks[1].name, "data");
  EXPECT_EQ(s.vm.disks[1].volume.container.image, "a/c");
  EXPECT_EQ(s.vm.disks[1].target, "vda");
}

TEST(ParseVmYaml, TargetsDerivedInOrderPerBus) {
  VmSet s = MustParse(R"(kind: VirtualMachineInstance
metadata: {name: vm}
spec:
  domain:
    devices:
      disks:
      - {name: a, disk: {bus: virtio}}
      - {name: b, disk: {bus: sata}}
      - {name: c, disk: {dev: vda}}
      - {name: d, disk: {bus: ide}}
      - {name: e, disk: {bus: scsi}}
  volumes:
  - {name: a, containerDisk: {image: i}}
  - {name: b, containerDisk: {image: i}}
  - {name: c, containerDisk: {image: i}}
  - {name: d, containerDisk: {image: i}}
  - {name: e, containerDisk: {image: i}}
)");
  std::vector<std::string> targets;
  for (const VmDisk& d : s.vm.disks) targets.push_back(d.target);
  EXPECT_EQ(targets, (std::vector<std::string>{"vdb", "sda", "vda", "hda", "sdb"}));
}

// A small volume-form VM with the given flow-style pieces.
std::string Vm(const std::string& disks, const std::string& volumes, const std::string& domain = "",
               const std::string& metadata = "{name: vm}") {
  return "kind: VirtualMachine\nmetadata: " + metadata + "\nspec:\n  domain:\n" + domain +
         "    devices: {disks: " + disks + "}\n  volumes: " + volumes + "\n";
}
const std::string kDisk = "[{name: a}]";
const std::string kVol = "[{name: a, containerDisk: {image: img}}]";
std::string Design(const std::string& disk) {
  return "kind: VirtualMachine\nspec:\n  domain:\n    devices:\n      disks:\n      - " + disk + "\n";
}
std::string ReplicaSet(const std::string& spec, const std::string& name = "rs") {
  return "kind: VirtualMachineReplicaSet\nmetadata: {name: " + name + "}\nspec: " + spec + "\n";
}
const std::string kTemplate = "template: {spec: {domain: {devices: {disks: [{name: a}]}}, volumes: " + kVol + "}}";

struct Invalid {
  std::string yaml;
  std::string message;  // the whole message, or its start when it ends with "..."
};

void PrintTo(const Invalid& c, std::ostream* os) { *os << c.message; }

class InvalidSpec : public testing::TestWithParam<Invalid> {};

TEST_P(InvalidSpec, FailsNamingTheField) {
  auto set = ParseVmYaml(GetParam().yaml);
  ASSERT_FALSE(set.ok()) << GetParam().yaml;
  EXPECT_EQ(set.status().code(), Code::kInvalidArgument);
  std::string want = GetParam().message;
  if (want.ends_with("...")) {
    EXPECT_THAT(set.status().message(), StartsWith(want.substr(0, want.size() - 3)));
  } else {
    EXPECT_EQ(set.status().message(), want);
  }
}

std::string SeventeenDisks() {
  std::string disks = "[", vols = "[";
  for (int i = 0; i < 17; ++i) {
    disks += "{name: d" + std::to_string(i) + "},";
    vols += "{name: d" + std::to_string(i) + ", containerDisk: {image: i}},";
  }
  return Vm(disks + "]", vols + "]");
}

const char* const kMem = "    resources: {requests: {memory: ";

INSTANTIATE_TEST_SUITE_P(Table, InvalidSpec, testing::Values(
    Invalid{Vm("[{name: a}, {name: b}]", "[{name: a, registryDisk: {image: i}}, {name: b, registryDisk: {}}]"),
            "spec.volumes[1].registryDisk.image: required"},
    Invalid{Vm("[{name: a, volumeName: x}]", "[{name: a, registryDisk: {image: i}}]"),
            "spec.domain.devices.disks[0].volumeName: no volume named \"x\""},
    Invalid{Vm("[{name: b}]", kVol), "spec.domain.devices.disks[0].name: no volume named \"b\""},
    Invalid{Design("{type: RegistryDisk:v2, source: {name: i}}"),
            "spec.domain.devices.disks[0].type: unknown disk type \"RegistryDisk:v2\" (want RegistryDisk:v1alpha)"},
    Invalid{Design("{type: \"RegistryDisk:v1alpha\", source: {}}"),
            "spec.domain.devices.disks[0].source.name: required"},
    Invalid{Design("{type: \"RegistryDisk:v1alpha\", source: {name: i}}") + "  volumes: []\n",
            "spec.volumes: not used by RegistryDisk:v1alpha disks"},
    Invalid{Vm(kDisk, kVol, "", "{namespace: x}"), "metadata.name: required"},
    Invalid{Vm(kDisk, kVol, "", "{name: Bad_Name}"), "metadata.name: \"Bad_Name\" is not a valid name..."},
    Invalid{Vm(kDisk, kVol, "", "{name: \"\\x1b[31mred\\\"\"}"),
            "metadata.name: \"\\x1b[31mred\\\"\" is not a valid name..."},
    Invalid{Vm(kDisk, "[{name: a, containerDisk: {image: i, path: \"/disk/a\\tb\"}}]"),
            "spec.volumes[0].containerDisk.path: \"/disk/a\\x09b\" must be a clean absolute path to a file in the image"},
    Invalid{Vm(kDisk, kVol, "", "{name: vm, namespace: -x}"), "metadata.namespace: \"-x\" is not a valid name..."},
    Invalid{Vm("[{name: a, disk: {dev: vda}}, {name: b, disk: {dev: vda}}]",
               "[{name: a, containerDisk: {image: i}}, {name: b, containerDisk: {image: i}}]"),
            "spec.domain.devices.disks[1]: target \"vda\" is already used by disks[0]"},
    Invalid{Vm(kDisk, "[{name: a, persistentVolumeClaim: {claimName: c}}]"),
            "spec.volumes[0].persistentVolumeClaim: not supported: regdisk runs registry disks on one node without "
            "Kubernetes storage; use a containerDisk"},
    Invalid{Vm(kDisk, "[{name: a, registryDisk: {image: i}, containerDisk: {image: i}}]"),
            "spec.volumes[0]: more than one volume source"},
    Invalid{Vm(kDisk, kVol, std::string(kMem) + "12Q}}\n"),
            "spec.domain.resources.requests.memory: invalid quantity \"12Q\""},
    Invalid{Vm(kDisk, kVol, std::string(kMem) + "1k}}\n"),
            "spec.domain.resources.requests.memory: \"1k\" is out of range (1Mi to 16Ti)"},
    Invalid{Vm(kDisk, kVol, "    memory: {guest: 99Ei}\n"),
            "spec.domain.memory.guest: quantity \"99Ei\" is out of range"},
    Invalid{ReplicaSet("{replicas: 0, template: {spec: {}}}"), "spec.replicas: must be an integer from 1 to 1000"},
    Invalid{ReplicaSet("{replicas: 1001, template: {spec: {}}}"), "spec.replicas: must be an integer from 1 to 1000"},
    Invalid{ReplicaSet("{replicas: 2}"), "spec.template: required"},
    Invalid{ReplicaSet("{template: {spec: {domain: {devices: {disks: []}}}}}"),
            "spec.template.spec.domain.devices.disks: required (no disks and no volumes)"},
    Invalid{Vm(kDisk, "[{name: a, containerDisk: {image: i, imagePullPolicy: Sometimes}}]"),
            "spec.volumes[0].containerDisk.imagePullPolicy: \"Sometimes\" is not Always, IfNotPresent or Never"},
    Invalid{Vm(kDisk, "[{name: a, containerDisk: {image: i, imagePullSecret: Bad Secret}}]"),
            "spec.volumes[0].containerDisk.imagePullSecret: \"Bad Secret\" is not a valid secret name"},
    Invalid{Vm(kDisk, "[{name: a, containerDisk: {image: bad image}}]"),
            "spec.volumes[0].containerDisk.image: invalid image reference \"bad image\""},
    Invalid{Vm(kDisk, "[{name: a, containerDisk: {image: i, path: disk.img}}]"),
            "spec.volumes[0].containerDisk.path: \"disk.img\" must be a clean absolute path to a file in the image"},
    Invalid{Vm(kDisk, "[{name: a, containerDisk: {image: i, path: /disk/../etc/shadow}}]"),
            "spec.volumes[0].containerDisk.path: \"/disk/../etc/shadow\" must be a clean absolute path to a file in the image"},
    Invalid{Vm("[{name: a, disk: {bus: fdc}}]", kVol),
            "spec.domain.devices.disks[0].disk.bus: unknown bus \"fdc\" (want virtio, sata, scsi, usb or ide)"},
    Invalid{Vm("[{name: a, disk: {bus: virtio, dev: sda}}]", kVol),
            "spec.domain.devices.disks[0].disk.dev: \"sda\" does not match bus virtio"},
    Invalid{Vm("[{name: a, disk: {dev: xda}}]", kVol),
            "spec.domain.devices.disks[0].disk.dev: invalid device \"xda\" (want vdX, sdX or hdX)"},
    Invalid{Vm("[{name: a, disk: {bus: sata, readonly: true}}]", kVol),
            "spec.domain.devices.disks[0].disk.readonly: not supported on bus sata..."},
    Invalid{Vm("[{name: a, disk: {readonly: maybe}}]", kVol),
            "spec.domain.devices.disks[0].disk.readonly: must be true or false"},
    Invalid{Vm("[{name: a, lun: {}}]", kVol),
            "spec.domain.devices.disks[0].lun: not supported: LUN passthrough needs a SCSI device of the host"},
    Invalid{Vm("[{name: a, bootOrder: 0}]", kVol), "spec.domain.devices.disks[0].bootOrder: must be an integer from 1 to 1000"},
    Invalid{Vm("[{volumeName: a}]", kVol), "spec.domain.devices.disks[0].name: required"},
    Invalid{Vm(kDisk, "[{name: a, containerDisk: {image: i}}, {name: a, containerDisk: {image: j}}]"),
            "spec.volumes[1].name: duplicate volume \"a\""},
    Invalid{Vm("[{name: b, volumeName: a}]", "[{name: a, containerDisk: {image: i}}, {name: b, containerDisk: {image: j}}]"),
            "spec.volumes[1].name: not used by any disk, and a disk of another volume has its name"},
    Invalid{Vm("[{name: a}, {name: b, volumeName: a}]", kVol),
            "spec.domain.devices.disks[1].volumeName: volume \"a\" is already used by disks[0]"},
    Invalid{Vm(kDisk, "[{name: " + std::string(57, 'v') + ", containerDisk: {image: i}}]"),
            "spec.volumes[0].name: \"" + std::string(57, 'v') +
                "\" is not a valid name (lowercase letters, digits and '-', at most 56 characters)"},
    Invalid{Vm(kDisk, kVol, "    cpu: {cores: 0}\n"), "spec.domain.cpu.cores: must be an integer from 1 to 256"},
    Invalid{Vm(kDisk, kVol, "    cpu: {cores: 16, sockets: 16, threads: 2}\n"), "spec.domain.cpu: more than 256 vCPUs"},
    Invalid{SeventeenDisks(), "spec.volumes: more than 16 volumes"},
    Invalid{Vm("[{name: a, disk: {bus: ide}}, {name: b, disk: {bus: ide}}, {name: c, disk: {bus: ide}},"
               " {name: d, disk: {bus: ide}}, {name: e, disk: {bus: ide}}]",
               "[{name: a, containerDisk: {image: i}}, {name: b, containerDisk: {image: i}},"
               " {name: c, containerDisk: {image: i}}, {name: d, containerDisk: {image: i}},"
               " {name: e, containerDisk: {image: i}}]"),
            "spec.domain.devices.disks[4]: no free ide target (at most 4 ide disks)"},
    Invalid{ReplicaSet("{replicas: 10, " + kTemplate + "}", std::string(62, 'r')),
            "metadata.name: too long for the names of 10 replicas"},
    Invalid{"metadata: {name: vm}\nspec: {}\n", "kind: required"},
    Invalid{"kind: Pod\nmetadata: {name: vm}\nspec: {}\n",
            "kind: \"Pod\" is not VirtualMachine, VirtualMachineInstance, OfflineVirtualMachine or a replica set"},
    Invalid{"apiVersion: v1\nkind: VirtualMachine\n", "apiVersion: \"v1\" is not a kubevirt.io version"},
    Invalid{"kind: VirtualMachine\nmetadata: {name: vm}\n", "spec: required"},
    Invalid{"kind: VirtualMachine\nmetadata: {name: vm}\nspec: {domain: []}\n", "spec.domain: must be a mapping"},
    Invalid{"- kind: VirtualMachine\n", "the document must be a mapping (a VirtualMachine object)"},
    Invalid{"kind: VirtualMachine\nmetadata: {name: a, name: b}\n", "yaml: line 2, column 21: duplicate key \"name\""}));

TEST(ParseVmYaml, ReplicaNamesFitWhenShortEnough) {
  // "NAME-9" is 63 characters.
  VmSet s = MustParse(ReplicaSet("{replicas: 10, " + kTemplate + "}", std::string(61, 'r')));
  EXPECT_EQ(s.replicas, 10);
}

struct Hostile {
  std::string name;
  std::string yaml;
  std::string message_part;
};

void PrintTo(const Hostile& c, std::ostream* os) { *os << c.name; }

class HostileYaml : public testing::TestWithParam<Hostile> {};

TEST_P(HostileYaml, IsRefusedNotCrashed) {
  auto set = ParseVmYaml(GetParam().yaml);
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(set.status().message(), HasSubstr(GetParam().message_part));
}

std::string BillionLaughs() {
  std::string y = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 10; ++i) {
    std::string p = "*a" + std::to_string(i - 1);
    y += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p + "," + p + "," + p + "," + p + "]\n";
  }
  return y + "kind: VirtualMachine\n";
}

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string DeepBlockMapping(int depth) {
  std::string y;
  for (int i = 0; i < depth; ++i) y += std::string(2 * i, ' ') + "a:\n";
  return y;
}

std::string Junk(bool with_controls) {
  std::string y;
  uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) {
    x = x * 1103515245 + 12345;
    char c = static_cast<char>(x >> 16);
    y += with_controls ? c : static_cast<char>(0x80 | (c & 0x7f));
  }
  return y;
}

INSTANTIATE_TEST_SUITE_P(Table, HostileYaml, testing::Values(
    Hostile{"BillionLaughs", BillionLaughs(), "anchors are not allowed"},
    Hostile{"MergeKeyAlias", "base: &b {kind: VirtualMachine}\nvm:\n  <<: *b\n", "anchors are not allowed"},
    Hostile{"UndefinedAlias", "kind: *x\n", "yaml: line 1"},
    Hostile{"DeepFlowNesting", Repeat("[", 100) + Repeat("]", 100), "nesting deeper than 64"},
    Hostile{"UnclosedDeepNesting", Repeat("[", 200000), "yaml: line 1"},
    Hostile{"DeepFlowMappings", Repeat("{a: ", 5000) + "1" + Repeat("}", 5000), "nesting deeper than 64"},
    Hostile{"DeepBlockNesting", DeepBlockMapping(80), "nesting deeper than 64"},
    Hostile{"HugeInput", "kind: VirtualMachine\n#" + std::string(1 << 20, 'x'), "input larger than 1 MiB"},
    Hostile{"ManyNodes", "[" + Repeat("1,", 200000) + "]", "more than 100000 nodes"},
    Hostile{"BinaryJunk", Junk(true), "yaml: control character at offset"},
    Hostile{"HighBytesJunk", Junk(false), ""},
    Hostile{"NulByte", std::string("kind: Virtual\0Machine\n", 22), "control character at offset 13"},
    Hostile{"TabIndentation", "kind: VirtualMachine\nspec:\n\tdomain: {}\n", "yaml: line 3"},
    Hostile{"TwoDocuments", "kind: VirtualMachine\n---\nkind: VirtualMachine\n", "more than one document"},
    Hostile{"Empty", "", "empty document"},
    Hostile{"NullDocument", "~\n", "must be a mapping"},
    Hostile{"ComplexKey", "? [a, b]\n: c\n", "mapping keys must be scalars"},
    Hostile{"UnterminatedQuote", "kind: \"VirtualMachine\n", ""},
    Hostile{"UnclosedFlow", "kind: [a, b\n", "yaml: "},
    Hostile{"LongScalar", std::string(1 << 19, 'a'), "must be a mapping"},
    Hostile{"TagsOnly", "!!binary kind: !!map x\n", ""}),
    [](const testing::TestParamInfo<Hostile>& p) { return p.param.name; });

struct QuantityCase {
  std::string text;
  std::optional<uint64_t> bytes;  // nullopt: an error
};

void PrintTo(const QuantityCase& c, std::ostream* os) { *os << '"' << c.text << '"'; }

class Quantity : public testing::TestWithParam<QuantityCase> {};

TEST_P(Quantity, ParsesLikeKubernetes) {
  auto q = ParseQuantity(GetParam().text);
  if (GetParam().bytes) {
    ASSERT_TRUE(q.ok()) << GetParam().text << ": " << q.status().ToString();
    EXPECT_EQ(*q, *GetParam().bytes) << GetParam().text;
  } else {
    EXPECT_FALSE(q.ok()) << GetParam().text << " gave " << *q;
  }
}

constexpr uint64_t kMax = UINT64_MAX;

INSTANTIATE_TEST_SUITE_P(Table, Quantity, testing::Values(
    QuantityCase{"0", 0}, QuantityCase{"512", 512}, QuantityCase{"+512", 512}, QuantityCase{"-0", 0},
    QuantityCase{"1k", 1000}, QuantityCase{"64M", 64000000}, QuantityCase{"1G", 1000000000},
    QuantityCase{"2T", 2000000000000}, QuantityCase{"3P", 3000000000000000}, QuantityCase{"1E", 1000000000000000000},
    QuantityCase{"18E", 18000000000000000000u}, QuantityCase{"1Ki", 1024}, QuantityCase{"64Mi", 64 << 20},
    QuantityCase{"1Gi", 1 << 30}, QuantityCase{"1Ti", 1ull << 40}, QuantityCase{"1Pi", 1ull << 50},
    QuantityCase{"15Ei", 15ull << 60}, QuantityCase{"1.5Gi", 1610612736}, QuantityCase{".5Ki", 512},
    QuantityCase{"1.", 1}, QuantityCase{"0.5", 1}, QuantityCase{"500m", 1}, QuantityCase{"1500m", 2},
    QuantityCase{"100n", 1}, QuantityCase{"2000000u", 2}, QuantityCase{"1e9", 1000000000},
    QuantityCase{"1E9", 1000000000}, QuantityCase{"12e+3", 12000}, QuantityCase{"1e-3", 1},
    QuantityCase{"1000e-3", 1}, QuantityCase{"1e-99999999999", 1}, QuantityCase{"0e99999999999", 0},
    QuantityCase{"18446744073709551615", kMax}, QuantityCase{"18446744073709551615000m", kMax},
    QuantityCase{"18446744073709551616", std::nullopt}, QuantityCase{"16Ei", std::nullopt},
    QuantityCase{"19E", std::nullopt}, QuantityCase{"1e20", std::nullopt}, QuantityCase{"1e99999999999", std::nullopt},
    QuantityCase{"", std::nullopt}, QuantityCase{"Mi", std::nullopt}, QuantityCase{".", std::nullopt},
    QuantityCase{"1K", std::nullopt}, QuantityCase{"1 Mi", std::nullopt}, QuantityCase{" 1", std::nullopt},
    QuantityCase{"-1", std::nullopt}, QuantityCase{"-1Gi", std::nullopt}, QuantityCase{"1.2.3", std::nullopt},
    QuantityCase{"1e", std::nullopt}, QuantityCase{"1e+", std::nullopt}, QuantityCase{"1ee3", std::nullopt},
    QuantityCase{"1Mii", std::nullopt}, QuantityCase{"1iB", std::nullopt}, QuantityCase{"0x10", std::nullopt},
    QuantityCase{"1e3Ki", std::nullopt}, QuantityCase{std::string(65, '1'), std::nullopt}));

}  // namespace
}  // namespace regdisk::vm
