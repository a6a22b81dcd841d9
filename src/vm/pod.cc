#include "vm/pod.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <vector>

namespace regdisk::vm {
namespace {

constexpr const char* kSharedVolume = "regdisk-disks";
constexpr const char* kBinVolume = "regdisk-bin";
constexpr const char* kServe = "/regdisk-serve";  // in the serve image
constexpr int kQemuUid = 107;  // the disk files must be readable by qemu

// Values that come from the spec are always double-quoted, so that a name
// like "true" or "1e3" stays a string for every YAML reader.
YAML::Emitter& Text(YAML::Emitter& e, const std::string& s) { return e << YAML::DoubleQuoted << s; }

void Args(YAML::Emitter& e, const char* key, const std::vector<std::string>& args) {
  e << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const std::string& a : args) Text(e, a);
  e << YAML::EndSeq;
}

enum class Mounts { kShared, kSharedAndBin, kBin };

void Mount(YAML::Emitter& e, const PodOptions& o, Mounts which) {
  e << YAML::Key << "volumeMounts" << YAML::Value << YAML::BeginSeq;
  if (which != Mounts::kBin) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << kSharedVolume;
    e << YAML::Key << "mountPath" << YAML::Value;
    Text(e, o.shared_dir) << YAML::EndMap;
  }
  if (which != Mounts::kShared) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << kBinVolume;
    e << YAML::Key << "mountPath" << YAML::Value;
    Text(e, o.bin_dir);
    if (which == Mounts::kSharedAndBin) e << YAML::Key << "readOnly" << YAML::Value << true;
    e << YAML::EndMap;
  }
  e << YAML::EndSeq;
}

// The wrapper's identity: qemu's UID, nothing more.
void SecurityContext(YAML::Emitter& e) {
  e << YAML::Key << "securityContext" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "runAsUser" << YAML::Value << kQemuUid;
  e << YAML::Key << "runAsGroup" << YAML::Value << kQemuUid;
  e << YAML::Key << "runAsNonRoot" << YAML::Value << true;
  e << YAML::Key << "allowPrivilegeEscalation" << YAML::Value << false;
  e << YAML::Key << "capabilities" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "drop" << YAML::Value << YAML::Flow << YAML::BeginSeq << "ALL" << YAML::EndSeq;
  e << YAML::EndMap << YAML::EndMap;
}

struct Amounts {
  std::string cpu, memory;
};
// A wrapper (regdisk-serve) copies one file, then only waits.
const Amounts kWrapperRequests{"10m", "16Mi"}, kWrapperLimits{"100m", "40Mi"};

void Resources(YAML::Emitter& e, const Amounts& requests, const Amounts* limits) {
  e << YAML::Key << "resources" << YAML::Value << YAML::BeginMap;
  for (auto [key, a] : {std::pair{"requests", &requests}, std::pair{"limits", limits}}) {
    if (!a) continue;
    e << YAML::Key << key << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "cpu" << YAML::Value << YAML::DoubleQuoted << a->cpu;
    e << YAML::Key << "memory" << YAML::Value << YAML::DoubleQuoted << a->memory << YAML::EndMap;
  }
  e << YAML::EndMap;
}

