// regdisk run, stop, ls, render pod, render domain: VMs from specs that
// name registry disks, booted through libvirt on this node.
#include <cstdio>

#include "cache/node_cache.h"
#include "cli/common.h"
#include "runtime/runner.h"
#include "util/fs.h"
#include "util/progress.h"
#include "vm/domain_xml.h"
#include "vm/pod.h"
#include "vm/spec.h"

namespace regdisk::cli {
namespace {

// The base image regdisk build-base makes (its README name): the default
// --serve-image, pinned by its digest in the local store.
constexpr const char* kBaseImage = "kubevirt.io/registry-disk-v1alpha";

struct VmArgs {
  std::vector<std::string> spec_files;
  std::string name, root, uri, launcher_image, serve_image, volumes = "container";
  bool console = false, kvm = false, forget = false, no_resolve = false;
  int console_timeout = 0;
  RegistryFlags reg;
};

// The spec files as one set of documents (a VM and the Secrets,
// instancetypes and preferences it refers to may be in separate files).
StatusOr<std::vector<vm::VmSet>> LoadSpecs(const std::vector<std::string>& files) {
  std::vector<vm::SpecFile> specs;
  for (const std::string& f : files) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(f, 1 << 20));
    specs.push_back({f, std::move(text)});
  }
  return vm::ParseVmFiles(specs);
}

// Pins each container disk's tag to the digest it names now (registry access);
// with `check_readable`, also refuses a disk qemu (UID 107) cannot read.
StatusOr<std::map<std::string, std::string>> PinDisks(const VmArgs& a, const vm::VmSpec& spec,
                                                       bool check_readable) {
  std::map<std::string, std::string> pins;
  for (const auto& d : spec.disks) {
    if (d.volume.kind != vm::VolumeKind::kContainerDisk) continue;
    ASSIGN_OR_RETURN(oci::Reference ref, oci::Reference::Parse(d.volume.container.image));
    if (ref.digest && !check_readable) continue;
    ASSIGN_OR_RETURN(auto store, OpenRegistry(a.reg, ref));
    std::optional<oci::Digest> digest = ref.digest;
    if (!digest) {
      auto m = store->GetManifest(ref.tag);
      if (!m.ok()) return m.status().Annotate(ref.str());
      digest = m->descriptor.digest;
      pins[d.name] = digest->str();
    }
    // A disk qemu (UID 107) could not read would fail only inside the Pod.
    if (check_readable) {
      RETURN_IF_ERROR(cache::CheckDiskReadable(*store, *digest, d.volume.container.path, {}).Annotate(ref.str()));
    }
  }
  return pins;
}

StatusOr<std::unique_ptr<runtime::Runner>> OpenRunner(const VmArgs& a) {
  runtime::RunnerOptions o;
  o.cache.root = NodeRoot(a.root);
  o.libvirt_uri = a.uri;
  o.domain_type = a.kvm ? "kvm" : "qemu";
  std::string root = o.cache.root;
  RegistryFlags reg = a.reg;
  o.open = [root, reg](const oci::Reference& ref, const std::string& secret) {
    std::string auth_file;
    if (!secret.empty()) {
      Status bad = cache::CheckVmName(secret);  // same rules: one safe path component
      if (!bad.ok()) return StatusOr<std::unique_ptr<oci::Store>>(InvalidArgument("imagePullSecret \"" + secret + "\" is not a valid name"));
      auth_file = root + "/secrets/" + secret + ".json";
      if (!PathExists(auth_file)) {
        return StatusOr<std::unique_ptr<oci::Store>>(
            NotFound("imagePullSecret \"" + secret + "\": no auth file " + auth_file));
      }
    }
    return OpenRegistry(reg, ref, auth_file);
  };
  return runtime::Runner::Open(std::move(o));
}

int RunRun(const VmArgs& a) {
  auto sets = LoadSpecs(a.spec_files);
  if (!sets.ok()) return Fail(sets.status());
  auto runner = OpenRunner(a);
  if (!runner.ok()) return Fail(runner.status());
  std::vector<runtime::RunResult> results;
  for (const vm::VmSet& set : *sets) {
    auto r = (*runner)->Run(set);
    if (!r.ok()) return Fail(r.status());
    results.insert(results.end(), r->begin(), r->end());
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
      if (!r.started) continue;
      Status s = (*runner)->FollowConsole(r.name, stdout, a.console_timeout);
      if (!s.ok()) return Fail(s);
    }
  }
  return 0;
}

int RunStop(const VmArgs& a) {
  auto runner = OpenRunner(a);
  if (!runner.ok()) return Fail(runner.status());
  Status s = (*runner)->Stop(a.name, a.forget);
  if (!s.ok()) return Fail(s);
  std::printf("stopped %s\n", a.name.c_str());
  return 0;
}

int RunConsole(const VmArgs& a) {
  auto runner = OpenRunner(a);
  if (!runner.ok()) return Fail(runner.status());
  Status s = (*runner)->FollowConsole(a.name, stdout, a.console_timeout);
  return s.ok() ? 0 : Fail(s);
}

