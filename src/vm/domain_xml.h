// The libvirt domain XML for a VM (the handler role): registry disks as
// per-VM qcow2 overlays, cloud-init ISOs, emptyDisk qcow2s, firmware,
// devices and interfaces as the VmSpec says.
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
  std::string base_format;      // "raw" or "qcow2" when base_file or base_nbd_socket is set
  // A lazily served base instead of base_file: the NBD export on this unix
  // socket (the node cache's lazy entry).
  std::string base_nbd_socket;
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

// Renders the domain (golden-file tested, deterministic, all text
// XML-escaped):
//  - name, uuid (options, else firmware.uuid), memory, vcpu, and a <cpu>
//    <topology> when there is more than one vCPU; firmware.serial as an
//    SMBIOS system serial (<sysinfo>, <smbios mode='sysinfo'/>);
//  - <os>: machine q35 when the spec says so (EFI and SMM imply it); for
//    EFI a read-only pflash <loader secure=yes|no> (options.loader, else
//    OvmfFiles(secure_boot).code) and <nvram template=..> (options.nvram
//    and nvram_template, else the OvmfFiles template and no path);
//  - <features>: acpi (unless off), apic, smm;
//  - on_poweroff / on_reboot / on_crash from the run strategy: Always
//    restarts after a power-off and a crash, RerunOnFailure after a crash
//    only, Once / Manual / Halted never (a guest reboot is a reboot);
//  - each disk: <disk type='file' device='disk'|'cdrom'> with <driver
//    name='qemu' type=file_format cache=.. error_policy='stop'> (and
//    discard='unmap' for writable disks), <source file>, a <backingStore>
//    when base_file is set; for base_nbd_socket a <backingStore
//    type='network'> (protocol nbd, unix socket, the chain ends there) and
//    rerror_policy='stop' too, so a failed lazy read pauses the VM; <target dev bus>, <serial>, <boot order> for
//    the disk with the lowest bootOrder (else the first) and the others
//    with one, <readonly/>; a virtio-scsi controller when a disk is on scsi;
//  - each interface: user-mode (<interface type='user'>) or a libvirt
//    network (<interface type='network'><source network=..>), with <mac>
//    and <model>; a virtio <rng> from /dev/urandom when asked;
//  - a serial console to console_log (a pty without one) and a <console>
//    on it; no graphics.
std::string RenderDomainXml(const VmSpec& spec, const std::vector<AttachedDisk>& disks, const DomainOptions& o);

// The on_poweroff, on_reboot and on_crash actions of a run strategy.
struct Lifecycle {
  const char* poweroff;
  const char* reboot;
  const char* crash;
};
Lifecycle LifecycleFor(RunStrategy r);

}  // namespace regdisk::vm
