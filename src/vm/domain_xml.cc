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
  x += "    <disk type='file' device='disk'>\n";
  x += "      <driver name='qemu' type='" + Esc(a.file_format) + "' cache='" + Esc(o.cache_mode) +
       "' error_policy='stop' discard='unmap'/>\n";
  x += "      <source file='" + Esc(a.file) + "'/>\n";
  if (!a.base_file.empty()) {
    x += "      <backingStore type='file'>\n";
    x += "        <format type='" + Esc(a.base_format) + "'/>\n";
    x += "        <source file='" + Esc(a.base_file) + "'/>\n";
    x += "      </backingStore>\n";
  }
  x += "      <target dev='" + Esc(a.disk.target) + "' bus='" + BusName(a.disk.bus) + "'/>\n";
  if (boot) x += "      <boot order='" + std::to_string(boot) + "'/>\n";
  if (a.disk.read_only) x += "      <readonly/>\n";
  x += "    </disk>\n";
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

}  // namespace

OvmfPaths OvmfFiles(bool secure_boot) {
  if (secure_boot) return {"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"};
  return {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"};
}

std::string RenderDomainXml(const VmSpec& spec, const std::vector<AttachedDisk>& disks,
                            const DomainOptions& o) {
  std::string x = "<domain type='" + Esc(o.domain_type) + "'>\n";
  x += "  <name>" + Esc(spec.name) + "</name>\n";
  if (!o.uuid.empty()) x += "  <uuid>" + Esc(o.uuid) + "</uuid>\n";
  x += "  <memory unit='KiB'>" + std::to_string((spec.memory_bytes + 1023) / 1024) + "</memory>\n";
  x += "  <vcpu>" + std::to_string(spec.cpus()) + "</vcpu>\n";
  x += "  <os>\n    <type>hvm</type>\n  </os>\n";
  x += "  <features>\n    <acpi/>\n  </features>\n";
  x += "  <on_poweroff>destroy</on_poweroff>\n";
  x += "  <on_reboot>restart</on_reboot>\n";
  x += "  <on_crash>destroy</on_crash>\n";
  x += "  <devices>\n";
  if (!o.emulator.empty()) x += "    <emulator>" + Esc(o.emulator) + "</emulator>\n";
  std::vector<int> boot = BootOrders(disks);
  for (size_t i = 0; i < disks.size(); ++i) RenderDisk(disks[i], boot[i], o, x);
  RenderConsole(o, x);
  x += "  </devices>\n";
  x += "</domain>\n";
  return x;
}

}  // namespace regdisk::vm
