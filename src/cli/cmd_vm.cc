// regdisk run, stop, console, ls, render pod, render domain: VMs from
// KubeVirt specs whose disks are registry disks, booted through libvirt on
// this node, or rendered as the manifests a cluster would run; and render
// daemonset, the nodes' peer servers.
#include <algorithm>
#include <cstdio>

#include "cache/node_cache.h"
#include "cli/verbs.h"
#include "peer/protocol.h"
#include "resolve/image.h"
#include "runtime/plan.h"
#include "runtime/runner.h"
#include "util/fs.h"
#include "vm/daemonset.h"
#include "vm/domain_xml.h"
#include "vm/pod.h"
#include "vm/spec.h"

namespace regdisk::cli {
namespace {

// The base image regdisk build-base makes (its README name): the default
// --serve-image, pinned by its digest in the local store.
constexpr const char* kBaseImage = "kubevirt.io/registry-disk-v1alpha";
// A spec file is YAML a person writes: a few KiB; 1 MiB leaves room for
// Secrets given alongside.
constexpr uint64_t kMaxSpecFileBytes = 1 << 20;

struct VmArgs {
  std::vector<std::string> spec_files;
  std::string name, root, uri, launcher_image, serve_image, volumes = "container";
  bool console = false, kvm = false, forget = false, no_resolve = false, lazy = true;
  int console_timeout = 0;
  resolve::RegistryFlags reg;
  resolve::FillFlags fill;
  std::string max_disk;  // --max-disk-size
};

// The spec files as one set of documents (a VM and the Secrets,
// instancetypes and preferences it refers to may be in separate files).
StatusOr<std::vector<vm::VmSet>> LoadSpecs(const std::vector<std::string>& files) {
  std::vector<vm::SpecFile> specs;
  for (const std::string& f : files) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(f, kMaxSpecFileBytes));
    specs.push_back({f, std::move(text)});
  }
  return vm::ParseVmFiles(specs);
}

// Pins each container disk's tag to the digest it names now (registry
// access); with `check_readable`, also refuses a disk qemu (UID 107) cannot
// read, which would otherwise fail only inside the Pod.
StatusOr<std::map<std::string, std::string>> PinDisks(const VmArgs& a, const vm::VmSpec& spec,
                                                       bool check_readable) {
  std::map<std::string, std::string> pins;
  cache::CacheOptions check;
  if (check_readable) {
    ASSIGN_OR_RETURN(uint64_t max_disk, resolve::MaxDiskSize(a.max_disk));
    check.limits = layer::ExtractLimits::ForMaxDiskSize(max_disk);
  }
  for (const auto& d : spec.disks) {
    if (d.volume.kind != vm::VolumeKind::kContainerDisk) continue;
    ASSIGN_OR_RETURN(oci::Reference ref, oci::Reference::Parse(d.volume.container.image));
    if (ref.digest && !check_readable) continue;
    ASSIGN_OR_RETURN(auto store, resolve::OpenRegistry(a.reg, ref));
    std::optional<oci::Digest> digest = ref.digest;
    if (!digest) {
      auto m = store->GetManifest(ref.tag);
      if (!m.ok()) return m.status().Annotate(ref.str());
      digest = m->descriptor.digest;
      pins[d.name] = digest->str();
    }
    if (check_readable) {
      RETURN_IF_ERROR(cache::CheckDiskReadable(*store, *digest, d.volume.container.path, check).Annotate(ref.str()));
    }
  }
  return pins;
}

StatusOr<std::unique_ptr<runtime::Runner>> OpenRunner(const VmArgs& a) {
  runtime::RunnerOptions o;
  o.cache.root = resolve::NodeRoot(a.root);
  ASSIGN_OR_RETURN(uint64_t max_disk, resolve::MaxDiskSize(a.max_disk));
  o.cache.limits = layer::ExtractLimits::ForMaxDiskSize(max_disk);
  o.cache.open_peers = OpenPeers;
  o.libvirt_uri = a.uri;
  o.domain_type = a.kvm ? "kvm" : "qemu";
  std::string root = o.cache.root;
  resolve::RegistryFlags reg = a.reg;
  o.open = [root, reg](const oci::Reference& ref,
                       const std::string& secret) -> StatusOr<std::unique_ptr<oci::Store>> {
    ASSIGN_OR_RETURN(std::string auth_file, resolve::PullSecretFile(root, secret));
    return resolve::OpenRegistry(reg, ref, auth_file);
  };
  o.lazy = a.lazy && a.reg.creds.empty();  // --creds is never written down for a serving process
  o.serve = [root, reg, fill = a.fill](const std::string& secret) -> StatusOr<lazy::ServeConfig> {
    ASSIGN_OR_RETURN(std::string auth_file, resolve::PullSecretFile(root, secret));
    return resolve::ServeSettings(reg, fill, auth_file);
  };
  return runtime::Runner::Open(std::move(o));
}

