// Runner::Attach and Runner::PrepareFirmware: each disk of a spec becomes a
// file the domain attaches (see runner.h for the layout of ROOT/run/VM).
#include <filesystem>

#include "disk/overlay.h"
#include "runtime/plan.h"
#include "runtime/runner.h"
#include "util/fs.h"
#include "vm/cloud_init.h"

namespace regdisk::runtime {
namespace {

// OVMF's vars templates are 128 KiB (2M builds) or 540 KiB (4M builds); a
// pflash vars volume is never near this.
constexpr uint64_t kMaxNvramTemplateBytes = 16 << 20;

}  // namespace

StatusOr<std::vector<vm::AttachedDisk>> Runner::Attach(const std::string& name, const vm::VmSpec& spec,
                                                       std::vector<vm::AttachedDisk> planned, VmState& state) {
  // What can be refused without work goes first: file names from volume
  // names (one safe path component each, as VM names are).
  for (const vm::VmDisk& d : spec.disks) {
    if (d.volume.kind == vm::VolumeKind::kContainerDisk) continue;
    if (Status s = cache::CheckVmName(d.volume.name); !s.ok()) {
      return InvalidArgument("volume " + Quote(d.volume.name) + ": not usable as a file name");
    }
  }
  for (vm::AttachedDisk& a : planned) {
    const vm::VmDisk& d = a.disk;
    const vm::Volume& v = d.volume;
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
        req.lazy = options_.lazy;
        if (options_.serve) {
          auto serve = options_.serve(secret);
          if (!serve.ok()) return serve.status().Annotate("VM " + name + ", disk " + d.name);
          req.serve = *serve;
        }
        auto lease = cache_->Prepare(req, opener);
        if (!lease.ok()) return lease.status().Annotate("VM " + name + ", disk " + d.name);
        state.leases.push_back(*lease);
        state.pins[d.name] = lease->manifest.str();
        a.file = lease->overlay;
        a.base_file = lease->base_file;
        a.base_nbd_socket = lease->nbd_socket;
        a.base_format = disk::FormatName(lease->base_format);
        break;
      }
      case vm::VolumeKind::kCloudInitNoCloud:
      case vm::VolumeKind::kCloudInitConfigDrive: {
        state.files.push_back(std::filesystem::path(a.file).filename());
        // KubeVirt: instance-id NAME.NAMESPACE, hostname spec.hostname
        // else the VMI's name (a replica's own name).
        std::string hostname = spec.hostname.empty() || spec.hostname == spec.name ? name : spec.hostname;
        vm::CloudInitSource src{v.kind == vm::VolumeKind::kCloudInitNoCloud ? vm::CloudInitKind::kNoCloud
                                                                             : vm::CloudInitKind::kConfigDrive,
                                name + "." + spec.ns, hostname, spec.uuid, v.cloud_init.user_data,
                                v.cloud_init.network_data};
        RETURN_IF_ERROR(vm::WriteCloudInitIso(src, a.file).Annotate("VM " + name + ", volume " + v.name));
        break;
      }
      case vm::VolumeKind::kEmptyDisk: {
        state.files.push_back(std::filesystem::path(a.file).filename());
        RETURN_IF_ERROR(disk::CreateEmptyDisk(a.file, v.capacity).Annotate("VM " + name + ", volume " + v.name));
        break;
      }
    }
  }
  return planned;
}

Status Runner::PrepareFirmware(const std::string& name, const vm::DomainOptions& dom, VmState& state) {
  for (const std::string& f : {dom.loader, dom.nvram_template}) {
    if (!PathExists(f)) {
      return Unsupported("firmware.bootloader.efi: " + f + " is missing (install Debian's ovmf package)");
    }
  }
  ASSIGN_OR_RETURN(std::string vars, ReadFile(dom.nvram_template, kMaxNvramTemplateBytes));
  state.files.push_back(std::filesystem::path(dom.nvram).filename());
  return WriteFileAtomic(dom.nvram, vars, 0600).Annotate("VM " + name + ": EFI variables");
}

}  // namespace regdisk::runtime
