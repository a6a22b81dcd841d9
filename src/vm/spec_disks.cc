// spec.domain.devices.disks[]: disk and cdrom devices on the virtio, sata,
// scsi, usb (and legacy ide) buses, in the volume forms and in the design's
// RegistryDisk:v1alpha form; volumes no disk names are attached as disks on
// the default bus, as KubeVirt does. Targets (vda, sda, hda) are assigned
// here.
#include <algorithm>
#include <cctype>
#include <set>

#include "vm/spec_internal.h"

namespace regdisk::vm::internal {
namespace {

constexpr const char* kDesignType = "RegistryDisk:v1alpha";

const char* TargetPrefix(DiskBus b) {
  switch (b) {
    case DiskBus::kVirtio: return "vd";
    case DiskBus::kIde: return "hd";
    default: return "sd";
  }
}

// The bus a target name implies: vdX virtio, sdX sata (or scsi, usb), hdX
// ide (hda..hdd only: two channels of two). X is one or two letters.
std::optional<DiskBus> TargetBus(const std::string& t) {
  bool letters = t.size() >= 3 && t.size() <= 4;
  for (size_t i = 2; i < t.size(); ++i) letters = letters && t[i] >= 'a' && t[i] <= 'z';
  if (!letters) return std::nullopt;
  if (t.starts_with("vd")) return DiskBus::kVirtio;
  if (t.starts_with("sd")) return DiskBus::kSata;
  if (t.starts_with("hd") && t.size() == 3 && t[2] <= 'd') return DiskBus::kIde;
  return std::nullopt;
}

// bus/dev/readonly of a device: `disk:`/`cdrom:` in the volume forms,
// `target:` in the design form (whose device key is `device`).
Status ParseDevice(const Field& dev_map, const char* dev_key, DiskBus default_bus, VmDisk* d) {
  RETURN_IF_ERROR(dev_map.NeedMap());
  bool cdrom = d->device == DeviceKind::kCdrom;
  Key pci = Refuse("pciAddress", "regdisk lets libvirt place devices");
  if (cdrom) {
    RETURN_IF_ERROR(CheckKeys(dev_map, {Use("bus"), Use("readonly"), Use("tray"), pci}));
  } else {
    RETURN_IF_ERROR(CheckKeys(dev_map, {Use("bus"), Use("readonly"), Use(dev_key), pci}));
  }
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
    d->bus = from_dev.value_or(default_bus);
  } else {
    std::optional<DiskBus> b = ParseBus(bus);
    if (!b) return bus_f.Error("unknown bus " + Quoted(bus) + " (want virtio, sata, scsi, usb or ide)");
    d->bus = *b;
    bool sd = (*b == DiskBus::kScsi || *b == DiskBus::kUsb) && from_dev == DiskBus::kSata;  // sdX serves all three
    if (from_dev && *from_dev != *b && !sd) {
      return dev_f.Error(Quoted(d->target) + " does not match bus " + bus);
    }
  }
  if (cdrom) {
    if (dev_map["readonly"].present() && !d->read_only) return dev_map["readonly"].Error("a cdrom is read-only");
    d->read_only = true;
    ASSIGN_OR_RETURN(std::string tray, dev_map["tray"].Str(false));
    if (!tray.empty() && tray != "closed") return dev_map["tray"].Error("only a closed tray is supported");
    if (d->bus != DiskBus::kSata && d->bus != DiskBus::kScsi) {
      return (bus_f.present() ? bus_f : dev_map).Error(std::string("a cdrom must be on bus sata or scsi, not ") +
                                                       BusName(d->bus));
    }
  } else if (d->read_only && (d->bus == DiskBus::kSata || d->bus == DiskBus::kIde)) {
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
  RETURN_IF_ERROR(CheckKeys(f, {Use("type"), Use("name"), Use("source"), Use("target"), Use("bootOrder")}));
  ASSIGN_OR_RETURN(std::string type, f["type"].Str(true));
  if (type != kDesignType) {
    return f["type"].Error("unknown disk type " + Quoted(type) + " (want " + kDesignType + ")");
  }
  ASSIGN_OR_RETURN(d->name, f["name"].Str(false));
  if (d->name.empty()) d->name = "disk" + std::to_string(i);
  RETURN_IF_ERROR(CheckName(f["name"], d->name, kMaxVolumeName));
  Field source = Item(f["source"]);
  RETURN_IF_ERROR(source.NeedMap());
  RETURN_IF_ERROR(CheckKeys(source, {Use("name")}));
  Field image = source["name"];
  ASSIGN_OR_RETURN(d->volume.container.image, image.Str(true));
  RETURN_IF_ERROR(CheckImage(image, d->volume.container.image));
  d->volume.name = d->volume.container.name = d->name;
  RETURN_IF_ERROR(ParseDevice(Item(f["target"]), "device", DiskBus::kVirtio, d));
  return ParseBootOrder(f["bootOrder"], d);
}

// A disk's serial: what KubeVirt allows, within virtio-blk's 20 bytes.
Status ParseSerial(const Field& f, VmDisk* d) {
  ASSIGN_OR_RETURN(d->serial, f.Str(false));
  bool ok = d->serial.size() <= kMaxDiskSerial;
  for (char c : d->serial) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  return ok ? OkStatus() : f.Error(Quoted(d->serial) + " is not a serial (letters, digits, '-', '_', '.'; at most 20)");
}

Status ParseVolumeDisk(const Field& f, const VolumeTable& vols, const Context& ctx,
                       std::map<std::string, size_t>& used, size_t i, VmDisk* d) {
  RETURN_IF_ERROR(f.NeedMap());
  RETURN_IF_ERROR(CheckKeys(f, {
      Use("name"), Use("volumeName"), Use("disk"), Use("cdrom"), Use("bootOrder"), Use("serial"),
      Refuse("lun", "LUN passthrough needs a SCSI device of the host"),
      Refuse("floppy", "floppy disks are not supported"),
      Refuse("cache", "regdisk picks the cache mode (none where O_DIRECT works, else writethrough)"),
      Refuse("io", "regdisk picks the I/O mode"),
      Refuse("dedicatedIOThread", "I/O threads are not supported"),
      Refuse("tag", "device role tags need KubeVirt's metadata service"),
      Refuse("shareable", "a registry disk is one VM's overlay"),
      Refuse("errorPolicy", "regdisk always stops the VM on an I/O error"),
      Refuse("blockSize", "block sizes are not supported")}));
  ASSIGN_OR_RETURN(d->name, f["name"].Str(true));
  RETURN_IF_ERROR(CheckName(f["name"], d->name, 63));
  if (f["disk"].exists && f["cdrom"].exists) return f.Error("both disk and cdrom");
  Field ref = f["volumeName"].present() ? f["volumeName"] : f["name"];
  ASSIGN_OR_RETURN(std::string vol, ref.Str(true));
  auto it = vols.find(vol);
  if (it == vols.end()) return ref.Error("no volume named " + Quoted(vol));
  if (auto [u, fresh] = used.emplace(vol, i); !fresh) {
    return ref.Error("volume " + Quoted(vol) + " is already used by disks[" + std::to_string(u->second) + "]");
  }
  d->volume = it->second.first;
  if (f["cdrom"].exists) {
    d->device = DeviceKind::kCdrom;
    if (d->volume.kind == VolumeKind::kEmptyDisk) return f["cdrom"].Error("an emptyDisk cannot be a cdrom");
    RETURN_IF_ERROR(ParseDevice(f["cdrom"], "dev", ctx.prefs.cdrom_bus.value_or(DiskBus::kSata), d));
  } else {
    RETURN_IF_ERROR(ParseDevice(f["disk"], "dev", ctx.prefs.disk_bus.value_or(DiskBus::kVirtio), d));
  }
  RETURN_IF_ERROR(ParseSerial(f["serial"], d));
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

}  // namespace

Status ParseDisks(const Field& spec, const VolumeTable& vols, const Context& ctx, VmSpec* vm) {
  Field disks = spec["domain"]["devices"]["disks"];
  ASSIGN_OR_RETURN(size_t n, disks.SeqSize(false));
  if (n > kMaxDisks) return disks.Error("more than 16 disks");
  bool design = false;
  for (size_t i = 0; i < n; ++i) design |= disks[i]["type"].exists;
  vm->disks.resize(n);
  if (design) {
    if (spec["volumes"].exists) return spec["volumes"].Error("not used by RegistryDisk:v1alpha disks");
    vm->source_form = "design";
    for (size_t i = 0; i < n; ++i) RETURN_IF_ERROR(ParseDesignDisk(disks[i], i, &vm->disks[i]));
  } else {
    std::map<std::string, size_t> used;  // volume name -> disk index
    std::set<std::string> names;
    for (size_t i = 0; i < n; ++i) {
      RETURN_IF_ERROR(ParseVolumeDisk(disks[i], vols, ctx, used, i, &vm->disks[i]));
      if (!names.insert(vm->disks[i].name).second) {
        return disks[i]["name"].Error("duplicate disk " + Quoted(vm->disks[i].name));
      }
    }
    // The volumes no disk names, in volume order, as disks on the default bus.
    std::vector<const std::pair<Volume, size_t>*> rest;
    for (const auto& [name, v] : vols) {
      if (!used.count(name)) rest.push_back(&v);
    }
    std::sort(rest.begin(), rest.end(), [](auto* a, auto* b) { return a->second < b->second; });
    for (const auto* v : rest) {
      if (names.count(v->first.name)) {
        return spec["volumes"][v->second]["name"].Error("not used by any disk, and a disk of another volume has its name");
      }
      VmDisk d;
      d.name = v->first.name;
      d.bus = ctx.prefs.disk_bus.value_or(DiskBus::kVirtio);
      d.volume = v->first;
      vm->disks.push_back(std::move(d));
    }
  }
  if (vm->disks.empty()) return disks.Error("required (no disks and no volumes)");
  return AssignTargets(disks, vm->disks);
}

}  // namespace regdisk::vm::internal
