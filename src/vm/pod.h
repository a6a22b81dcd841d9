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
  // An image holding /regdisk-serve: the base image (regdisk build-base).
  // Its init container installs regdisk-serve into bin_dir, so that disk
  // images built FROM scratch (no entrypoint of their own) serve too.
  std::string serve_image = "kubevirt.io/registry-disk-v1alpha";
  std::string shared_dir = "/var/run/regdisk/disks";  // emptyDir mount path
  std::string bin_dir = "/var/run/regdisk/bin";       // emptyDir for regdisk-serve
  // Digest per disk name, to pin each wrapper's image reference
  // ("image@sha256:..."). A disk missing here keeps its reference as given.
  std::map<std::string, std::string> pinned_digests;
};

// Renders the Pod as YAML (apiVersion v1, kind Pod). An init container
// "install-regdisk-serve" (serve_image, command ["/regdisk-serve",
// "--install", BIN]) copies the static regdisk-serve into the "regdisk-bin"
// emptyDir, as KubeVirt injects its container-disk binary. Wrapper
// containers: name "volume-<volume name>", image pinned by digest, command
// [BIN/regdisk-serve, ("--disk", PATH,) "--dest", SHARED/<volume>],
// readinessProbe exec [BIN/regdisk-serve, "--ready", SHARED/<volume>],
// resources requests cpu 10m memory 16Mi (limits cpu 100m memory 40Mi),
// securityContext runAsUser/runAsGroup 107, runAsNonRoot true,
// allowPrivilegeEscalation false, capabilities drop ALL; the shared
// "regdisk-disks" emptyDir mounted in every container, "regdisk-bin"
// read-only in the wrappers; imagePullPolicy and imagePullSecrets from the
// spec. Deterministic.
std::string RenderLauncherPod(const VmSpec& spec, const PodOptions& o);

}  // namespace regdisk::vm
