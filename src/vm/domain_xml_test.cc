#include "vm/domain_xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/fs.h"
#include "util/subprocess.h"
#include "vm/testutil.h"

namespace regdisk::vm {
namespace {

using ::testing::HasSubstr;

// The last VM of a file (its other documents may be what it refers to).
VmSpec Parse(const std::string& yaml) {
  auto sets = ParseVmFiles({{"spec.yaml", yaml}});
  EXPECT_TRUE(sets.ok()) << sets.status().ToString();
  return sets.ok() ? sets->back().vm : VmSpec{};
}

// Attaches every disk as the runtime would: a container disk as an overlay
// per VM and disk over a cached base file of the given format (raw when
// formats has no entry; "nbd:FORMAT": a lazily served base on an NBD
// socket), a cloud-init volume as a raw ISO, an emptyDisk as a qcow2 of its
// own.
std::vector<AttachedDisk> Attach(const VmSpec& spec, const std::vector<std::string>& formats) {
  std::vector<AttachedDisk> out;
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    const VmDisk& d = spec.disks[i];
    std::string dir = "/var/lib/regdisk/vms/" + spec.name + "/";
    std::string format = i < formats.size() ? formats[i] : "raw";
    switch (d.volume.kind) {
      case VolumeKind::kContainerDisk:
        if (format.starts_with("nbd:")) {
          out.push_back({d, dir + d.name + ".qcow2", "qcow2", "", format.substr(4),
                         "/var/lib/regdisk/disks/" + d.name + "/nbd.sock"});
          break;
        }
        out.push_back({d, dir + d.name + ".qcow2", "qcow2", "/var/lib/regdisk/cache/disks/" + d.name + "." + format,
                       format});
        break;
      case VolumeKind::kEmptyDisk:
        out.push_back({d, dir + d.volume.name + ".qcow2", "qcow2", "", ""});
        break;
      default:
        out.push_back({d, dir + d.volume.name + ".iso", "raw", "", ""});
    }
  }
  return out;
}

// Checks the XML against libvirt's own RelaxNG schema.
void ExpectLibvirtValid(const std::string& file) {
  auto r = RunProcess({"virt-xml-validate", file, "domain"});
  if (!r.ok()) GTEST_SKIP() << "virt-xml-validate (libvirt-clients) is not installed";
  EXPECT_EQ(r->exit_code, 0) << file << ":\n" << r->out << r->err;
}

struct Golden {
  std::string name;
  std::string spec_yaml;
  std::vector<std::string> formats;
  DomainOptions options;
};

class DomainGolden : public testing::TestWithParam<Golden> {};

TEST_P(DomainGolden, MatchesAndIsValidForLibvirt) {
  const Golden& g = GetParam();
  VmSpec spec = Parse(g.spec_yaml);
  ExpectGolden(g.name + ".xml", RenderDomainXml(spec, Attach(spec, g.formats), g.options));
  ExpectLibvirtValid(TestDataPath(g.name + ".xml"));
}

DomainOptions WithLog() {
  DomainOptions o;
  o.console_log = "/var/lib/regdisk/vms/console.log";
  return o;
}

DomainOptions Kvm() {
  DomainOptions o;
  o.domain_type = "kvm";
  o.emulator = "/usr/bin/qemu-system-x86_64";
  o.cache_mode = "writethrough";
  o.uuid = "6f1c5b2e-8d0a-4c3e-9b7f-2a4d6e8f0a1c";
  o.console_log = "/var/lib/regdisk/vms/fedora-two-disks/console.log";
  return o;
}

const char* const kReadonlyData = R"(kind: VirtualMachineInstance
metadata: {name: readonly-data}
spec:
  domain:
    devices:
      disks:
      - {name: data, disk: {readonly: true}}
      - {name: root, bootOrder: 1}
  volumes:
  - {name: data, containerDisk: {image: vmdisks/data:1}}
  - {name: root, containerDisk: {image: vmdisks/cirros:0.6}}
)";

// EFI as the runtime runs it: the VM's own NVRAM copied from the template.
DomainOptions Efi(bool secure_boot, const std::string& vm) {
  DomainOptions o = WithLog();
  OvmfPaths ovmf = OvmfFiles(secure_boot);
  o.loader = ovmf.code;
  o.nvram_template = ovmf.vars_template;
  o.nvram = "/var/lib/regdisk/vms/" + vm + "/nvram.fd";
  return o;
}

