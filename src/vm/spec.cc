#include "vm/spec.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "vm/bounded_yaml.h"
#include "vm/spec_internal.h"

namespace regdisk::vm {
namespace {

using namespace internal;

// Given on the command line: a VM file plus the Secrets, instancetypes and
// preferences it needs; 64 is far more than that.
constexpr size_t kMaxSpecFiles = 64;
// Labels go to the Pod; Kubernetes allows any number, a VM needs a few.
constexpr size_t kMaxLabels = 64;
constexpr const char* kHookPrefix = "hooks.kubevirt.io/";
constexpr const char* kBridgeAnnotation = "regdisk.io/bridge-network";

// A label: an optional DNS-subdomain prefix and "/", then a name of at most
// 63 of [A-Za-z0-9._-]; a value of at most 63 of the same (may be empty).
bool IsLabelPart(const std::string& s, bool empty_ok) {
  if (s.empty()) return empty_ok;
  if (s.size() > 63 || !std::isalnum(static_cast<unsigned char>(s.front())) ||
      !std::isalnum(static_cast<unsigned char>(s.back()))) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool IsLabelKey(const std::string& k) {
  size_t slash = k.find('/');
  if (slash == std::string::npos) return IsLabelPart(k, false);
  return IsDnsSubdomain(k.substr(0, slash)) && IsLabelPart(k.substr(slash + 1), false);
}

// labels and annotations of the object or its template. Annotations are
// metadata to regdisk except the sidecar hooks (refused) and
// regdisk.io/bridge-network.
Status ParseLabelsAndAnnotations(const Field& md, bool keep_labels, VmSpec* vm, Context* ctx) {
  Field labels = md["labels"], notes = md["annotations"];
  RETURN_IF_ERROR(labels.NeedMap());
  RETURN_IF_ERROR(notes.NeedMap());
  if (labels.present() && labels.node.size() > kMaxLabels) return labels.Error("more than " + std::to_string(kMaxLabels) + " labels");
  if (labels.present()) {
    for (const auto& kv : labels.node) {
      std::string key = kv.first.Scalar();
      Field v = labels[key.c_str()];
      ASSIGN_OR_RETURN(std::string value, v.Str(false));
      if (!IsLabelKey(key)) return labels.Error(Quoted(key) + " is not a valid label key");
      if (!IsLabelPart(value, true)) return v.Error(Quoted(value) + " is not a valid label value");
      if (keep_labels) vm->labels[key] = value;
    }
  }
  if (!notes.present()) return OkStatus();
  for (const auto& kv : notes.node) {
    std::string key = kv.first.Scalar();
    Field v = notes[key.c_str()];
    ASSIGN_OR_RETURN(std::string value, v.Str(false));
    if (key.starts_with(kHookPrefix)) {
      return notes.Error(Quoted(key) + ": not supported: sidecar hooks change the domain outside the spec");
    }
    if (key == kBridgeAnnotation) {
      bool ok = !value.empty() && value.size() <= 63 && IsLabelPart(value, false);
      if (!ok) return v.Error(Quoted(value) + " is not a libvirt network name");
      ctx->bridge_network = value;
    }
  }
  return OkStatus();
}

Status ParseMetadata(const Field& md, VmSpec* vm) {
  RETURN_IF_ERROR(md.NeedMap());
  RETURN_IF_ERROR(CheckKeys(md, {
      Use("name"), Use("namespace"), Use("labels"), Use("annotations"),
      Refuse("generateName", "regdisk needs a fixed name (metadata.name)"),
      Accept("uid"), Accept("resourceVersion"), Accept("creationTimestamp"), Accept("generation"),
      Accept("managedFields"), Accept("ownerReferences"), Accept("finalizers"), Accept("selfLink"),
      Accept("deletionTimestamp"), Accept("deletionGracePeriodSeconds")}));
  ASSIGN_OR_RETURN(vm->name, md["name"].Str(false));
  if (!vm->name.empty()) RETURN_IF_ERROR(CheckName(md["name"], vm->name, 63));
  ASSIGN_OR_RETURN(std::string ns, md["namespace"].Str(false));
  if (!ns.empty()) {
    RETURN_IF_ERROR(CheckName(md["namespace"], ns, 63));
    vm->ns = ns;
  }
  return OkStatus();
}

// The VirtualMachineInstance spec.
Status ParseVmiSpec(const Field& spec, const Context& ctx, VmSpec* vm) {
  if (!spec.present()) return spec.Error("required");
  RETURN_IF_ERROR(spec.NeedMap());
  RETURN_IF_ERROR(CheckKeys(spec, {
      Use("domain"), Use("volumes"), Use("networks"), Use("hostname"), Use("architecture"),
      Accept("subdomain"), Accept("terminationGracePeriodSeconds"), Accept("evictionStrategy"),
      Accept("nodeSelector"), Accept("affinity"), Accept("tolerations"), Accept("schedulerName"),
      Accept("priorityClassName"), Accept("topologySpreadConstraints"),
      Refuse("startStrategy", "a VM starts when it is run"),
      Refuse("readinessProbe", "probes are not supported"), Refuse("livenessProbe", "probes are not supported"),
      Refuse("accessCredentials", "use cloud-init user data to add users and keys"),
      Refuse("dnsPolicy", "user-mode networking has its own DNS"),
      Refuse("dnsConfig", "user-mode networking has its own DNS"),
      Refuse("resourceClaims", "dynamic resource allocation is not supported")}));
  Field domain = spec["domain"];
  if (!domain.present()) return domain.Error("required");
  RETURN_IF_ERROR(domain.NeedMap());
  ASSIGN_OR_RETURN(std::string arch, spec["architecture"].Str(false));
  if (!arch.empty() && arch != "amd64") return spec["architecture"].Error(Quoted(arch) + ": only amd64 (x86-64)");
  ASSIGN_OR_RETURN(vm->hostname, spec["hostname"].Str(false));
  if (!vm->hostname.empty()) RETURN_IF_ERROR(CheckName(spec["hostname"], vm->hostname, 63));
  RETURN_IF_ERROR(spec["terminationGracePeriodSeconds"].Int(0, INT32_MAX, 0).status());
  RETURN_IF_ERROR(ParseDomain(domain, ctx, vm));
  ASSIGN_OR_RETURN(VolumeTable vols, ParseVolumes(spec["volumes"], ctx, vm));
  RETURN_IF_ERROR(ParseDisks(spec, vols, ctx, vm));
  for (size_t i = 0; i < vm->disks.size(); ++i) {
    if (vm->disks[i].bus == DiskBus::kIde && vm->machine == "q35") {
      return spec["domain"]["devices"]["disks"][i].Error("q35 (EFI, SMM or machine.type) has no IDE bus");
    }
  }
  return ParseNetworks(spec, ctx, vm);
}

StatusOr<RunStrategy> ParseRunStrategy(const Field& spec) {
  Field running = spec["running"], strategy = spec["runStrategy"];
  if (running.present() && strategy.present()) {
    return strategy.Error("running and runStrategy are mutually exclusive");
  }
  if (running.present()) {
    ASSIGN_OR_RETURN(bool on, running.Bool());
    return on ? RunStrategy::kAlways : RunStrategy::kHalted;
  }
  ASSIGN_OR_RETURN(std::string s, strategy.Str(false));
  if (s.empty()) return RunStrategy::kHalted;  // as KubeVirt's VirtualMachine.RunStrategy()
  for (RunStrategy r : {RunStrategy::kAlways, RunStrategy::kRerunOnFailure, RunStrategy::kManual,
                        RunStrategy::kOnce, RunStrategy::kHalted}) {
    if (s == RunStrategyName(r)) return r;
  }
  return strategy.Error(Quoted(s) + " is not Always, RerunOnFailure, Manual, Once or Halted");
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

bool IsVmKind(const std::string& kind) {
  for (const char* k : {"VirtualMachine", "VirtualMachineInstance", "VirtualMachineInstanceReplicaSet",
                        "OfflineVirtualMachine", "VirtualMachineReplicaSet"}) {
    if (kind == k) return true;
  }
  return false;
}

// One VM kind document.
StatusOr<VmSet> ParseVmDocument(const Field& root, const References& refs) {
  ASSIGN_OR_RETURN(std::string api, root["apiVersion"].Str(false));
  if (!api.empty() && !api.starts_with("kubevirt.io/")) {
    return root["apiVersion"].Error(Quoted(api) + " is not a kubevirt.io version");
  }
  RETURN_IF_ERROR(CheckKeys(root, {Use("apiVersion"), Use("kind"), Use("metadata"), Use("spec"), Accept("status")}));
  ASSIGN_OR_RETURN(std::string kind, root["kind"].Str(true));
  VmSet set;
  Context ctx;
  ctx.refs = &refs;
  RETURN_IF_ERROR(ParseMetadata(root["metadata"], &set.vm));
  ctx.ns = set.vm.ns;
  Field spec = root["spec"];
  if (!spec.present()) return spec.Error("required");
  RETURN_IF_ERROR(spec.NeedMap());
  // The legacy kubevirt.io/v1alpha1 (and the design's) VirtualMachine is
  // today's VirtualMachineInstance.
  bool legacy_vmi = kind == "VirtualMachine" && !spec["template"].exists && (api.empty() || api == "kubevirt.io/v1alpha1");
  bool replica_set = kind == "VirtualMachineReplicaSet" || kind == "VirtualMachineInstanceReplicaSet";
  Field vmi = spec;
  if (kind == "VirtualMachineInstance" || legacy_vmi) {
    RETURN_IF_ERROR(ParseLabelsAndAnnotations(root["metadata"], true, &set.vm, &ctx));
  } else if (replica_set || kind == "VirtualMachine" || kind == "OfflineVirtualMachine") {
    if (replica_set) {
      RETURN_IF_ERROR(CheckKeys(spec, {Use("replicas"), Use("template"), Use("paused"), Accept("selector")}));
      ASSIGN_OR_RETURN(set.replicas, spec["replicas"].Int(1, kMaxReplicas, 1));
      ASSIGN_OR_RETURN(bool paused, spec["paused"].Bool());
      if (paused) return spec["paused"].Error("a paused replica set starts nothing; not supported");
      set.vm.run_strategy = RunStrategy::kAlways;  // the set replaces a VMI that stops
    } else {
      RETURN_IF_ERROR(CheckKeys(spec, {
          Use("running"), Use("runStrategy"), Use("template"), Use("instancetype"), Use("preference"),
          Use("dataVolumeTemplates"), Accept("updateVolumesStrategy"), Accept("liveUpdateFeatures")}));
      ASSIGN_OR_RETURN(set.vm.run_strategy, ParseRunStrategy(spec));
      ASSIGN_OR_RETURN(size_t dvs, spec["dataVolumeTemplates"].SeqSize(false));
      if (dvs) return spec["dataVolumeTemplates"].Error("not supported: " + std::string("DataVolumes need CDI and storage"));
      ASSIGN_OR_RETURN(ctx.instancetype, ResolveInstancetype(spec["instancetype"], ctx.ns, refs));
      ASSIGN_OR_RETURN(ctx.prefs, ResolvePreference(spec["preference"], ctx.ns, refs));
    }
    Field tmpl = spec["template"];
    if (!tmpl.present()) return tmpl.Error("required");
    RETURN_IF_ERROR(tmpl.NeedMap());
    RETURN_IF_ERROR(CheckKeys(tmpl, {Use("metadata"), Use("spec")}));
    RETURN_IF_ERROR(tmpl["metadata"].NeedMap());
    RETURN_IF_ERROR(CheckKeys(tmpl["metadata"], {Use("labels"), Use("annotations"), Accept("name"),
                                                 Accept("namespace"), Accept("creationTimestamp")}));
    RETURN_IF_ERROR(ParseLabelsAndAnnotations(root["metadata"], false, &set.vm, &ctx));
    RETURN_IF_ERROR(ParseLabelsAndAnnotations(tmpl["metadata"], true, &set.vm, &ctx));
    vmi = tmpl["spec"];
  } else {
    return root["kind"].Error(Quoted(kind) + " is not VirtualMachine, VirtualMachineInstance, "
                              "OfflineVirtualMachine or a replica set");
  }
  RETURN_IF_ERROR(ParseVmiSpec(vmi, ctx, &set.vm));
  if (set.replicas > 1) {
    // One libvirt (and one network) cannot hold two domains with one UUID or MAC.
    if (!set.vm.uuid.empty()) {
      return vmi["domain"]["firmware"]["uuid"].Error("replicas on one node need distinct UUIDs; leave it out");
    }
    for (size_t i = 0; i < set.vm.interfaces.size(); ++i) {
      if (!set.vm.interfaces[i].mac.empty()) {
        return vmi["domain"]["devices"]["interfaces"][i]["macAddress"].Error(
            "replicas on one node need distinct MAC addresses; leave it out");
      }
    }
  }
  if (set.vm.name.empty()) {
    if (set.vm.source_form != "design") return root["metadata"]["name"].Error("required");
    set.vm.name = NameFromImage(set.vm.disks[0].volume.container.image);
  }
  if (set.vm.hostname.empty()) set.vm.hostname = set.vm.name;
  // Replicas are named NAME-i, which must stay a DNS label.
  size_t suffix = set.replicas > 1 ? 1 + std::to_string(set.replicas - 1).size() : 0;
  if (set.vm.name.size() + suffix > 63) {
    return root["metadata"]["name"].Error("too long for the names of " + std::to_string(set.replicas) + " replicas");
  }
  return set;
}

// Files a Secret, instancetype or preference document among the references;
// false when the document is none of those.
StatusOr<bool> AddObject(const Field& root, References* refs) {
  ASSIGN_OR_RETURN(std::string api, root["apiVersion"].Str(false));
  ASSIGN_OR_RETURN(std::string kind, root["kind"].Str(true));
  bool secret = api == "v1" && kind == "Secret";
  bool typed = api.starts_with("instancetype.kubevirt.io/") &&
               (kind == "VirtualMachineInstancetype" || kind == "VirtualMachineClusterInstancetype" ||
                kind == "VirtualMachinePreference" || kind == "VirtualMachineClusterPreference");
  if (!secret && !typed) return false;
  Field md = root["metadata"];
  RETURN_IF_ERROR(md.NeedMap());
  ASSIGN_OR_RETURN(std::string name, md["name"].Str(true));
  if (!IsDnsSubdomain(name)) return md["name"].Error(Quoted(name) + " is not a valid name");
  ASSIGN_OR_RETURN(std::string ns, md["namespace"].Str(false));
  if (ns.empty()) ns = "default";
  if (secret) RETURN_IF_ERROR(AddSecret(root, name, ns, refs));
  if (typed) {
    RETURN_IF_ERROR(CheckKeys(root, {Use("apiVersion"), Use("kind"), Use("metadata"), Use("spec")}));
    RETURN_IF_ERROR(AddReference(root, kind, name, ns, refs));
  }
  return true;
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
  if (files.size() > kMaxSpecFiles) return InvalidArgument("more than " + std::to_string(kMaxSpecFiles) + " spec files");
  struct Doc {
    Field root;
    std::string where;  // "FILE" or "FILE (document N)"
  };
  References refs;
  std::vector<Doc> vms;
  for (const SpecFile& f : files) {
    auto docs = LoadBoundedYamlDocuments(f.text);
    if (!docs.ok()) return docs.status().Annotate(f.path);
    for (size_t i = 0; i < docs->size(); ++i) {
      std::string where = docs->size() == 1 ? f.path : f.path + " (document " + std::to_string(i + 1) + ")";
      const YAML::Node& node = (*docs)[i];
      if (node.IsNull()) continue;
      if (!node.IsMap()) return InvalidArgument(where + ": the document must be a mapping (a Kubernetes object)");
      Field root{node, ""};
      StatusOr<bool> added = AddObject(root, &refs);
      if (!added.ok()) return added.status().Annotate(where);
      if (*added) continue;
      ASSIGN_OR_RETURN(std::string kind, root["kind"].Str(true));
      if (!IsVmKind(kind)) {
        return InvalidArgument(where + ": kind: " + Quoted(kind) + " is not a VM kind, Secret, instancetype or preference");
      }
      vms.push_back({root, where});
    }
  }
  std::vector<VmSet> out;
  std::set<std::string> names;
  for (const Doc& d : vms) {
    auto set = ParseVmDocument(d.root, refs);
    if (!set.ok()) return set.status().Annotate(d.where);
    // One node names a VM's files, leases and libvirt domain by its name
    // alone (replica i of a set is NAME-i): names must differ across
    // namespaces too.
    for (int i = 0; i < set->replicas; ++i) {
      std::string name = ReplicaName(*set, i);
      if (!names.insert(name).second) return InvalidArgument(d.where + ": a second VM named " + Quoted(name));
    }
    out.push_back(std::move(*set));
  }
  if (out.empty()) return InvalidArgument("no VirtualMachine, VirtualMachineInstance or replica set in the given files");
  return out;
}

std::string ReplicaName(const VmSet& set, int i) {
  return set.replicas == 1 ? set.vm.name : set.vm.name + "-" + std::to_string(i);
}

StatusOr<VmSet> ParseVmYaml(std::string_view yaml) {
  ASSIGN_OR_RETURN(YAML::Node doc, LoadBoundedYaml(yaml));
  if (!doc.IsMap()) return InvalidArgument("the document must be a mapping (a VirtualMachine object)");
  References none;
  return ParseVmDocument(Field{doc, ""}, none);
}

}  // namespace regdisk::vm
