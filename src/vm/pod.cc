#include "vm/pod.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <vector>

#include "vm/k8s_yaml.h"

namespace regdisk::vm {
namespace {

constexpr const char* kSharedVolume = "regdisk-disks";
constexpr const char* kBinVolume = "regdisk-bin";
constexpr const char* kEphemeralVolume = "regdisk-ephemeral";
constexpr const char* kServe = "/regdisk-serve";  // in the serve image
constexpr int kQemuUid = 107;  // the disk files must be readable by qemu

using k8s::Amounts;
using k8s::Args;
using k8s::Text;

// The wrappers mount the shared disks and (read-only) regdisk-bin; the
// install container only regdisk-bin.
enum class Mounts { kSharedAndBin, kBin };

void Mount(YAML::Emitter& e, const PodOptions& o, Mounts which) {
  e << YAML::Key << "volumeMounts" << YAML::Value << YAML::BeginSeq;
  if (which == Mounts::kSharedAndBin) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << kSharedVolume;
    e << YAML::Key << "mountPath" << YAML::Value;
    Text(e, o.shared_dir) << YAML::EndMap;
  }
  e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << kBinVolume;
  e << YAML::Key << "mountPath" << YAML::Value;
  Text(e, o.bin_dir);
  if (which == Mounts::kSharedAndBin) e << YAML::Key << "readOnly" << YAML::Value << true;
  e << YAML::EndMap;
  e << YAML::EndSeq;
}

bool HasEphemeral(const VmSpec& spec) {
  return std::any_of(spec.disks.begin(), spec.disks.end(),
                     [](const VmDisk& d) { return d.volume.kind != VolumeKind::kContainerDisk; });
}

// A disk's image reference, pinned by digest when the options have one.
std::string ImageOf(const VmDisk& d, const PodOptions& o);

// The compute container's mounts: the shared disks (container form) or
// each image volume read-only (image form), and the ephemeral emptyDir.
void ComputeMounts(YAML::Emitter& e, const VmSpec& spec, const PodOptions& o) {
  e << YAML::Key << "volumeMounts" << YAML::Value << YAML::BeginSeq;
  if (o.volumes == PodVolumes::kContainer) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << kSharedVolume;
    e << YAML::Key << "mountPath" << YAML::Value;
    Text(e, o.shared_dir) << YAML::EndMap;
  } else {
    for (const VmDisk& d : spec.disks) {
      if (d.volume.kind != VolumeKind::kContainerDisk) continue;
      e << YAML::BeginMap << YAML::Key << "name" << YAML::Value;
      Text(e, "volume-" + d.volume.name);
      e << YAML::Key << "mountPath" << YAML::Value;
      Text(e, o.image_dir + "/" + d.volume.name);
      e << YAML::Key << "readOnly" << YAML::Value << true << YAML::EndMap;
    }
  }
  if (HasEphemeral(spec)) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << kEphemeralVolume;
    e << YAML::Key << "mountPath" << YAML::Value;
    Text(e, o.ephemeral_dir) << YAML::EndMap;
  }
  e << YAML::EndSeq;
}

// The wrapper's identity: qemu's UID, nothing more.
void SecurityContext(YAML::Emitter& e) { k8s::SecurityContext(e, {kQemuUid, kQemuUid}); }

// A wrapper (regdisk-serve) copies one file, then only waits.
const Amounts kWrapperRequests{"10m", "16Mi"}, kWrapperLimits{"100m", "40Mi"};

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
  k8s::Resources(e, kWrapperRequests, &kWrapperLimits);
  SecurityContext(e);
  Mount(e, o, Mounts::kBin);
  e << YAML::EndMap;
}

std::string ImageOf(const VmDisk& d, const PodOptions& o) {
  auto pin = o.pinned_digests.find(d.name);
  return pin == o.pinned_digests.end() ? d.volume.container.image : Pin(d.volume.container.image, pin->second);
}

