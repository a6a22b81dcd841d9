// Objects a VM refers to, given alongside it as documents: Secrets (for
// cloud-init secretRef / networkDataSecretRef), instancetypes and
// preferences (instancetype.kubevirt.io).
#include <algorithm>
#include <cctype>

#include "util/base64.h"
#include "vm/cloud_init.h"
#include "vm/spec_internal.h"

namespace regdisk::vm::internal {
namespace {

constexpr const char* kInstancetype = "VirtualMachineInstancetype";
constexpr const char* kClusterInstancetype = "VirtualMachineClusterInstancetype";
constexpr const char* kPreference = "VirtualMachinePreference";
constexpr const char* kClusterPreference = "VirtualMachineClusterPreference";

StatusOr<std::optional<DiskBus>> PreferredBus(const Field& f) {
  ASSIGN_OR_RETURN(std::string s, f.Str(false));
  if (s.empty()) return std::optional<DiskBus>();
  std::optional<DiskBus> b = ParseBus(s);
  if (!b || *b == DiskBus::kIde) return f.Error("unknown bus " + Quoted(s) + " (want virtio, sata, scsi or usb)");
  return b;
}

StatusOr<std::optional<bool>> OptionalBool(const Field& f) {
  if (!f.present()) return std::optional<bool>();
  ASSIGN_OR_RETURN(bool b, f.Bool());
  return std::optional<bool>(b);
}

// The key of a referenced object: "Kind/namespace/name", cluster kinds
// without a namespace.
std::string RefKey(const std::string& kind, const std::string& ns, const std::string& name) {
  bool cluster = kind == kClusterInstancetype || kind == kClusterPreference;
  return kind + "/" + (cluster ? "" : ns) + "/" + name;
}

// KubeVirt also takes the lowercase and plural spellings of a kind.
std::string CanonicalKind(std::string kind) {
  std::string lower = kind;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* k : {kInstancetype, kClusterInstancetype, kPreference, kClusterPreference}) {
    std::string l = k;
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == l || lower == l + "s") return k;
  }
  return kind;
}

// Finds spec.instancetype / spec.preference among the references.
StatusOr<std::optional<Field>> Resolve(const Field& matcher, const std::string& ns, const char* ns_kind,
                                       const char* cluster_kind, const std::map<std::string, Field>& objects) {
  if (!matcher.present()) return std::optional<Field>();
  RETURN_IF_ERROR(matcher.NeedMap());
  RETURN_IF_ERROR(CheckKeys(matcher, {
      Use("name"), Use("kind"), Accept("revisionName"),
      Refuse("inferFromVolume", "regdisk's volumes carry no instancetype labels"),
      Refuse("inferFromVolumeFailurePolicy", "regdisk's volumes carry no instancetype labels")}));
  ASSIGN_OR_RETURN(std::string name, matcher["name"].Str(true));
  ASSIGN_OR_RETURN(std::string kind, matcher["kind"].Str(false));
  kind = kind.empty() ? cluster_kind : CanonicalKind(kind);
  if (kind != ns_kind && kind != cluster_kind) {
    return matcher["kind"].Error(Quoted(kind) + " is not " + ns_kind + " or " + cluster_kind);
  }
  auto it = objects.find(RefKey(kind, ns, name));
  if (it == objects.end()) {
    return matcher.Error(kind + " " + Quoted(name) + " is not among the given files (give the file that holds it)");
  }
  return std::optional<Field>(it->second);
}

}  // namespace