INSTANTIATE_TEST_SUITE_P(Table, DomainGolden, testing::Values(
    Golden{"domain_boot_virtio", ReadTestData("seed_user_guide.yaml"), {"qcow2"}, WithLog()},
    Golden{"domain_boot_and_sata_data", ReadTestData("containerdisk_vm.yaml"), {"qcow2", "raw"}, Kvm()},
    Golden{"domain_readonly_data", kReadonlyData, {"raw", "qcow2"}, DomainOptions{}},
    Golden{"domain_cloud_init", ReadTestData("kubevirt_vm_cirros.yaml"), {"qcow2"}, WithLog()},
    Golden{"domain_auto_attached", ReadTestData("kubevirt_vmi_nocloud.yaml"), {"raw"}, WithLog()},
    Golden{"domain_masquerade", ReadTestData("kubevirt_vmi_masquerade.yaml"), {"qcow2"}, WithLog()},
    Golden{"domain_secure_boot", ReadTestData("kubevirt_vmi_secureboot.yaml"), {"raw"}, Efi(true, "secureboot-vmi")},
    Golden{"domain_devices_all", ReadTestData("devices_all.yaml"), {"raw", "qcow2", "raw", "raw"},
           Efi(false, "devices-all")},
    Golden{"domain_references", ReadTestData("with_references.yaml"), {"qcow2"}, DomainOptions{}},
    Golden{"domain_lazy", ReadTestData("containerdisk_vm.yaml"), {"nbd:qcow2", "nbd:raw"}, WithLog()}),
    [](const testing::TestParamInfo<Golden>& p) { return p.param.name; });

TEST(RenderDomainXml, EscapesEveryText) {
  VmSpec spec = Parse(ReadTestData("seed_user_guide.yaml"));
  std::vector<AttachedDisk> disks = Attach(spec, {"raw"});
  disks[0].file = "/tmp/a'b\"c&d<e>.qcow2";
  DomainOptions o;
  o.console_log = "/tmp/<log>&'";
  std::string xml = RenderDomainXml(spec, disks, o);
  EXPECT_THAT(xml, HasSubstr("<source file='/tmp/a&apos;b&quot;c&amp;d&lt;e&gt;.qcow2'/>"));
  EXPECT_THAT(xml, HasSubstr("<source path='/tmp/&lt;log&gt;&amp;&apos;'/>"));
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/d.xml", xml).ok());
  ExpectLibvirtValid(dir.path() + "/d.xml");
}

TEST(RenderDomainXml, BootOrderFollowsBootOrderThenSpecOrder) {
  VmSpec spec = Parse(R"(kind: VirtualMachineInstance
metadata: {name: vm}
spec:
  domain:
    devices: {disks: [{name: a, bootOrder: 3}, {name: b}, {name: c, bootOrder: 2}]}
  volumes: [{name: a, containerDisk: {image: i}}, {name: b, containerDisk: {image: i}},
            {name: c, containerDisk: {image: i}}]
)");
  std::string xml = RenderDomainXml(spec, Attach(spec, {"raw", "raw", "raw"}), {});
  size_t a = xml.find("<target dev='vda'"), c = xml.find("<target dev='vdc'");
  EXPECT_EQ(xml.find("<boot order='2'/>", a), xml.find("<boot order", a));
  EXPECT_EQ(xml.find("<boot order='1'/>", c), xml.find("<boot order", c));
  EXPECT_EQ(xml.find("<boot order='3'"), std::string::npos);
}

TEST(RenderDomainXml, FirstDiskBootsWithoutBootOrder) {
  VmSpec spec = Parse(ReadTestData("containerdisk_vm.yaml"));
  for (VmDisk& d : spec.disks) d.boot_order.reset();
  std::string xml = RenderDomainXml(spec, Attach(spec, {"raw", "raw"}), {});
  EXPECT_LT(xml.find("<boot order='1'/>"), xml.find("<target dev='sda'"));
  EXPECT_EQ(xml.find("<boot order='2'"), std::string::npos);
}

}  // namespace
}  // namespace regdisk::vm
