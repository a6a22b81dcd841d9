// The libvirt domain XML for a VM whose disks are registry disks attached
// as per-VM qcow2 overlays (the handler role).
#pragma once

#include <string>
#include <vector>

#include "vm/spec.h"

namespace regdisk::vm {

struct AttachedDisk {
  VmDisk disk;                  // from the spec
  std::string file;             // what the guest sees: a container disk's overlay,
                                // the cloud-init ISO, the emptyDisk qcow2
  std::string file_format = "qcow2";  // "qcow2" (overlay, emptyDisk) or "raw" (ISO)
  std::string base_file;        // backing file: only for container-disk overlays ("" otherwise)
  std::string base_format;      // "raw" or "qcow2" when base_file is set
};

struct DomainOptions {
  std::string domain_type = "qemu";   // "qemu" (TCG) or "kvm"
  std::string emulator;               // empty: libvirt's default
  std::string console_log;            // serial console written to this file
  std::string cache_mode = "none";    // "none" when O_DIRECT works, else "writethrough"
  std::string uuid;                   // empty: firmware.uuid, else let libvirt choose
  std::string loader;                 // EFI code file (OvmfFiles().code), "" for BIOS
  std::string nvram;                  // the VM's own vars file (a copy of the template)
  std::string nvram_template;         // OvmfFiles().vars_template
};

// Debian's OVMF builds (package ovmf), 4 MiB flash layout.
struct OvmfPaths {
  std::string code;                   // OVMF_CODE_4M.fd, or OVMF_CODE_4M.secboot.fd
  std::string vars_template;          // OVMF_VARS_4M.fd, or OVMF_VARS_4M.ms.fd (Microsoft keys enrolled)
};
OvmfPaths OvmfFiles(bool secure_boot);

// Renders the domain: name, memory, vcpus, os hvm with boot from the disk
// with the lowest bootOrder (else the first), <features><acpi/></features>,
// each disk as <disk type='file' device='disk'> with <driver name='qemu'
// type='qcow2' cache=.. error_policy='stop' discard='unmap'/>, <source
// file=overlay/>, <backingStore type='file'><format type=base_format/>
// <source file=base/></backingStore>, <target dev bus/>, <readonly/> if
// asked; a serial console to console_log (and a <console> on it); no
// graphics; on_poweroff destroy, on_reboot restart, on_crash destroy. All
// text XML-escaped. Deterministic (golden-file tested).
std::string RenderDomainXml(const VmSpec& spec, const std::vector<AttachedDisk>& disks, const DomainOptions& o);

}  // namespace regdisk::vm