StatusOr<Instancetype> ParseInstancetype(const Field& spec) {
  if (!spec.present()) return spec.Error("required");
  RETURN_IF_ERROR(spec.NeedMap());
  RETURN_IF_ERROR(CheckKeys(spec, {
      Use("cpu"), Use("memory"), Refuse("gpus", "GPUs are not supported"),
      Refuse("hostDevices", "host devices are not supported"),
      Refuse("ioThreadsPolicy", "I/O threads are not supported"),
      Refuse("launchSecurity", "confidential computing (SEV) is not supported"),
      Refuse("nodeSelector", "one node"), Refuse("schedulerName", "one node"),
      Refuse("annotations", "not supported")}));
  Field cpu = spec["cpu"], mem = spec["memory"];
  RETURN_IF_ERROR(cpu.NeedMap());
  RETURN_IF_ERROR(mem.NeedMap());
  RETURN_IF_ERROR(CheckKeys(cpu, {Use("guest"), Refuse("model", kDefaultCpuModel),
                                  Refuse("dedicatedCPUPlacement", kNoTuning), Refuse("isolateEmulatorThread", kNoTuning),
                                  Refuse("numa", kNoTuning), Refuse("realtime", kNoTuning),
                                  Refuse("maxSockets", "CPU hotplug is not supported")}));
  RETURN_IF_ERROR(CheckKeys(mem, {Use("guest"), Refuse("hugepages", kNoTuning), Refuse("overcommitPercent", kNoTuning),
                                  Refuse("maxGuest", "memory hotplug is not supported")}));
  Instancetype t;
  if (!cpu.present()) return cpu.Error("required");
  ASSIGN_OR_RETURN(t.cpus, cpu["guest"].Int(1, kMaxCpus, 0));
  if (!t.cpus) return cpu["guest"].Error("required");
  if (!mem.present()) return mem.Error("required");
  ASSIGN_OR_RETURN(t.memory, Bytes(mem["guest"], kMinMemory, kMaxMemory, "1Mi to 16Ti"));
  return t;
}

StatusOr<Preferences> ParsePreference(const Field& spec) {
  Preferences p;
  RETURN_IF_ERROR(spec.NeedMap());
  RETURN_IF_ERROR(CheckKeys(spec, {
      Use("devices"), Use("firmware"), Use("features"), Use("machine"), Use("cpu"),
      Accept("preferredTerminationGracePeriodSeconds"),
      Refuse("clock", "the guest clock is UTC"), Refuse("requirements", "not supported"),
      Refuse("annotations", "not supported"), Refuse("volumes", "not supported"),
      Refuse("preferredSubdomain", "no cluster DNS on one node"),
      Refuse("preferSpreadSocketToCoreRatio", "the spread topology is not supported")}));
  Field dev = spec["devices"], fw = spec["firmware"], feat = spec["features"];
  for (const Field& f : {dev, fw, feat, spec["machine"], spec["cpu"]}) RETURN_IF_ERROR(f.NeedMap());
  RETURN_IF_ERROR(CheckKeys(dev, {Use("preferredDiskBus"), Use("preferredCdromBus"), Use("preferredInterfaceModel"),
                                  Use("preferredRng"), Accept("preferredAutoattachSerialConsole"),
                                  Accept("preferredAutoattachGraphicsDevice"), Accept("preferredAutoattachMemBalloon"),
                                  Accept("preferredAutoattachInputDevice"), Accept("preferredNetworkInterfaceMultiQueue"),
                                  Accept("preferredBlockMultiQueue")}));
  ASSIGN_OR_RETURN(p.disk_bus, PreferredBus(dev["preferredDiskBus"]));
  ASSIGN_OR_RETURN(p.cdrom_bus, PreferredBus(dev["preferredCdromBus"]));
  if (dev["preferredInterfaceModel"].present()) {
    ASSIGN_OR_RETURN(p.interface_model, dev["preferredInterfaceModel"].Str(true));
  }
  if (dev["preferredRng"].exists) {
    RETURN_IF_ERROR(CheckKeys(dev["preferredRng"], {}));
    p.rng = true;
  }
  RETURN_IF_ERROR(CheckKeys(fw, {Use("preferredUseEfi"), Use("preferredUseSecureBoot"), Use("preferredUseBios"),
                                 Accept("preferredUseBiosSerial")}));
  ASSIGN_OR_RETURN(p.efi, OptionalBool(fw["preferredUseEfi"]));
  ASSIGN_OR_RETURN(p.secure_boot, OptionalBool(fw["preferredUseSecureBoot"]));
  ASSIGN_OR_RETURN(std::optional<bool> bios, OptionalBool(fw["preferredUseBios"]));
  if (bios == true) p.efi = false;
  RETURN_IF_ERROR(CheckKeys(feat, {Use("preferredSmm"), Accept("preferredAcpi"), Accept("preferredApic")}));
  if (feat["preferredSmm"].exists) {
    RETURN_IF_ERROR(feat["preferredSmm"].NeedMap());
    RETURN_IF_ERROR(CheckKeys(feat["preferredSmm"], {Use("enabled")}));
    ASSIGN_OR_RETURN(bool on, feat["preferredSmm"]["enabled"].Bool(true));
    p.smm = on;
  }
  RETURN_IF_ERROR(CheckKeys(spec["machine"], {Use("preferredMachineType")}));
  if (spec["machine"]["preferredMachineType"].present()) {
    ASSIGN_OR_RETURN(p.machine, spec["machine"]["preferredMachineType"].Str(true));
  }
  RETURN_IF_ERROR(CheckKeys(spec["cpu"], {Use("preferredCPUTopology"), Refuse("preferredCPUFeatures", "not supported"),
                                          Refuse("spreadOptions", "the spread topology is not supported")}));
  ASSIGN_OR_RETURN(std::string topo, spec["cpu"]["preferredCPUTopology"].Str(false));
  if (!topo.empty()) {
    static const char* const kTopologies[] = {"preferSockets", "preferCores", "preferThreads", "preferAny",
                                              "sockets", "cores", "threads", "any"};
    if (std::find_if(std::begin(kTopologies), std::end(kTopologies), [&](const char* t) { return topo == t; }) ==
        std::end(kTopologies)) {
      return spec["cpu"]["preferredCPUTopology"].Error(Quoted(topo) + " is not supported (want sockets, cores, threads or any)");
    }
    p.cpu_topology = topo;
  }
  return p;
}

