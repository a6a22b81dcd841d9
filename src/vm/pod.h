// The launcher Pod manifest for a VM (the controller role), in one of two
// forms: the VM's compute container plus, per container-disk volume,
// either a wrapper container running the disk image with the shared volume
// mounted (kContainer), or a Kubernetes image volume (kImage, the form
// KubeVirt uses since Kubernetes has ImageVolumeSource).
#pragma once

#include <map>
#include <string>

#include "vm/spec.h"

namespace regdisk::vm {

enum class PodVolumes { kContainer, kImage };

// The images have no defaults here: the caller names them (the CLI takes
// them from its flags or the local store).
struct PodOptions {
  PodVolumes volumes = PodVolumes::kContainer;
  std::string launcher_image;   // the compute container's image
  // An image holding /regdisk-serve: the base image (regdisk build-base).
  // Its init container installs regdisk-serve into bin_dir, so that disk
  // images built FROM scratch (no entrypoint of their own) serve too.
  // Used by the kContainer form only.
  std::string serve_image;
  std::string shared_dir = "/var/run/regdisk/disks";  // emptyDir mount path
  std::string bin_dir = "/var/run/regdisk/bin";       // emptyDir for regdisk-serve
  std::string image_dir = "/var/run/regdisk/images";  // kImage: volume NAME at image_dir/NAME
  // emptyDir where the launcher writes the cloud-init ISO and emptyDisk
  // qcow2s (KubeVirt's ephemeral-disks volume)
  std::string ephemeral_dir = "/var/run/regdisk/ephemeral";
  // Digest per disk name, to pin each wrapper's image reference
  // ("image@sha256:..."). A disk missing here keeps its reference as given.
  std::map<std::string, std::string> pinned_digests;
};

// Renders the Pod as YAML (apiVersion v1, kind Pod); labels are the VM's
// (template) labels plus regdisk.io/vm. The compute container requests the
// spec's resources.requests (else its limits, else the guest's vCPUs and
// memory) and limits as given; it mounts "regdisk-ephemeral" (an emptyDir) when the VM has
// cloud-init or emptyDisk volumes.
//
// kImage: each container-disk volume is a Pod volume "volume-NAME" with
// image {reference (pinned), pullPolicy}, mounted read-only in the compute
// container at image_dir/NAME; no other containers.
//
// kContainer: an init container
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
