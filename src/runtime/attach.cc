// Runner::Attach and Runner::PrepareFirmware: each disk of a spec becomes a
// file the domain attaches (see runner.h for the layout of ROOT/run/VM).
#include <filesystem>

#include "disk/overlay.h"
#include "runtime/runner.h"
#include "util/fs.h"
#include "vm/cloud_init.h"

namespace regdisk::runtime {
namespace {

std::string LeaseName(const std::string& vm, const std::string& disk) { return vm + "." + disk; }

// OVMF's vars templates are 128 KiB (2M builds) or 540 KiB (4M builds); a
// pflash vars volume is never near this.
constexpr uint64_t kMaxNvramTemplateBytes = 16 << 20;

}  // namespace

StatusOr<std::vector<vm::AttachedDisk>> Runner::Attach(const std::string& name, const vm::VmSpec& spec,
                                                       VmState& state) {
  // What can be refused without work goes first: file names from volume
  // names (one safe path component each, as VM names are).
  for (const vm::VmDisk& d : spec.disks) {
    if (d.volume.kind == vm::VolumeKind::kContainerDisk) continue;
    if (Status s = cache::CheckVmName(d.volume.name); !s.ok()) {
      return InvalidArgument("volume " + Quote(d.volume.name) + ": not usable as a file name");
    }
  }
  std::vector<vm::AttachedDisk> attached;
  for (const vm::VmDisk& d : spec.disks) {
    const vm::Volume& v = d.volume;
    vm::AttachedDisk a{d, "", "qcow2", "", ""};
    switch (v.kind) {
      case vm::VolumeKind::kContainerDisk: {
        const vm::RegistryDiskVolume& c = v.container;
        std::string image = c.image;
        if (auto pin = state.pins.find(d.name); pin != state.pins.end()) {
          auto ref = oci::Reference::Parse(image);
          auto digest = oci::Digest::Parse(pin->second);
          if (ref.ok() && digest.ok()) image = ref->WithDigest(*digest).str();
        }
        cache::PrepareRequest req{LeaseName(name, d.name), image, c.path, {}};
        if (c.pull_policy == "Always" || c.pull_policy == "IfNotPresent") {
          req.policy = *cache::ParsePullPolicy(c.pull_policy);
        }
        bool never = c.pull_policy == "Never";
        std::string secret = c.pull_secret;
        auto opener = [&](const oci::Reference& ref) -> StatusOr<std::unique_ptr<oci::Store>> {
          if (never) return NotFound("imagePullPolicy is Never and " + ref.str() + " is not in the node cache");
          return options_.open(ref, secret);
        };
        if (never) req.policy = cache::PullPolicy::kIfNotPresent;
        auto lease = cache_->Prepare(req, opener);
        if (!lease.ok()) return lease.status().Annotate("VM " + name + ", disk " + d.name);
        state.leases.push_back(*lease);
        state.pins[d.name] = lease->manifest.str();
        a.file = lease->overlay;
        a.base_file = lease->base_file;
        a.base_format = disk::FormatName(lease->base_format);
        break;
      }
      case vm::VolumeKind::kCloudInitNoCloud:
      case vm::VolumeKind::kCloudInitConfigDrive: {
        std::string file = v.name + ".iso";
        state.files.push_back(file);
        // KubeVirt: instance-id NAME.NAMESPACE, hostname spec.hostname
        // else the VMI's name (a replica's own name).
        std::string hostname = spec.hostname.empty() || spec.hostname == spec.name ? name : spec.hostname;
        vm::CloudInitSource src{v.kind == vm::VolumeKind::kCloudInitNoCloud ? vm::CloudInitKind::kNoCloud
                                                                             : vm::CloudInitKind::kConfigDrive,
                                name + "." + spec.ns, hostname, spec.uuid, v.cloud_init.user_data,
                                v.cloud_init.network_data};
        a.file = Dir(name) + "/" + file;
        a.file_format = "raw";
        RETURN_IF_ERROR(vm::WriteCloudInitIso(src, a.file).Annotate("VM " + name + ", volume " + v.name));
        break;
      }
      case vm::VolumeKind::kEmptyDisk: {
        std::string file = v.name + ".qcow2";
        state.files.push_back(file);
        a.file = Dir(name) + "/" + file;
        RETURN_IF_ERROR(disk::CreateEmptyDisk(a.file, v.capacity).Annotate("VM " + name + ", volume " + v.name));
        break;
      }
    }
    attached.push_back(std::move(a));
  }
  return attached;
}

Status Runner::PrepareFirmware(const std::string& name, const vm::VmSpec& spec, VmState& state,
                               vm::DomainOptions& dom) {
  vm::OvmfPaths ovmf = vm::OvmfFiles(spec.secure_boot);
  for (const std::string& f : {ovmf.code, ovmf.vars_template}) {
    if (!PathExists(f)) {
      return Unsupported("firmware.bootloader.efi: " + f + " is missing (install Debian's ovmf package)");
    }
  }
  ASSIGN_OR_RETURN(std::string vars, ReadFile(ovmf.vars_template, kMaxNvramTemplateBytes));
  const std::string file = "nvram.fd";
  state.files.push_back(file);
  dom.loader = ovmf.code;
  dom.nvram = Dir(name) + "/" + file;
  dom.nvram_template = ovmf.vars_template;
  return WriteFileAtomic(dom.nvram, vars, 0600).Annotate("VM " + name + ": EFI variables");
}

}  // namespace regdisk::runtime