void WrapperContainer(YAML::Emitter& e, const VmDisk& d, const PodOptions& o) {
  const RegistryDiskVolume& v = d.volume.container;
  std::string dest = o.shared_dir + "/" + v.name;
  std::string serve = o.bin_dir + kServe;
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value;
  Text(e, "volume-" + v.name);
  e << YAML::Key << "image" << YAML::Value;
  Text(e, ImageOf(d, o));
  if (!v.pull_policy.empty()) e << YAML::Key << "imagePullPolicy" << YAML::Value << v.pull_policy;
  std::vector<std::string> command = {serve};
  if (!v.path.empty()) command.insert(command.end(), {"--disk", v.path});
  command.insert(command.end(), {"--dest", dest});
  Args(e, "command", command);
  e << YAML::Key << "readinessProbe" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "exec" << YAML::Value << YAML::BeginMap;
  Args(e, "command", {serve, "--ready", dest});
  e << YAML::EndMap << YAML::EndMap;
  k8s::Resources(e, kWrapperRequests, &kWrapperLimits);
  SecurityContext(e);
  Mount(e, o, Mounts::kSharedAndBin);
  e << YAML::EndMap;
}

// The launcher: requests what the spec requests, else its limits, else the
// guest's vCPUs and memory (no overhead added); limits as the spec gives them.
void ComputeContainer(YAML::Emitter& e, const VmSpec& spec, const PodOptions& o) {
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << "compute";
  e << YAML::Key << "image" << YAML::Value;
  Text(e, o.launcher_image);
  // As Kubernetes: a missing request defaults to the limit.
  auto pick = [](const std::string& request, const std::string& limit, std::string guest) {
    return !request.empty() ? request : !limit.empty() ? limit : guest;
  };
  Amounts requests{pick(spec.cpu_request, spec.cpu_limit, std::to_string(spec.cpus())),
                   pick(spec.memory_request, spec.memory_limit, std::to_string(spec.memory_bytes))};
  Amounts limits{spec.cpu_limit, spec.memory_limit};
  k8s::Resources(e, requests, limits.cpu.empty() && limits.memory.empty() ? nullptr : &limits);
  ComputeMounts(e, spec, o);
  e << YAML::EndMap;
}

// The Pod's volumes: emptyDirs for the shared disks and regdisk-serve
// (container form) or one image volume per container disk (image form),
// and the ephemeral emptyDir.
void Volumes(YAML::Emitter& e, const VmSpec& spec, const PodOptions& o) {
  auto empty_dir = [&](const char* name) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << name;
    e << YAML::Key << "emptyDir" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::EndMap << YAML::EndMap;
  };
  e << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq;
  if (o.volumes == PodVolumes::kContainer) {
    empty_dir(kSharedVolume);
    empty_dir(kBinVolume);
  } else {
    for (const VmDisk& d : spec.disks) {
      if (d.volume.kind != VolumeKind::kContainerDisk) continue;
      e << YAML::BeginMap << YAML::Key << "name" << YAML::Value;
      Text(e, "volume-" + d.volume.name);
      e << YAML::Key << "image" << YAML::Value << YAML::BeginMap;
      e << YAML::Key << "reference" << YAML::Value;
      Text(e, ImageOf(d, o));
      if (!d.volume.container.pull_policy.empty()) {
        e << YAML::Key << "pullPolicy" << YAML::Value << d.volume.container.pull_policy;
      }
      e << YAML::EndMap << YAML::EndMap;
    }
  }
  if (HasEphemeral(spec)) empty_dir(kEphemeralVolume);
  e << YAML::EndSeq;
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
  for (const auto& [key, value] : spec.labels) {
    if (key == "regdisk.io/vm") continue;
    e << YAML::Key;
    Text(e, key) << YAML::Value;
    Text(e, value);
  }
  e << YAML::Key << "regdisk.io/vm" << YAML::Value;
  Text(e, spec.name);
  e << YAML::EndMap << YAML::EndMap;

  e << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "restartPolicy" << YAML::Value << "Never";
  std::vector<std::string> secrets;
  bool wrappers = o.volumes == PodVolumes::kContainer;
  bool container_disks = std::any_of(spec.disks.begin(), spec.disks.end(),
                                     [](const VmDisk& d) { return d.volume.kind == VolumeKind::kContainerDisk; });
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
  Volumes(e, spec, o);
  if (wrappers && container_disks) {
    e << YAML::Key << "initContainers" << YAML::Value << YAML::BeginSeq;
    InstallContainer(e, o);
    e << YAML::EndSeq;
  }
  e << YAML::Key << "containers" << YAML::Value << YAML::BeginSeq;
  ComputeContainer(e, spec, o);
  for (const VmDisk& d : spec.disks) {
    if (wrappers && d.volume.kind == VolumeKind::kContainerDisk) WrapperContainer(e, d, o);
  }
  e << YAML::EndSeq << YAML::EndMap << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace regdisk::vm
