#include "vm/spec.h"

#include <algorithm>
#include <map>
#include <set>

#include "vm/bounded_yaml.h"
#include "vm/field.h"

namespace regdisk::vm {
namespace {

constexpr size_t kMaxDisks = 16;
constexpr int kMaxReplicas = 1000;
constexpr int kMaxCpus = 256;
constexpr uint64_t kMinMemory = 1ull << 20, kMaxMemory = 16ull << 40;
// Wrapper containers are named "volume-NAME" and must stay DNS labels (63).
constexpr size_t kMaxVolumeName = 63 - 7;
constexpr const char* kDesignType = "RegistryDisk:v1alpha";

std::optional<DiskBus> ParseBus(const std::string& s) {
  for (DiskBus b : {DiskBus::kVirtio, DiskBus::kSata, DiskBus::kScsi, DiskBus::kUsb, DiskBus::kIde}) {
    if (s == BusName(b)) return b;
  }
  return std::nullopt;
}

const char* TargetPrefix(DiskBus b) {
  switch (b) {
    case DiskBus::kVirtio: return "vd";
    case DiskBus::kIde: return "hd";
    default: return "sd";
  }
}

// The bus a target name implies: vdX virtio, sdX sata (or scsi), hdX ide
// (hda..hdd only: two channels of two). X is one or two letters.
std::optional<DiskBus> TargetBus(const std::string& t) {
  bool letters = t.size() >= 3 && t.size() <= 4;
  for (size_t i = 2; i < t.size(); ++i) letters = letters && t[i] >= 'a' && t[i] <= 'z';
  if (!letters) return std::nullopt;
  if (t.starts_with("vd")) return DiskBus::kVirtio;
  if (t.starts_with("sd")) return DiskBus::kSata;
  if (t.starts_with("hd") && t.size() == 3 && t[2] <= 'd') return DiskBus::kIde;
  return std::nullopt;
}

bool IsDnsLabel(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool IsDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  std::string_view rest = s;
  while (true) {
    size_t dot = rest.find('.');
    if (!IsDnsLabel(std::string(rest.substr(0, dot)), 63)) return false;
    if (dot == std::string_view::npos) return true;
    rest.remove_prefix(dot + 1);
  }
}

Status CheckName(const Field& f, const std::string& name, size_t max) {
  if (IsDnsLabel(name, max)) return OkStatus();
  return f.Error(Quoted(name) + " is not a valid name (lowercase letters, digits and '-', at most " +
                 std::to_string(max) + " characters)");
}

// Light checks only: the runtime parses references fully (oci::Reference).
Status CheckImage(const Field& f, const std::string& image) {
  bool ok = image.size() <= 1024 && image.front() != '/' && image.front() != '-';
  for (char c : image) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::string_view("._-/:@").find(c) != std::string_view::npos);
  }
  return ok ? OkStatus() : f.Error("invalid image reference " + Quoted(image));
}