Status RunRun(const VmArgs& a) {
  ASSIGN_OR_RETURN(std::vector<vm::VmSet> sets, LoadSpecs(a.spec_files));
  ASSIGN_OR_RETURN(auto runner, OpenRunner(a));
  std::vector<runtime::RunResult> results;
  for (const vm::VmSet& set : sets) {
    ASSIGN_OR_RETURN(auto r, runner->Run(set));
    results.insert(results.end(), r.begin(), r.end());
  }
  for (const auto& r : results) {
    if (r.started) {
      std::printf("started %s\n", r.name.c_str());
    } else {
      std::printf("%s is Halted (runStrategy: Halted): recorded, not started\n", r.name.c_str());
    }
  }
  std::fflush(stdout);
  if (a.console) {
    for (const auto& r : results) {
      if (r.started) RETURN_IF_ERROR(runner->FollowConsole(r.name, stdout, a.console_timeout));
    }
  }
  return OkStatus();
}

Status RunStop(const VmArgs& a) {
  ASSIGN_OR_RETURN(auto runner, OpenRunner(a));
  RETURN_IF_ERROR(runner->Stop(a.name, a.forget));
  std::printf("stopped %s\n", a.name.c_str());
  return OkStatus();
}

Status RunConsole(const VmArgs& a) {
  ASSIGN_OR_RETURN(auto runner, OpenRunner(a));
  return runner->FollowConsole(a.name, stdout, a.console_timeout);
}

Status RunLs(const VmArgs& a) {
  ASSIGN_OR_RETURN(auto runner, OpenRunner(a));
  ASSIGN_OR_RETURN(auto vms, runner->List());
  std::printf("%-30s %-8s %s\n", "NAME", "STATE", "DISKS");
  for (const auto& v : vms) {
    std::string disks;
    for (const auto& [disk, digest] : v.pins) disks += (disks.empty() ? "" : " ") + disk + "@" + digest.substr(0, 19);
    const char* state = v.running ? "running" : v.run_strategy == "Halted" ? "halted" : "stopped";
    std::printf("%-30s %-8s %s\n", OneLine(v.name).c_str(), state, OneLine(disks).c_str());
  }
  return OkStatus();
}

// The default --serve-image: the base image in the local store, pinned.
StatusOr<std::string> DefaultServeImage(const Globals& g) {
  auto base = resolve::OpenLayoutImage(g.store, kBaseImage, false);
  auto m = base.ok() ? base->store->GetManifest(base->location.tag) : StatusOr<oci::RawManifest>(base.status());
  if (!m.ok()) {
    return InvalidArgument(std::string("--serve-image is required: ") + kBaseImage +
                           " is not in the local store (make it with regdisk build-base -t " + kBaseImage + ")");
  }
  return std::string(kBaseImage) + "@" + m->descriptor.digest.str();
}

Status RunRenderPod(const Globals& g, const VmArgs& a) {
  if (a.volumes != "container" && a.volumes != "image") {
    return InvalidArgument("--volumes " + Quote(a.volumes) + ": want container or image");
  }
  if (a.launcher_image.empty()) return InvalidArgument("--launcher-image is required: regdisk builds no launcher image");
  ASSIGN_OR_RETURN(std::vector<vm::VmSet> sets, LoadSpecs(a.spec_files));
  vm::PodOptions o;
  o.volumes = a.volumes == "image" ? vm::PodVolumes::kImage : vm::PodVolumes::kContainer;
  o.launcher_image = a.launcher_image;
  o.serve_image = a.serve_image;
  std::string out;
  for (const vm::VmSet& set : sets) {
    bool wrappers = o.volumes == vm::PodVolumes::kContainer &&
                    std::any_of(set.vm.disks.begin(), set.vm.disks.end(), [](const vm::VmDisk& d) {
                      return d.volume.kind == vm::VolumeKind::kContainerDisk;
                    });
    if (wrappers && o.serve_image.empty()) {
      ASSIGN_OR_RETURN(o.serve_image, DefaultServeImage(g));
    }
    o.pinned_digests.clear();
    if (!a.no_resolve) {
      ASSIGN_OR_RETURN(o.pinned_digests, PinDisks(a, set.vm, /*check_readable=*/true));
    }
    out += (out.empty() ? "" : "---\n") + vm::RenderLauncherPod(set.vm, o);
  }
  std::printf("%s", out.c_str());
  return OkStatus();
}

