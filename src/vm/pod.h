// The launcher Pod manifest for a VM (the controller role): the VM's
// compute container plus, per registry-disk volume, a wrapper container
// running the disk image with the shared volume mounted.
#pragma once

#include <map>
#include <string>

#include "vm/spec.h"

namespace regdisk::vm {

struct PodOptions {
  std::string launcher_image = "regdisk/virt-launcher:v1alpha";
  std::string shared_dir = "/var/run/regdisk/disks";  // emptyDir mount path
  // Digest per disk name, to pin each wrapper's image reference
  // ("image@sha256:..."). A disk missing here keeps its reference as given.
  std::map<std::string, std::string> pinned_digests;
};

// Renders the Pod as YAML (apiVersion v1, kind Pod). Wrapper containers:
// name "volume-<volume name>", image pinned by digest, command
// ["/regdisk-serve", "--disk", PATH_OR_EMPTY, "--dest", SHARED/<volume>],
// readinessProbe exec ["/regdisk-serve", "--ready", SHARED/<volume>],
// resources requests cpu 10m memory 16Mi (limits cpu 100m memory 40Mi),
// securityContext runAsUser/runAsGroup 107, runAsNonRoot true,
// allowPrivilegeEscalation false, capabilities drop ALL; the shared
// emptyDir volume mounted in every container; imagePullPolicy and
// imagePullSecrets from the spec. Deterministic.
std::string RenderLauncherPod(const VmSpec& spec, const PodOptions& o);

}  // namespace regdisk::vm