// "/disk/NAME" (or deeper), with no empty, "." or ".." component and no
// control character.
Status CheckDiskPath(const Field& f, const std::string& path) {
  bool ok = path.starts_with("/disk/") && path.size() <= 4096 &&
            std::none_of(path.begin(), path.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
  std::string_view rest = std::string_view(path).substr(ok ? 6 : 0);
  while (ok) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    ok = !part.empty() && part != "." && part != "..";
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return ok ? OkStatus() : f.Error(Quoted(path) + " must be a clean absolute path under /disk/");
}

StatusOr<RegistryDiskVolume> ParseVolumeSource(const Field& src) {
  RETURN_IF_ERROR(src.NeedMap());
  RegistryDiskVolume v;
  Field image = src["image"];
  ASSIGN_OR_RETURN(v.image, image.Str(true));
  RETURN_IF_ERROR(CheckImage(image, v.image));
  ASSIGN_OR_RETURN(v.path, src["path"].Str(false));
  if (!v.path.empty()) RETURN_IF_ERROR(CheckDiskPath(src["path"], v.path));
  ASSIGN_OR_RETURN(v.pull_policy, src["imagePullPolicy"].Str(false));
  if (!v.pull_policy.empty() && v.pull_policy != "Always" && v.pull_policy != "IfNotPresent" &&
      v.pull_policy != "Never") {
    return src["imagePullPolicy"].Error(Quoted(v.pull_policy) + " is not Always, IfNotPresent or Never");
  }
  ASSIGN_OR_RETURN(v.pull_secret, src["imagePullSecret"].Str(false));
  if (!v.pull_secret.empty() && !IsDnsSubdomain(v.pull_secret)) {
    return src["imagePullSecret"].Error(Quoted(v.pull_secret) + " is not a valid secret name");
  }
  return v;
}

// Volume name -> (volume, its index) from spec.volumes.
using VolumeTable = std::map<std::string, std::pair<Volume, size_t>>;

StatusOr<VolumeTable> ParseVolumes(const Field& vols, bool* container_disk) {
  ASSIGN_OR_RETURN(size_t n, vols.SeqSize(true));
  VolumeTable table;
  for (size_t i = 0; i < n; ++i) {
    Field v = vols[i];
    RETURN_IF_ERROR(v.NeedMap());
    ASSIGN_OR_RETURN(std::string name, v["name"].Str(true));
    RETURN_IF_ERROR(CheckName(v["name"], name, kMaxVolumeName));
    if (table.count(name)) return v["name"].Error("duplicate volume " + Quoted(name));
    std::string kind;
    for (const auto& kv : v.node) {
      std::string key = kv.first.Scalar();
      if (key == "name") continue;
      if (key != "registryDisk" && key != "containerDisk") {
        return v.Error("only registryDisk and containerDisk volumes are supported");
      }
      if (!kind.empty()) return v.Error("more than one volume source");
      kind = key;
    }
    if (kind.empty()) return v.Error("only registryDisk and containerDisk volumes are supported");
    *container_disk |= kind == "containerDisk";
    Volume vol;
    vol.name = name;
    ASSIGN_OR_RETURN(vol.container, ParseVolumeSource(v[kind.c_str()]));
    vol.container.name = name;
    table[name] = {std::move(vol), i};
  }
  return table;
}

// bus/dev/readonly of a disk: `disk:` in the volume forms, `target:` in the
// design form (whose device key is `device`).
Status ParseDevice(const Field& dev_map, const char* dev_key, VmDisk* d) {
  RETURN_IF_ERROR(dev_map.NeedMap());
  Field bus_f = dev_map["bus"], dev_f = dev_map[dev_key];
  ASSIGN_OR_RETURN(std::string bus, bus_f.Str(false));
  ASSIGN_OR_RETURN(d->target, dev_f.Str(false));
  ASSIGN_OR_RETURN(d->read_only, dev_map["readonly"].Bool());
  std::optional<DiskBus> from_dev;
  if (!d->target.empty()) {
    from_dev = TargetBus(d->target);
    if (!from_dev) return dev_f.Error("invalid device " + Quoted(d->target) + " (want vdX, sdX or hdX)");
  }
  if (bus.empty()) {
    d->bus = from_dev.value_or(DiskBus::kVirtio);
  } else {
    std::optional<DiskBus> b = ParseBus(bus);
    if (!b) return bus_f.Error("unknown bus " + Quoted(bus) + " (want virtio, sata, scsi, usb or ide)");
    d->bus = *b;
    bool sd = (*b == DiskBus::kScsi || *b == DiskBus::kUsb) && from_dev == DiskBus::kSata;  // sdX serves all three
    if (from_dev && *from_dev != *b && !sd) {
      return dev_f.Error(Quoted(d->target) + " does not match bus " + bus);
    }
  }
  if (d->read_only && (d->bus == DiskBus::kSata || d->bus == DiskBus::kIde)) {
    return dev_map["readonly"].Error(std::string("not supported on bus ") + BusName(d->bus) +
                                     " (qemu refuses read-only sata/ide disks)");
  }
  return OkStatus();
}

Status ParseBootOrder(const Field& f, VmDisk* d) {
  ASSIGN_OR_RETURN(int order, f.Int(1, 1000, 0));
  if (order) d->boot_order = order;
  return OkStatus();
}

// A design-form `source:`/`target:` given as a mapping or as a one-item list.
Field Item(const Field& f) { return f.node.IsSequence() && f.node.size() == 1 ? f[size_t{0}] : f; }

Status ParseDesignDisk(const Field& f, size_t i, VmDisk* d) {
  RETURN_IF_ERROR(f.NeedMap());
  ASSIGN_OR_RETURN(std::string type, f["type"].Str(true));
  if (type != kDesignType) {
    return f["type"].Error("unknown disk type " + Quoted(type) + " (want " + kDesignType + ")");
  }
  ASSIGN_OR_RETURN(d->name, f["name"].Str(false));
  if (d->name.empty()) d->name = "disk" + std::to_string(i);
  RETURN_IF_ERROR(CheckName(f["name"], d->name, kMaxVolumeName));
  Field source = Item(f["source"]);
  RETURN_IF_ERROR(source.NeedMap());
  Field image = source["name"];
  ASSIGN_OR_RETURN(d->volume.container.image, image.Str(true));
  RETURN_IF_ERROR(CheckImage(image, d->volume.container.image));
  d->volume.name = d->volume.container.name = d->name;
  RETURN_IF_ERROR(ParseDevice(Item(f["target"]), "device", d));
  return ParseBootOrder(f["bootOrder"], d);
}

Status ParseVolumeDisk(const Field& f, VolumeTable& vols, std::map<std::string, size_t>& used,
                       size_t i, VmDisk* d) {
  RETURN_IF_ERROR(f.NeedMap());
  ASSIGN_OR_RETURN(d->name, f["name"].Str(true));
  RETURN_IF_ERROR(CheckName(f["name"], d->name, 63));
  for (const char* other : {"cdrom", "lun", "floppy"}) {
    if (f[other].exists) return f.Error(std::string("only disk devices are supported, not ") + other);
  }
  Field ref = f["volumeName"].present() ? f["volumeName"] : f["name"];
  ASSIGN_OR_RETURN(std::string vol, ref.Str(true));
  auto it = vols.find(vol);
  if (it == vols.end()) return ref.Error("no volume named " + Quoted(vol));
  if (auto [u, fresh] = used.emplace(vol, i); !fresh) {
    return ref.Error("volume " + Quoted(vol) + " is already used by disks[" + std::to_string(u->second) + "]");
  }
  d->volume = it->second.first;
  RETURN_IF_ERROR(ParseDevice(f["disk"], "dev", d));
  return ParseBootOrder(f["bootOrder"], d);
}

// Gives each disk without a target the first free name of its bus's prefix.
Status AssignTargets(const Field& disks, std::vector<VmDisk>& out) {
  std::map<std::string, size_t> taken;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].target.empty()) continue;
    if (auto [t, fresh] = taken.emplace(out[i].target, i); !fresh) {
      return disks[i].Error("target " + Quoted(out[i].target) + " is already used by disks[" +
                            std::to_string(t->second) + "]");
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].target.empty()) continue;
    for (char c = 'a'; out[i].target.empty(); ++c) {
      std::string name = TargetPrefix(out[i].bus) + std::string(1, c);
      if (!TargetBus(name)) return disks[i].Error("no free ide target (at most 4 ide disks)");
      if (taken.emplace(name, i).second) out[i].target = name;
    }
  }
  return OkStatus();
}

