// Internal to the spec parser (spec*.cc): the strict key walk, the named
// limits, the shared checks (which the renderers use too), and the parts of
// a VMI spec each file parses.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vm/field.h"
#include "vm/spec.h"

namespace regdisk::vm::internal {

// Counts of what one VM may hold. KubeVirt has no tighter limits; these keep
// a hostile spec from making the runtime create files or devices by the
// thousand.
constexpr size_t kMaxDisks = 16;        // disks and volumes each; a VM with more is not a "registry disk" VM
constexpr size_t kMaxInterfaces = 8;    // virtio-net devices; KubeVirt's own examples use at most 3
constexpr int kMaxReplicas = 1000;      // one node cannot run more
constexpr int kMaxCpus = 256;           // qemu's default maximum for q35/pc on x86
constexpr uint64_t kMinMemory = 1ull << 20, kMaxMemory = 16ull << 40;
// Inline cloud-init data: KubeVirt's webhook caps userData and networkData
// at 2048 bytes each (cloudInitUserMaxLen / cloudInitNetworkMaxLen) and
// points to the secretRef forms for more.
constexpr size_t kMaxInlineCloudInit = 2048;
// An emptyDisk is a sparse qcow2 on the node: 1 TiB leaves room for real
// scratch disks while refusing a capacity that is a typo.
constexpr uint64_t kMaxEmptyDisk = 1ull << 40;
// Wrapper containers are named "volume-NAME" and must stay DNS labels (63).
constexpr size_t kMaxVolumeName = 63 - 7;
// qemu passes a disk serial to the guest as the virtio-blk ID, 20 bytes.
constexpr size_t kMaxDiskSerial = 20;
// KubeVirt's maxStrLen for free-text fields such as firmware.serial.
constexpr size_t kMaxStr = 256;

// Reasons shared by the refusals of the VM spec and of instancetypes.
constexpr const char* kNoTuning = "regdisk does not pin or tune host resources";
constexpr const char* kDefaultCpuModel = "regdisk uses the hypervisor's default CPU model";

// What a key of a mapping means to regdisk: used by the parser, accepted
// (its meaning is documented in the README and it changes nothing on one
// node), or refused with a reason.
enum class Rule { kUse, kAccept, kRefuse };
struct Key {
  const char* name;
  Rule rule;
  const char* reason = "";
};
inline Key Use(const char* n) { return {n, Rule::kUse}; }
inline Key Accept(const char* n) { return {n, Rule::kAccept}; }
inline Key Refuse(const char* n, const char* why) { return {n, Rule::kRefuse, why}; }

// Every key of `f` (a mapping, or absent) must be listed: a refused key
// gives "PATH.KEY: not supported: REASON", an unlisted one "PATH.KEY:
// unknown field". Keys are checked in document order.
Status CheckKeys(const Field& f, std::initializer_list<Key> keys);

std::optional<DiskBus> ParseBus(const std::string& s);  // a BusName()
bool IsDnsLabel(const std::string& s, size_t max);
// Light checks only (characters, length): the runtime parses references
// fully (oci::Reference).
bool IsImageReference(const std::string& image);
bool IsDnsSubdomain(const std::string& s);
Status CheckName(const Field& f, const std::string& name, size_t max);
Status CheckImage(const Field& f, const std::string& image);
// A Kubernetes quantity in [lo, hi] bytes (the message names the range).
StatusOr<uint64_t> Bytes(const Field& f, uint64_t lo, uint64_t hi, const char* range);

// Defaults a preference (VirtualMachinePreference) sets for what the VM
// leaves unset.
struct Preferences {
  std::optional<DiskBus> disk_bus, cdrom_bus;
  std::optional<std::string> interface_model;
  std::optional<bool> rng, smm, efi, secure_boot;
  std::optional<std::string> machine;
  std::string cpu_topology = "preferSockets";  // how an instancetype's cpu.guest is laid out
};

// What an instancetype (VirtualMachineInstancetype) sets; the VM must not.
struct Instancetype {
  std::string ref;              // "kind/name", for errors
  int cpus = 0;                 // spec.cpu.guest
  uint64_t memory = 0;          // spec.memory.guest
};

// Objects given alongside the VMs: Secrets by "namespace/name" (their data,
// decoded), instancetypes and preferences by "Kind/namespace/name" (cluster
// kinds with namespace "").
struct References {
  std::map<std::string, std::map<std::string, std::string>> secrets;
  std::map<std::string, Field> instancetypes, preferences;
};

// Parses an instancetype or preference object (spec) into its model.
StatusOr<Instancetype> ParseInstancetype(const Field& spec);
StatusOr<Preferences> ParsePreference(const Field& spec);
// Finds spec.instancetype / spec.preference of a VirtualMachine among the
// references (KubeVirt's default kinds are the cluster-wide ones).
StatusOr<std::optional<Instancetype>> ResolveInstancetype(const Field& matcher, const std::string& ns,
                                                          const References& refs);
StatusOr<Preferences> ResolvePreference(const Field& matcher, const std::string& ns, const References& refs);
// Files a Secret (its data decoded), an instancetype or a preference (checked
// now, so that a bad one is an error even when unused) among the references.
Status AddSecret(const Field& root, const std::string& name, const std::string& ns, References* refs);
Status AddReference(const Field& root, const std::string& kind, const std::string& name, const std::string& ns,
                    References* refs);

// Everything a VMI spec is parsed with.
struct Context {
  const References* refs = nullptr;        // never null
  std::string ns;                           // the VM's namespace (Secrets are looked up there)
  Preferences prefs;
  std::optional<Instancetype> instancetype;
  std::string bridge_network = "default";   // annotation regdisk.io/bridge-network
};

// The pieces of a VMI spec (spec_volumes.cc, spec_disks.cc, spec_domain.cc,
// spec_network.cc).
using VolumeTable = std::map<std::string, std::pair<Volume, size_t>>;  // name -> (volume, index)
StatusOr<VolumeTable> ParseVolumes(const Field& vols, const Context& ctx, VmSpec* vm);
Status ParseDisks(const Field& spec, const VolumeTable& vols, const Context& ctx, VmSpec* vm);
Status ParseDomain(const Field& domain, const Context& ctx, VmSpec* vm);
Status ParseNetworks(const Field& spec, const Context& ctx, VmSpec* vm);

}  // namespace regdisk::vm::internal