Status RunRenderDomain(const VmArgs& a) {
  ASSIGN_OR_RETURN(std::vector<vm::VmSet> sets, LoadSpecs(a.spec_files));
  std::string root = resolve::NodeRoot(a.root), out;
  for (const vm::VmSet& set : sets) {
    std::map<std::string, std::string> pins;
    if (!a.no_resolve) {
      ASSIGN_OR_RETURN(pins, PinDisks(a, set.vm, /*check_readable=*/false));
    }
    for (int i = 0; i < set.replicas; ++i) {
      vm::VmSpec spec = set.vm;
      spec.name = vm::ReplicaName(set, i);
      // The files run would make; a cached disk is known once pulled: a
      // placeholder named after its image (pinned when resolved).
      runtime::VmPlan plan = runtime::PlanVm(root, spec.name, spec);
      for (vm::AttachedDisk& d : plan.disks) {
        if (d.disk.volume.kind != vm::VolumeKind::kContainerDisk) continue;
        auto pin = pins.find(d.disk.name);
        d.base_file = root + "/disks/(" + (pin == pins.end() ? d.disk.volume.container.image : pin->second) + ")/disk";
        d.base_format = "raw";
      }
      plan.domain.domain_type = a.kvm ? "kvm" : "qemu";
      out += vm::RenderDomainXml(spec, plan.disks, plan.domain);
    }
  }
  std::printf("%s", out.c_str());
  return OkStatus();
}

Status RunRenderDaemonSet(const vm::NodeDaemonSetOptions& o) {
  ASSIGN_OR_RETURN(std::string yaml, vm::RenderNodeDaemonSet(o));
  std::printf("%s", yaml.c_str());
  return OkStatus();
}

void AddSpecFiles(CLI::App* cmd, VmArgs& a) {
  cmd->add_option("spec", a.spec_files, "VM spec YAML files (with the Secrets, instancetypes and preferences they use)")
      ->required();
}

}  // namespace