StatusOr<std::optional<Instancetype>> ResolveInstancetype(const Field& matcher, const std::string& ns,
                                                          const References& refs) {
  ASSIGN_OR_RETURN(std::optional<Field> obj, Resolve(matcher, ns, kInstancetype, kClusterInstancetype, refs.instancetypes));
  if (!obj) return std::optional<Instancetype>();
  ASSIGN_OR_RETURN(Instancetype t, ParseInstancetype((*obj)["spec"]));
  t.ref = obj->node["kind"].Scalar() + " " + Quoted(obj->node["metadata"]["name"].Scalar());
  return std::optional<Instancetype>(std::move(t));
}

StatusOr<Preferences> ResolvePreference(const Field& matcher, const std::string& ns, const References& refs) {
  ASSIGN_OR_RETURN(std::optional<Field> obj, Resolve(matcher, ns, kPreference, kClusterPreference, refs.preferences));
  if (!obj) return Preferences{};
  return ParsePreference((*obj)["spec"]);
}

Status AddReference(const Field& root, const std::string& kind, const std::string& name, const std::string& ns,
                    References* refs) {
  bool pref = kind == kPreference || kind == kClusterPreference;
  auto& objects = pref ? refs->preferences : refs->instancetypes;
  if (!objects.emplace(RefKey(kind, ns, name), root).second) {
    return root["metadata"]["name"].Error("a second " + kind + " " + Quoted(name));
  }
  // Checked here, so that an unused bad object is an error too.
  if (pref) return ParsePreference(root["spec"]).status();
  return ParseInstancetype(root["spec"]).status();
}

Status AddSecret(const Field& root, const std::string& name, const std::string& ns, References* refs) {
  RETURN_IF_ERROR(CheckKeys(root, {Use("apiVersion"), Use("kind"), Use("metadata"), Use("data"), Use("stringData"),
                                   Accept("type"), Accept("immutable")}));
  std::map<std::string, std::string> values;
  for (const char* part : {"data", "stringData"}) {
    Field f = root[part];
    RETURN_IF_ERROR(f.NeedMap());
    if (!f.present()) continue;
    for (const auto& kv : f.node) {
      std::string key = kv.first.Scalar();
      Field v = f[key.c_str()];
      ASSIGN_OR_RETURN(std::string text, v.Str(false));
      if (std::string(part) == "data") {
        std::optional<std::string> decoded = Base64Decode(text);
        if (!decoded) return v.Error("not valid base64");
        text = std::move(*decoded);
      }
      if (text.size() > kMaxCloudInitDataBytes) {
        return v.Error("larger than " + std::to_string(kMaxCloudInitDataBytes) + " bytes (Kubernetes' limit for a Secret)");
      }
      values[key] = std::move(text);  // stringData wins, as in Kubernetes
    }
  }
  if (!refs->secrets.emplace(ns + "/" + name, std::move(values)).second) {
    return root["metadata"]["name"].Error("a second Secret " + Quoted(name));
  }
  return OkStatus();
}

}  // namespace regdisk::vm::internal