int RunLs(const VmArgs& a) {
  auto runner = OpenRunner(a);
  if (!runner.ok()) return Fail(runner.status());
  auto vms = (*runner)->List();
  if (!vms.ok()) return Fail(vms.status());
  std::printf("%-30s %-8s %s\n", "NAME", "STATE", "DISKS");
  for (const auto& v : *vms) {
    std::string disks;
    for (const auto& [disk, digest] : v.pins) disks += (disks.empty() ? "" : " ") + disk + "@" + digest.substr(0, 19);
    const char* state = v.running ? "running" : v.run_strategy == "Halted" ? "halted" : "stopped";
    std::printf("%-30s %-8s %s\n", v.name.c_str(), state, disks.c_str());
  }
  return 0;
}

// The default --serve-image: the base image in the local store, pinned.
StatusOr<std::string> DefaultServeImage(const Globals& g) {
  auto base = OpenImage(g, kBaseImage, false);
  auto m = base.ok() ? base->store->GetManifest(base->location.tag) : StatusOr<oci::RawManifest>(base.status());
  if (!m.ok()) {
    return InvalidArgument(std::string("--serve-image is required: ") + kBaseImage +
                           " is not in the local store (make it with regdisk build-base -t " + kBaseImage + ")");
  }
  return std::string(kBaseImage) + "@" + m->descriptor.digest.str();
}

int RunRenderPod(const Globals& g, const VmArgs& a) {
  auto sets = LoadSpecs(a.spec_files);
  if (!sets.ok()) return Fail(sets.status());
  vm::PodOptions o;
  if (a.volumes != "container" && a.volumes != "image") {
    return Fail(InvalidArgument("--volumes " + a.volumes + ": want container or image"));
  }
  o.volumes = a.volumes == "image" ? vm::PodVolumes::kImage : vm::PodVolumes::kContainer;
  if (a.launcher_image.empty()) {
    return Fail(InvalidArgument("--launcher-image is required: regdisk builds no launcher image"));
  }
  o.launcher_image = a.launcher_image;
  o.serve_image = a.serve_image;
  std::string out;
  for (const vm::VmSet& set : *sets) {
    bool wrappers = o.volumes == vm::PodVolumes::kContainer &&
                    std::any_of(set.vm.disks.begin(), set.vm.disks.end(), [](const vm::VmDisk& d) {
                      return d.volume.kind == vm::VolumeKind::kContainerDisk;
                    });
    if (wrappers && o.serve_image.empty()) {
      auto serve = DefaultServeImage(g);
      if (!serve.ok()) return Fail(serve.status());
      o.serve_image = *serve;
    }
    o.pinned_digests.clear();
    if (!a.no_resolve) {
      auto pins = PinDisks(a, set.vm, /*check_readable=*/true);
      if (!pins.ok()) return Fail(pins.status());
      o.pinned_digests = *pins;
    }
    out += (out.empty() ? "" : "---\n") + vm::RenderLauncherPod(set.vm, o);
  }
  std::printf("%s", out.c_str());
  return 0;
}

// Where run puts a VM's files: per-VM files under ROOT/run/NAME, container
// disks over the node cache (whose paths are known only once the disk is
// pulled: placeholders named after the image, pinned when resolved).
std::vector<vm::AttachedDisk> PlannedDisks(const std::string& dir, const std::string& root, const vm::VmSpec& spec,
                                           const std::map<std::string, std::string>& pins) {
  std::vector<vm::AttachedDisk> out;
  for (const vm::VmDisk& d : spec.disks) {
    switch (d.volume.kind) {
      case vm::VolumeKind::kContainerDisk: {
        auto pin = pins.find(d.name);
        std::string image = pin == pins.end() ? d.volume.container.image : pin->second;
        out.push_back({d, dir + "/" + d.name + ".overlay.qcow2", "qcow2", root + "/disks/(" + image + ")/disk", "raw"});
        break;
      }
      case vm::VolumeKind::kEmptyDisk:
        out.push_back({d, dir + "/" + d.volume.name + ".qcow2", "qcow2", "", ""});
        break;
      default:
        out.push_back({d, dir + "/" + d.volume.name + ".iso", "raw", "", ""});
    }
  }
  return out;
}

int RunRenderDomain(const VmArgs& a) {
  auto sets = LoadSpecs(a.spec_files);
  if (!sets.ok()) return Fail(sets.status());
  std::string root = NodeRoot(a.root), out;
  for (const vm::VmSet& set : *sets) {
    std::map<std::string, std::string> pins;
    if (!a.no_resolve) {
      auto p = PinDisks(a, set.vm, /*check_readable=*/false);
      if (!p.ok()) return Fail(p.status());
      pins = *p;
    }
    for (int i = 0; i < set.replicas; ++i) {
      vm::VmSpec spec = set.vm;
      if (set.replicas > 1) spec.name += "-" + std::to_string(i);
      std::string dir = root + "/run/" + spec.name;
      vm::DomainOptions o;
      o.domain_type = a.kvm ? "kvm" : "qemu";
      o.console_log = dir + "/console.log";
      if (spec.firmware == vm::Firmware::kEfi) {
        vm::OvmfPaths ovmf = vm::OvmfFiles(spec.secure_boot);
        o.loader = ovmf.code;
        o.nvram_template = ovmf.vars_template;
        o.nvram = dir + "/nvram.fd";
      }
      out += vm::RenderDomainXml(spec, PlannedDisks(dir, root, spec, pins), o);
    }
  }
  std::printf("%s", out.c_str());
  return 0;
}

}  // namespace

