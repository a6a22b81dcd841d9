// VirtualMachine specs as users write them, normalised into VmSpec. Forms:
//  1. the design's:  spec.domain.devices.disks[] {type: RegistryDisk:v1alpha,
//                    source: {name: IMAGE}, target: {device: sda}}
//     (the seed writes `- source:` / `- target:` as list items; accept both
//     that and plain mappings)
//  2. the user guide's: apiVersion kubevirt.io/v1alpha1, kind VirtualMachine,
//                    spec.domain.devices.disks[] {name, volumeName, disk: {dev}}
//                    and spec.volumes[] {name, registryDisk: {image}}
//  3. KubeVirt's kubevirt.io/v1 layout: VirtualMachine {spec: {running |
//                    runStrategy, template: {metadata, spec: VMI spec}}},
//                    VirtualMachineInstance, the replica sets, with
//                    containerDisk / cloudInitNoCloud / cloudInitConfigDrive /
//                    emptyDisk volumes, instancetypes and preferences.
// Every field is either used, accepted with a documented meaning, or refused
// with its path and the reason (README "Supported VM spec fields"). Errors
// are kInvalidArgument and start with the field path, e.g.
// `spec.volumes[1].persistentVolumeClaim: not supported: ...`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace regdisk::vm {

enum class DiskBus { kVirtio, kSata, kScsi, kUsb, kIde };  // ide only via legacy hdX targets
const char* BusName(DiskBus b);  // "virtio", "sata", "scsi", "usb", "ide"

enum class DeviceKind { kDisk, kCdrom };
enum class VolumeKind { kContainerDisk, kCloudInitNoCloud, kCloudInitConfigDrive, kEmptyDisk };

// containerDisk / registryDisk / the design form's source.
struct RegistryDiskVolume {
  std::string image;            // reference as written
  std::string path;             // clean absolute path to a regular file in the image,
                                // or "" (the one file under /disk)
  std::string pull_policy;      // "", "Always", "IfNotPresent", "Never"
  std::string pull_secret;      // name of a secret, or empty
  std::string name;             // spec.volumes[].name (the disk name in form 1)
};

// Already decoded (the base64 forms) and resolved (the secretRef forms).
struct CloudInitData {
  std::string user_data;
  std::optional<std::string> network_data;
};

struct Volume {
  std::string name;
  VolumeKind kind = VolumeKind::kContainerDisk;
  RegistryDiskVolume container;   // kContainerDisk
  CloudInitData cloud_init;       // kCloudInitNoCloud, kCloudInitConfigDrive
  uint64_t capacity = 0;          // kEmptyDisk, bytes
};

struct VmDisk {
  std::string name;               // disk name (= volume name when auto-attached)
  std::string target;             // "vda", "sda", ... assigned by the parser
  DiskBus bus = DiskBus::kVirtio;
  DeviceKind device = DeviceKind::kDisk;
  bool read_only = false;         // always true for a cdrom
  std::optional<int> boot_order;
  std::string serial;
  Volume volume;
};

enum class Firmware { kBios, kEfi };
enum class InterfaceKind { kUser /* masquerade, slirp */, kBridge };

struct Interface {
  std::string name;
  InterfaceKind kind = InterfaceKind::kUser;
  std::string network;            // libvirt network for kBridge ("default" unless named)
  std::string mac;                // "" : libvirt chooses
  std::string model = "virtio";
};

// KubeVirt's run strategies. A VirtualMachineInstance (and a legacy
// kubevirt.io/v1alpha1 `kind: VirtualMachine`, which is today's VMI) runs
// once; a VirtualMachine's comes from runStrategy or running.
enum class RunStrategy { kAlways, kRerunOnFailure, kManual, kOnce, kHalted };
const char* RunStrategyName(RunStrategy r);  // "Always", ..., "Halted"

struct VmSpec {
  std::string name;               // metadata.name (DNS-1123 label)
  std::string ns = "default";     // metadata.namespace
  std::string hostname;           // spec.hostname, else name (cloud-init local-hostname)
  std::map<std::string, std::string> labels;  // template labels, for the Pod
  uint64_t memory_bytes = 128ull << 20;       // memory.guest, else the memory request/limit
  int cores = 1, sockets = 1, threads = 1;
  int cpus() const { return cores * sockets * threads; }
  // resources.requests / limits as written (Kubernetes quantities), for the Pod
  std::string cpu_request, cpu_limit, memory_request, memory_limit;
  Firmware firmware = Firmware::kBios;
  bool secure_boot = false, smm = false;
  std::string uuid, serial;       // firmware.uuid, firmware.serial
  std::string machine;            // "" (libvirt's default) or "q35"
  bool rng = false;               // devices.rng: a virtio-rng device
  bool acpi = true, apic = false; // features.acpi (on unless enabled: false), features.apic
  std::vector<Interface> interfaces;
  RunStrategy run_strategy = RunStrategy::kOnce;  // a VMI runs once
  std::vector<VmDisk> disks;      // every volume, attached (auto-attached ones as virtio disks)
  std::string source_form;        // "design", "v1alpha1", "containerDisk"
};

struct VmSet {
  int replicas = 1;               // 1 for a plain VM
  VmSpec vm;                      // the template; replica i is named NAME-i
};
// The name of replica `i` of `set`: NAME for a single VM, NAME-i in a set
// of more (the names run, render and the node cache use).
std::string ReplicaName(const VmSet& set, int i);

// One file of YAML documents; `path` names it in errors.
struct SpecFile {
  std::string path;
  std::string text;
};

// Several YAML documents ("---") from several files: VMs, VMIs and replica
// sets, plus the instancetypes, preferences and Secrets (for cloud-init
// secretRef / networkDataSecretRef) they refer to, given alongside. Each VM
// kind gives one VmSet, in file and document order; at least one is
// required. An error names the file and document: "vm.yaml (document 2):
// spec.template.spec.volumes[1]...".
StatusOr<std::vector<VmSet>> ParseVmFiles(const std::vector<SpecFile>& files);

// One document holding one VM kind, with no references to other objects.
StatusOr<VmSet> ParseVmYaml(std::string_view yaml);

// Kubernetes quantities: "64M", "64Mi", "1G", "1Gi", "512", "1e9", "1.5Gi",
// rounded up to whole bytes. Negative values and overflow are errors.
StatusOr<uint64_t> ParseQuantity(std::string_view q);

}  // namespace regdisk::vm