Status ParseDisks(const Field& spec, VmSpec* vm) {
  Field disks = spec["domain"]["devices"]["disks"];
  ASSIGN_OR_RETURN(size_t n, disks.SeqSize(true));
  if (n > kMaxDisks) return disks.Error("more than 16 disks");
  bool design = false;
  for (size_t i = 0; i < n; ++i) design |= disks[i]["type"].exists;
  vm->disks.resize(n);
  if (design) {
    if (spec["volumes"].exists) return spec["volumes"].Error("not used by RegistryDisk:v1alpha disks");
    vm->source_form = "design";
    for (size_t i = 0; i < n; ++i) RETURN_IF_ERROR(ParseDesignDisk(disks[i], i, &vm->disks[i]));
  } else {
    bool container_disk = false;
    ASSIGN_OR_RETURN(VolumeTable vols, ParseVolumes(spec["volumes"], &container_disk));
    vm->source_form = container_disk ? "containerDisk" : "v1alpha1";
    std::map<std::string, size_t> used;  // volume name -> disk index
    std::set<std::string> names;
    for (size_t i = 0; i < n; ++i) {
      RETURN_IF_ERROR(ParseVolumeDisk(disks[i], vols, used, i, &vm->disks[i]));
      if (!names.insert(vm->disks[i].name).second) {
        return disks[i]["name"].Error("duplicate disk " + Quoted(vm->disks[i].name));
      }
    }
    size_t unused = SIZE_MAX;
    for (const auto& [name, v] : vols) {
      if (!used.count(name)) unused = std::min(unused, v.second);
    }
    if (unused != SIZE_MAX) return spec["volumes"][unused].Error("not used by any disk");
  }
  return AssignTargets(disks, vm->disks);
}

