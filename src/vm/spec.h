// VirtualMachine specs as users write them, in the three forms regdisk
// accepts (see ../shared/guide/domain.md):
//  1. the design's:  spec.domain.devices.disks[] {type: RegistryDisk:v1alpha,
//                    source: {name: IMAGE}, target: {device: sda}}
//     (the seed writes `- source:` / `- target:` as list items; accept both
//     that and plain mappings)
//  2. the user guide's: apiVersion kubevirt.io/v1alpha1, kind VirtualMachine,
//                    spec.domain.devices.disks[] {name, volumeName, disk: {dev}}
//                    and spec.volumes[] {name, registryDisk: {image}}
//  3. modern KubeVirt: spec.domain.devices.disks[] {name, disk: {bus}} and
//                    spec.volumes[] {name, containerDisk: {image, path,
//                    imagePullPolicy, imagePullSecret}}; also the
//                    VirtualMachine {spec: {template: {spec: ...}}} nesting.
// plus a replica set: kind VirtualMachineReplicaSet (or
// VirtualMachineInstanceReplicaSet) with spec.replicas and spec.template.
// Everything is normalised into VmSpec. Errors name the field path, e.g.
// `spec.volumes[1].registryDisk.image: required`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace regdisk::vm {

enum class DiskBus { kVirtio, kSata, kScsi, kIde };
const char* BusName(DiskBus b);  // "virtio", "sata", "scsi", "ide"

struct RegistryDiskVolume {
  std::string image;            // reference as written
  std::string path;             // "/disk/NAME" or empty (the only file)
  std::string pull_policy;      // "", "Always", "IfNotPresent", "Never"
  std::string pull_secret;      // name of a secret, or empty
  std::string name;             // spec.volumes[].name (the disk name in form 1)
};

struct VmDisk {
  std::string name;             // disk name (volume name in form 1)
  std::string target;           // "vda", "sda", ... (derived if unset)
  DiskBus bus = DiskBus::kVirtio;
  bool read_only = false;
  std::optional<int> boot_order;
  RegistryDiskVolume volume;    // only registry-backed disks are supported
};

struct VmSpec {
  std::string name;             // metadata.name (required; DNS-1123 label rules)
  std::string ns = "default";   // metadata.namespace
  uint64_t memory_bytes = 128ull << 20;  // resources.requests.memory or domain.memory.guest
  int cpus = 1;                 // domain.cpu.cores * sockets * threads
  std::vector<VmDisk> disks;    // in spec order; the first is the boot disk unless bootOrder says
  std::string source_form;      // "design", "v1alpha1", "containerDisk"
};

struct VmSet {
  int replicas = 1;             // 1 for a plain VM
  VmSpec vm;                    // the template; replica i is named NAME-i
};

// Parses a YAML document (one object). Limits: 1 MiB of text, 16 disks,
// nesting 64 deep, 100000 nodes; anchors, aliases, duplicate keys and
// control characters are refused before yaml-cpp builds anything. Unknown
// fields are ignored, as Kubernetes does. The design form has no metadata:
// its name defaults to the first disk image's repository ("fedora25").
// Errors are kInvalidArgument with the field path first.
StatusOr<VmSet> ParseVmYaml(std::string_view yaml);

// Kubernetes quantities: "64M", "64Mi", "1G", "1Gi", "512", "1e9", "1.5Gi",
// rounded up to whole bytes. Negative values and overflow are errors.
StatusOr<uint64_t> ParseQuantity(std::string_view q);

}  // namespace regdisk::vm