void RegisterVm(CLI::App& app, Globals& g, int& exit_code) {
  auto a = std::make_shared<VmArgs>();
  auto common = [&](CLI::App* c) {
    c->add_option("--root", a->root, "node state root (default $REGDISK_ROOT or /var/lib/regdisk)");
    c->add_option("-c,--connect", a->uri, "libvirt URI (default $LIBVIRT_DEFAULT_URI or qemu:///system)");
  };
  auto* run = app.add_subcommand("run", "Boot the VMs of a spec whose disks are registry disks")
                  ->footer("Example: regdisk run vm.yaml secrets.yaml --console\n"
                           "Each registry disk becomes a per-VM qcow2 overlay on one cached, verified copy;\n"
                           "cloud-init volumes an ISO (cidata / config-2), emptyDisks a sparse qcow2, EFI its\n"
                           "own NVRAM: all per VM, gone when it stops. runStrategy Halted starts nothing;\n"
                           "Always / RerunOnFailure are restarted in place by libvirt; Once / Manual never.\n"
                           "Specs: KubeVirt's VirtualMachine, VirtualMachineInstance and replica sets (and the\n"
                           "2018 kinds); see the README's table of supported fields.");
  run->add_option("spec", a->spec_files, "VM spec YAML files (with the Secrets, instancetypes and preferences they use)")
      ->required();
  run->add_flag("--console", a->console, "follow the serial console until the VM stops");
  run->add_option("--console-timeout", a->console_timeout, "stop following after N seconds (0: never)");
  run->add_flag("--kvm", a->kvm, "use KVM instead of TCG");
  common(run);
  a->reg.Add(run);
  run->callback([&exit_code, a] { exit_code = RunRun(*a); });

  auto* stop = app.add_subcommand("stop", "Stop a VM and drop its overlays (its digests stay pinned)");
  stop->add_option("name", a->name, "VM name")->required();
  stop->add_flag("--forget", a->forget, "also forget the VM and its pinned digests");
  common(stop);
  stop->callback([&exit_code, a] { exit_code = RunStop(*a); });

  auto* console = app.add_subcommand("console", "Print a VM's serial console, following it until the VM stops")
                      ->footer("Example: regdisk console web-0 --timeout 120");
  console->add_option("name", a->name, "VM name")->required();
  console->add_option("--timeout", a->console_timeout, "give up after N seconds (0: never)");
  common(console);
  console->callback([&exit_code, a] { exit_code = RunConsole(*a); });

  auto* ls = app.add_subcommand("ls", "List VMs on this node");
  common(ls);
  ls->callback([&exit_code, a] { exit_code = RunLs(*a); });

  auto* render = app.add_subcommand("render", "Render manifests for a VM spec")->require_subcommand(1);
  auto* pod = render->add_subcommand("pod", "The launcher Pod: wrapper containers or image volumes for the disks");
  pod->add_option("spec", a->spec_files, "VM spec YAML files")->required();
  pod->add_option("--volumes", a->volumes,
                  "container: a wrapper container per disk (default); image: Kubernetes image volumes");
  pod->add_option("--launcher-image", a->launcher_image, "the compute container's image (required)");
  pod->add_option("--serve-image", a->serve_image,
                  "the image whose /regdisk-serve the init container installs for the disk containers "
                  "(default: kubevirt.io/registry-disk-v1alpha from the local store, as regdisk build-base "
                  "makes it, pinned by digest)");
  pod->add_flag("--no-resolve", a->no_resolve, "do not pin image tags to digests (no registry access)");
  a->reg.Add(pod);
  pod->callback([&g, &exit_code, a] { exit_code = RunRenderPod(g, *a); });

  auto* dom = render->add_subcommand("domain", "The libvirt domain XML run would define, without starting anything")
                  ->footer("Per-VM files (overlays, cloud-init ISOs, emptyDisks, NVRAM) are named where run puts\n"
                           "them; cached disks are placeholders named after their image.");
  dom->add_option("spec", a->spec_files, "VM spec YAML files")->required();
  dom->add_flag("--kvm", a->kvm, "as run --kvm");
  dom->add_flag("--no-resolve", a->no_resolve, "do not pin image tags to digests (offline)");
  dom->add_option("--root", a->root, "node state root (default $REGDISK_ROOT or /var/lib/regdisk)");
  a->reg.Add(dom);
  dom->callback([&exit_code, a] { exit_code = RunRenderDomain(*a); });
}

}  // namespace regdisk::cli