std::vector<Verb> VmVerbs() {
  // Every VM verb has its own arguments and the node's --root and libvirt URI.
  auto verb = ArgsVerbsWith<VmArgs>([](CLI::App* cmd, VmArgs& a) {
    AddRootFlag(cmd, a.root);
    cmd->add_option("-c,--connect", a.uri, "libvirt URI (default $LIBVIRT_DEFAULT_URI or qemu:///system)");
  });
  // render pod reads the local store (the default --serve-image) and writes
  // YAML: no node flags.
  Verb render_pod{
      "render pod", "The launcher Pod: wrapper containers or image volumes for the disks",
      {"regdisk render pod vm.yaml --launcher-image registry.example.com/virt-launcher@sha256:...",
       "regdisk render pod vm.yaml --volumes image --launcher-image L --no-resolve"},
      "Image tags are pinned to the digests the registry gives now, unless --no-resolve; a disk\n"
      "qemu (UID 107) cannot read is refused (this reads the disk layers' tar headers, which\n"
      "means downloading the layers). --volumes image renders Kubernetes image volumes\n"
      "(KubeVirt since v1.6) instead of one wrapper container per disk.\n",
      [](CLI::App* cmd, const Globals& g) -> Action {
        auto a = std::make_shared<VmArgs>();
        AddSpecFiles(cmd, *a);
        cmd->add_option("--volumes", a->volumes,
                        "container: a wrapper container per disk (default); image: Kubernetes image volumes");
        cmd->add_option("--launcher-image", a->launcher_image, "the compute container's image (required)");
        cmd->add_option("--serve-image", a->serve_image,
                        "the image whose /regdisk-serve the init container installs for the disk containers "
                        "(default: kubevirt.io/registry-disk-v1alpha from the local store, as regdisk build-base "
                        "makes it, pinned by digest)");
        cmd->add_flag("--no-resolve", a->no_resolve, "do not pin image tags to digests (no registry access)");
        AddRegistryFlags(cmd, a->reg);
        AddMaxDiskSizeFlag(cmd, a->max_disk);
        return [&g, a] { return RunRenderPod(g, *a); };
      }};
  Verb render_domain = ArgsVerb<VmArgs>(
      "render domain", "The libvirt domain XML run would define, without starting anything",
      {"regdisk render domain vm.yaml --no-resolve"},
      "Per-VM files (overlays, cloud-init ISOs, emptyDisks, NVRAM) are named where run puts\n"
      "them; cached disks are placeholders named after their image (format raw until pulled).\n",
      [](CLI::App* cmd, VmArgs& a) {
        AddSpecFiles(cmd, a);
        cmd->add_flag("--kvm", a.kvm, "as run --kvm");
        cmd->add_flag("--no-resolve", a.no_resolve, "do not pin image tags to digests (offline)");
        AddRootFlag(cmd, a.root);
        AddRegistryFlags(cmd, a.reg);
      },
      RunRenderDomain);
  Verb render_daemonset = ArgsVerb<vm::NodeDaemonSetOptions>(
      "render daemonset", "The node DaemonSet (a peer server per node) and the headless Service that finds them",
      {"regdisk render daemonset --image registry.example.com/regdisk/node:v1 | kubectl apply -f -",
       "regdisk render daemonset --image IMG --namespace vms --port 7481 --host-network=false"},
      "Each node runs `regdisk-node peer --root ROOT --listen 0.0.0.0:PORT`: it serves the\n"
      "verified v2 chunks of its cache (ROOT, a hostPath) to the other nodes, which verify every\n"
      "byte again. Host network by default; --host-network=false maps a hostPort instead. The\n"
      "headless Service regdisk-peers lists every node; point the nodes' run/prepare at it with\n"
      "  --peers dns:regdisk-peers.NAMESPACE.svc.cluster.local:PORT   (A records)\n"
      "  --peers srv:_peer._tcp.regdisk-peers.NAMESPACE.svc.cluster.local   (SRV records)\n"
      "regdisk builds no image holding regdisk-node: --image is required (regdisk-node on its PATH).\n",
      [](CLI::App* cmd, vm::NodeDaemonSetOptions& o) {
        o.port = peer::kDefaultPort;
        cmd->add_option("--image", o.image, "the image holding regdisk-node on its PATH (required)");
        cmd->add_option("--namespace", o.ns, "the namespace of both objects")->capture_default_str();
        cmd->add_option("--root", o.root, "the node cache on each node, a hostPath")->capture_default_str();
        cmd->add_option("--port", o.port, "the peer servers' TCP port")->capture_default_str();
        cmd->add_flag("--host-network", o.host_network,
                      "run in the node's network (default); --host-network=false: a hostPort");
      },
      RunRenderDaemonSet);
  return {
      verb("run", "Boot the VMs of KubeVirt specs whose disks are registry disks",
           {"regdisk run vm.yaml --console", "regdisk run vm.yaml secrets.yaml"},
           "Each registry disk becomes a per-VM qcow2 overlay on one cached, verified copy;\n"
           "cloud-init volumes an ISO (cidata / config-2), emptyDisks a sparse qcow2, EFI its\n"
           "own NVRAM: all per VM, gone when it stops. runStrategy Halted starts nothing;\n"
           "Always / RerunOnFailure are restarted in place by libvirt; Once / Manual never.\n"
           "Specs: KubeVirt's VirtualMachine, VirtualMachineInstance and replica sets (and the\n"
           "2018 kinds); see the README's table of supported fields.\n",
           [](CLI::App* cmd, VmArgs& a) {
             AddSpecFiles(cmd, a);
             cmd->add_flag("--console", a.console, "follow the serial console until the VM stops");
             cmd->add_option("--console-timeout", a.console_timeout, "stop following after N seconds (0: never)");
             cmd->add_flag("--kvm", a.kvm, "use KVM instead of TCG");
             cmd->add_flag("--lazy", a.lazy,
                           "serve v2 images' disks over NBD as their chunks arrive (default); --lazy=false "
                           "pulls every disk whole before the VM starts");
             AddFillFlags(cmd, a.fill);
             AddRegistryFlags(cmd, a.reg);
             AddMaxDiskSizeFlag(cmd, a.max_disk);
           },
           RunRun),
      verb("stop", "Stop a VM and drop its overlays (its digests stay pinned)",
           {"regdisk stop web-0", "regdisk stop web-0 --forget"}, "",
           [](CLI::App* cmd, VmArgs& a) {
             cmd->add_option("name", a.name, "VM name")->required();
             cmd->add_flag("--forget", a.forget, "also forget the VM and its pinned digests");
           },
           RunStop),
      verb("console", "Print a VM's serial console, following it until the VM stops",
           {"regdisk console web-0 --timeout 120"}, "",
           [](CLI::App* cmd, VmArgs& a) {
             cmd->add_option("name", a.name, "VM name")->required();
             cmd->add_option("--timeout", a.console_timeout, "give up after N seconds (0: never)");
           },
           RunConsole),
      verb("ls", "List VMs on this node", {"regdisk ls"}, "", [](CLI::App*, VmArgs&) {}, RunLs),
      render_pod,
      render_domain,
      render_daemonset,
  };
}

}  // namespace regdisk::cli