Status ParseResources(const Field& domain, VmSpec* vm) {
  Field guest = domain["memory"]["guest"];
  Field mem = guest.present() ? guest : domain["resources"]["requests"]["memory"];
  if (mem.present()) {
    ASSIGN_OR_RETURN(std::string text, mem.Str(true));
    StatusOr<uint64_t> bytes = ParseQuantity(text);
    if (!bytes.ok()) return mem.Error(bytes.status().message());
    if (*bytes < kMinMemory || *bytes > kMaxMemory) return mem.Error(Quoted(text) + " is out of range (1Mi to 16Ti)");
    vm->memory_bytes = *bytes;
  }
  Field cpu = domain["cpu"];
  RETURN_IF_ERROR(cpu.NeedMap());
  ASSIGN_OR_RETURN(vm->cores, cpu["cores"].Int(1, kMaxCpus, 1));
  ASSIGN_OR_RETURN(vm->sockets, cpu["sockets"].Int(1, kMaxCpus, 1));
  ASSIGN_OR_RETURN(vm->threads, cpu["threads"].Int(1, kMaxCpus, 1));
  if (vm->cpus() > kMaxCpus) return cpu.Error("more than 256 vCPUs");
  return OkStatus();
}

// The VirtualMachineInstance spec: domain (resources, cpu, disks) and volumes.
Status ParseVmiSpec(const Field& spec, VmSpec* vm) {
  if (!spec.present()) return spec.Error("required");
  RETURN_IF_ERROR(spec.NeedMap());
  Field domain = spec["domain"];
  if (!domain.present()) return domain.Error("required");
  RETURN_IF_ERROR(domain.NeedMap());
  RETURN_IF_ERROR(ParseResources(domain, vm));
  return ParseDisks(spec, vm);
}

// A name for a design-form VM, which has no metadata: the first disk image's
// repository ("vmdisks/fedora25:latest" -> "fedora25").
std::string NameFromImage(const std::string& image) {
  std::string repo = image.substr(0, image.find('@'));
  repo = repo.substr(repo.rfind('/') + 1);
  repo = repo.substr(0, repo.find(':'));
  std::string name;
  for (char c : repo) {
    c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (ok || (!name.empty() && name.back() != '-')) name += ok ? c : '-';
  }
  name = name.substr(0, 63);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name.empty() ? "vm" : name;
}

