#include "vm/domain_xml.h"

#include <algorithm>
#include <numeric>

namespace regdisk::vm {
namespace {

// Escapes text for element content and for attributes in either quote.
std::string Esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Boot order per disk: 1 for the disk with the lowest bootOrder (the first
// disk when none has one), then the other disks that have a bootOrder, in
// ascending order (ties in spec order). 0: not bootable.
std::vector<int> BootOrders(const std::vector<AttachedDisk>& disks) {
  std::vector<size_t> idx(disks.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::erase_if(idx, [&](size_t i) { return !disks[i].disk.boot_order; });
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return *disks[a].disk.boot_order < *disks[b].disk.boot_order;
  });
  if (idx.empty() && !disks.empty()) idx.push_back(0);
  std::vector<int> order(disks.size(), 0);
  for (size_t k = 0; k < idx.size(); ++k) order[idx[k]] = static_cast<int>(k + 1);
  return order;
}

void RenderDisk(const AttachedDisk& a, int boot, const DomainOptions& o, std::string& x) {
  const VmDisk& d = a.disk;
  bool cdrom = d.device == DeviceKind::kCdrom;
  x += std::string("    <disk type='file' device='") + (cdrom ? "cdrom" : "disk") + "'>\n";
  x += "      <driver name='qemu' type='" + Esc(a.file_format) + "' cache='" + Esc(o.cache_mode) +
       "' error_policy='stop'" + (a.base_nbd_socket.empty() ? "" : " rerror_policy='stop'") +
       (d.read_only ? "" : " discard='unmap'") + "/>\n";
  x += "      <source file='" + Esc(a.file) + "'/>\n";
  if (!a.base_file.empty()) {
    x += "      <backingStore type='file'>\n";
    x += "        <format type='" + Esc(a.base_format) + "'/>\n";
    x += "        <source file='" + Esc(a.base_file) + "'/>\n";
    x += "      </backingStore>\n";
  }
  if (!a.base_nbd_socket.empty()) {
    x += "      <backingStore type='network'>\n";
    x += "        <format type='" + Esc(a.base_format) + "'/>\n";
    x += "        <source protocol='nbd'>\n";
    x += "          <host transport='unix' socket='" + Esc(a.base_nbd_socket) + "'/>\n";
    x += "        </source>\n";
    x += "        <backingStore/>\n";
    x += "      </backingStore>\n";
  }
  x += "      <target dev='" + Esc(d.target) + "' bus='" + BusName(d.bus) + "'/>\n";
  if (!d.serial.empty()) x += "      <serial>" + Esc(d.serial) + "</serial>\n";
  if (boot) x += "      <boot order='" + std::to_string(boot) + "'/>\n";
  if (d.read_only) x += "      <readonly/>\n";
  x += "    </disk>\n";
}

void RenderInterface(const Interface& i, std::string& x) {
  if (i.kind == InterfaceKind::kBridge) {
    x += "    <interface type='network'>\n";
    x += "      <source network='" + Esc(i.network) + "'/>\n";
  } else {
    x += "    <interface type='user'>\n";
  }
  if (!i.mac.empty()) x += "      <mac address='" + Esc(i.mac) + "'/>\n";
  x += "      <model type='" + Esc(i.model) + "'/>\n";
  x += "    </interface>\n";
}

// The serial port goes to the log file (a pty when there is none); the
// console is the same port. No graphics: libvirt then adds no display.
void RenderConsole(const DomainOptions& o, std::string& x) {
  if (o.console_log.empty()) {
    x += "    <serial type='pty'>\n";
  } else {
    x += "    <serial type='file'>\n";
    x += "      <source path='" + Esc(o.console_log) + "'/>\n";
  }
  x += "      <target port='0'/>\n";
  x += "    </serial>\n";
  x += "    <console type='" + std::string(o.console_log.empty() ? "pty" : "file") + "'>\n";
  if (!o.console_log.empty()) x += "      <source path='" + Esc(o.console_log) + "'/>\n";
  x += "      <target type='serial' port='0'/>\n";
  x += "    </console>\n";
}

void RenderOs(const VmSpec& spec, const DomainOptions& o, std::string& x) {
  x += "  <os>\n";
  if (spec.machine.empty()) {
    x += "    <type>hvm</type>\n";
  } else {
    x += "    <type arch='x86_64' machine='" + Esc(spec.machine) + "'>hvm</type>\n";
  }
  if (spec.firmware == Firmware::kEfi) {
    OvmfPaths ovmf = OvmfFiles(spec.secure_boot);
    std::string code = o.loader.empty() ? ovmf.code : o.loader;
    std::string vars = o.nvram_template.empty() ? ovmf.vars_template : o.nvram_template;
    x += std::string("    <loader readonly='yes' secure='") + (spec.secure_boot ? "yes" : "no") +
         "' type='pflash'>" + Esc(code) + "</loader>\n";
    if (o.nvram.empty()) {
      x += "    <nvram template='" + Esc(vars) + "'/>\n";
    } else {
      x += "    <nvram template='" + Esc(vars) + "'>" + Esc(o.nvram) + "</nvram>\n";
    }
  }
  if (!spec.serial.empty()) x += "    <smbios mode='sysinfo'/>\n";
  x += "  </os>\n";
}

void RenderFeatures(const VmSpec& spec, std::string& x) {
  x += "  <features>\n";
  if (spec.acpi) x += "    <acpi/>\n";
  if (spec.apic) x += "    <apic/>\n";
  if (spec.smm) x += "    <smm state='on'/>\n";
  x += "  </features>\n";
}

}  // namespace

OvmfPaths OvmfFiles(bool secure_boot) {
  if (secure_boot) return {"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"};
  return {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"};
}

Lifecycle LifecycleFor(RunStrategy r) {
  switch (r) {
    case RunStrategy::kAlways: return {"restart", "restart", "restart"};
    case RunStrategy::kRerunOnFailure: return {"destroy", "restart", "restart"};
    default: return {"destroy", "restart", "destroy"};
  }
}

std::string RenderDomainXml(const VmSpec& spec, const std::vector<AttachedDisk>& disks,
                            const DomainOptions& o) {
  std::string x = "<domain type='" + Esc(o.domain_type) + "'>\n";
  x += "  <name>" + Esc(spec.name) + "</name>\n";
  std::string uuid = o.uuid.empty() ? spec.uuid : o.uuid;
  if (!uuid.empty()) x += "  <uuid>" + Esc(uuid) + "</uuid>\n";
  x += "  <memory unit='KiB'>" + std::to_string((spec.memory_bytes + 1023) / 1024) + "</memory>\n";
  x += "  <vcpu>" + std::to_string(spec.cpus()) + "</vcpu>\n";
  if (!spec.serial.empty()) {
    x += "  <sysinfo type='smbios'>\n    <system>\n";
    x += "      <entry name='serial'>" + Esc(spec.serial) + "</entry>\n";
    x += "    </system>\n  </sysinfo>\n";
  }
  RenderOs(spec, o, x);
  RenderFeatures(spec, x);
  if (spec.cpus() > 1) {
    x += "  <cpu>\n    <topology sockets='" + std::to_string(spec.sockets) + "' cores='" +
         std::to_string(spec.cores) + "' threads='" + std::to_string(spec.threads) + "'/>\n  </cpu>\n";
  }
  Lifecycle life = LifecycleFor(spec.run_strategy);
  x += std::string("  <on_poweroff>") + life.poweroff + "</on_poweroff>\n";
  x += std::string("  <on_reboot>") + life.reboot + "</on_reboot>\n";
  x += std::string("  <on_crash>") + life.crash + "</on_crash>\n";
  x += "  <devices>\n";
  if (!o.emulator.empty()) x += "    <emulator>" + Esc(o.emulator) + "</emulator>\n";
  std::vector<int> boot = BootOrders(disks);
  for (size_t i = 0; i < disks.size(); ++i) RenderDisk(disks[i], boot[i], o, x);
  if (std::any_of(disks.begin(), disks.end(), [](const AttachedDisk& a) { return a.disk.bus == DiskBus::kScsi; })) {
    x += "    <controller type='scsi' index='0' model='virtio-scsi'/>\n";
  }
  for (const Interface& i : spec.interfaces) RenderInterface(i, x);
  if (spec.rng) {
    x += "    <rng model='virtio'>\n      <backend model='random'>/dev/urandom</backend>\n    </rng>\n";
  }
  RenderConsole(o, x);
  x += "  </devices>\n";
  x += "</domain>\n";
  return x;
}

}  // namespace regdisk::vm