// "repo:tag" or "repo@old" -> "repo@digest". A ':' after the last '/' is a
// tag; one before it is a registry port.
std::string Pin(const std::string& image, const std::string& digest) {
  std::string repo = image.substr(0, image.find('@'));
  size_t colon = repo.rfind(':'), slash = repo.rfind('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) repo.resize(colon);
  return repo + "@" + digest;
}

// Installs regdisk-serve into the bin volume before the wrappers start.
void InstallContainer(YAML::Emitter& e, const PodOptions& o) {
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << "install-regdisk-serve";
  e << YAML::Key << "image" << YAML::Value;
  Text(e, o.serve_image);
  Args(e, "command", {kServe, "--install", o.bin_dir});
  Resources(e, kWrapperRequests, &kWrapperLimits);
  SecurityContext(e);
  Mount(e, o, Mounts::kBin);
  e << YAML::EndMap;
}

void WrapperContainer(YAML::Emitter& e, const VmDisk& d, const PodOptions& o) {
  const RegistryDiskVolume& v = d.volume.container;
  std::string dest = o.shared_dir + "/" + v.name;
  std::string serve = o.bin_dir + kServe;
  auto pin = o.pinned_digests.find(d.name);
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value;
  Text(e, "volume-" + v.name);
  e << YAML::Key << "image" << YAML::Value;
  Text(e, pin == o.pinned_digests.end() ? v.image : Pin(v.image, pin->second));
  if (!v.pull_policy.empty()) e << YAML::Key << "imagePullPolicy" << YAML::Value << v.pull_policy;
  std::vector<std::string> command = {serve};
  if (!v.path.empty()) command.insert(command.end(), {"--disk", v.path});
  command.insert(command.end(), {"--dest", dest});
  Args(e, "command", command);
  e << YAML::Key << "readinessProbe" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "exec" << YAML::Value << YAML::BeginMap;
  Args(e, "command", {serve, "--ready", dest});
  e << YAML::EndMap << YAML::EndMap;
  Resources(e, kWrapperRequests, &kWrapperLimits);
  SecurityContext(e);
  Mount(e, o, Mounts::kSharedAndBin);
  e << YAML::EndMap;
}

// The launcher: requests the guest's vCPUs and memory (no overhead added).
void ComputeContainer(YAML::Emitter& e, const VmSpec& spec, const PodOptions& o) {
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << "compute";
  e << YAML::Key << "image" << YAML::Value;
  Text(e, o.launcher_image);
  Resources(e, {std::to_string(spec.cpus()), std::to_string(spec.memory_bytes)}, nullptr);
  Mount(e, o, Mounts::kShared);
  e << YAML::EndMap;
}

}  // namespace

std::string RenderLauncherPod(const VmSpec& spec, const PodOptions& o) {
  YAML::Emitter e;
  e.SetIndent(2);
  e << YAML::BeginMap;
  e << YAML::Key << "apiVersion" << YAML::Value << "v1";
  e << YAML::Key << "kind" << YAML::Value << "Pod";
  e << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value;
  Text(e, "virt-launcher-" + spec.name);
  e << YAML::Key << "namespace" << YAML::Value;
  Text(e, spec.ns);
  e << YAML::Key << "labels" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "regdisk.io/vm" << YAML::Value;
  Text(e, spec.name);
  e << YAML::EndMap << YAML::EndMap;

  e << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "restartPolicy" << YAML::Value << "Never";
  std::vector<std::string> secrets;
  for (const VmDisk& d : spec.disks) {
    const std::string& s = d.volume.container.pull_secret;
    if (!s.empty() && std::find(secrets.begin(), secrets.end(), s) == secrets.end()) secrets.push_back(s);
  }
  if (!secrets.empty()) {
    e << YAML::Key << "imagePullSecrets" << YAML::Value << YAML::BeginSeq;
    for (const std::string& s : secrets) {
      e << YAML::BeginMap << YAML::Key << "name" << YAML::Value;
      Text(e, s) << YAML::EndMap;
    }
    e << YAML::EndSeq;
  }
  e << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq;
  for (const char* volume : {kSharedVolume, kBinVolume}) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << volume;
    e << YAML::Key << "emptyDir" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::EndMap << YAML::EndMap;
  }
  e << YAML::EndSeq;
  if (!spec.disks.empty()) {
    e << YAML::Key << "initContainers" << YAML::Value << YAML::BeginSeq;
    InstallContainer(e, o);
    e << YAML::EndSeq;
  }
  e << YAML::Key << "containers" << YAML::Value << YAML::BeginSeq;
  ComputeContainer(e, spec, o);
  for (const VmDisk& d : spec.disks) {
    if (d.volume.kind == VolumeKind::kContainerDisk) WrapperContainer(e, d, o);
  }
  e << YAML::EndSeq << YAML::EndMap << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace regdisk::vm