Status ParseMetadata(const Field& md, VmSpec* vm) {
  RETURN_IF_ERROR(md.NeedMap());
  ASSIGN_OR_RETURN(vm->name, md["name"].Str(false));
  if (!vm->name.empty()) RETURN_IF_ERROR(CheckName(md["name"], vm->name, 63));
  ASSIGN_OR_RETURN(std::string ns, md["namespace"].Str(false));
  if (!ns.empty()) {
    RETURN_IF_ERROR(CheckName(md["namespace"], ns, 63));
    vm->ns = ns;
  }
  return OkStatus();
}

}  // namespace

const char* BusName(DiskBus b) {
  switch (b) {
    case DiskBus::kVirtio: return "virtio";
    case DiskBus::kSata: return "sata";
    case DiskBus::kScsi: return "scsi";
    case DiskBus::kUsb: return "usb";
    case DiskBus::kIde: return "ide";
  }
  return "virtio";
}

const char* RunStrategyName(RunStrategy r) {
  switch (r) {
    case RunStrategy::kAlways: return "Always";
    case RunStrategy::kRerunOnFailure: return "RerunOnFailure";
    case RunStrategy::kManual: return "Manual";
    case RunStrategy::kOnce: return "Once";
    case RunStrategy::kHalted: return "Halted";
  }
  return "Once";
}

StatusOr<std::vector<VmSet>> ParseVmFiles(const std::vector<SpecFile>& files) {
  std::vector<VmSet> out;
  for (const SpecFile& f : files) {
    auto set = ParseVmYaml(f.text);
    if (!set.ok()) return set.status().Annotate(f.path);
    out.push_back(std::move(*set));
  }
  if (out.empty()) return InvalidArgument("no VM in the given spec files");
  return out;
}

StatusOr<VmSet> ParseVmYaml(std::string_view yaml) {
  ASSIGN_OR_RETURN(YAML::Node doc, LoadBoundedYaml(yaml));
  if (!doc.IsMap()) return InvalidArgument("the document must be a mapping (a VirtualMachine object)");
  Field root{doc, ""};
  ASSIGN_OR_RETURN(std::string api, root["apiVersion"].Str(false));
  if (!api.empty() && !api.starts_with("kubevirt.io/")) {
    return root["apiVersion"].Error(Quoted(api) + " is not a kubevirt.io version");
  }
  ASSIGN_OR_RETURN(std::string kind, root["kind"].Str(true));
  VmSet set;
  RETURN_IF_ERROR(ParseMetadata(root["metadata"], &set.vm));
  Field spec = root["spec"];
  if (!spec.present()) return spec.Error("required");
  RETURN_IF_ERROR(spec.NeedMap());
  if (kind == "VirtualMachineReplicaSet" || kind == "VirtualMachineInstanceReplicaSet") {
    ASSIGN_OR_RETURN(set.replicas, spec["replicas"].Int(1, kMaxReplicas, 1));
    if (!spec["template"].present()) return spec["template"].Error("required");
    RETURN_IF_ERROR(ParseVmiSpec(spec["template"]["spec"], &set.vm));
  } else if (kind == "VirtualMachine" && spec["template"].present()) {
    RETURN_IF_ERROR(ParseVmiSpec(spec["template"]["spec"], &set.vm));
  } else if (kind == "VirtualMachine" || kind == "VirtualMachineInstance") {
    RETURN_IF_ERROR(ParseVmiSpec(spec, &set.vm));
  } else {
    return root["kind"].Error(Quoted(kind) + " is not VirtualMachine, VirtualMachineInstance or a replica set");
  }
  if (set.vm.name.empty()) {
    if (set.vm.source_form != "design") return root["metadata"]["name"].Error("required");
    set.vm.name = NameFromImage(set.vm.disks[0].volume.container.image);
  }
  set.vm.hostname = set.vm.name;
  // Replicas are named NAME-i, which must stay a DNS label.
  size_t suffix = set.replicas > 1 ? 1 + std::to_string(set.replicas - 1).size() : 0;
  if (set.vm.name.size() + suffix > 63) {
    return root["metadata"]["name"].Error("too long for the names of " + std::to_string(set.replicas) + " replicas");
  }
  return set;
}

}  // namespace regdisk::vm
