// regdisk run, stop, ls, render pod: VMs from specs that name registry
// disks, booted through libvirt on this node.
#include <cstdio>

#include "cache/node_cache.h"
#include "cli/common.h"
#include "runtime/runner.h"
#include "util/fs.h"
#include "util/progress.h"
#include "vm/pod.h"
#include "vm/spec.h"

namespace regdisk::cli {
namespace {

struct VmArgs {
  std::string spec_file, name, root, uri, launcher_image, serve_image;
  bool console = false, kvm = false, forget = false, no_resolve = false;
  int console_timeout = 0;
  RegistryFlags reg;
};

StatusOr<vm::VmSet> LoadSpec(const std::string& file) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(file, 1 << 20));
  auto set = vm::ParseVmYaml(text);
  if (!set.ok()) return set.status().Annotate(file);
  return set;
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
  auto set = LoadSpec(a.spec_file);
  if (!set.ok()) return Fail(set.status());
  auto runner = OpenRunner(a);
  if (!runner.ok()) return Fail(runner.status());
  auto results = (*runner)->Run(*set);
  if (!results.ok()) return Fail(results.status());
  for (const auto& r : *results) {
    if (r.started) {
      std::printf("started %s\n", r.name.c_str());
    } else {
      std::printf("%s is Halted (runStrategy: Halted): recorded, not started\n", r.name.c_str());
    }
  }
  std::fflush(stdout);
  if (a.console) {
    for (const auto& r : *results) {
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

int RunRenderPod(const VmArgs& a) {
  auto set = LoadSpec(a.spec_file);
  if (!set.ok()) return Fail(set.status());
  vm::PodOptions o;
  if (!a.launcher_image.empty()) o.launcher_image = a.launcher_image;
  if (!a.serve_image.empty()) o.serve_image = a.serve_image;
  if (!a.no_resolve) {
    // Pin each disk's image to the digest its tag names now, and refuse a
    // disk that qemu (UID 107) could not read in the Pod.
    for (const auto& d : set->vm.disks) {
      if (d.volume.kind != vm::VolumeKind::kContainerDisk) continue;
      auto ref = oci::Reference::Parse(d.volume.container.image);
      if (!ref.ok()) return Fail(ref.status());
      auto store = OpenRegistry(a.reg, *ref);
      if (!store.ok()) return Fail(store.status());
      auto digest = ref->digest;
      if (!digest) {
        auto m = (*store)->GetManifest(ref->tag);
        if (!m.ok()) return Fail(m.status().Annotate(ref->str()));
        digest = m->descriptor.digest;
        o.pinned_digests[d.name] = digest->str();
      }
      Status readable = cache::CheckDiskReadable(**store, *digest, d.volume.container.path, {});
      if (!readable.ok()) return Fail(readable.Annotate(ref->str()));
    }
  }
  std::printf("%s", vm::RenderLauncherPod(set->vm, o).c_str());
  return 0;
}

}  // namespace

void RegisterVm(CLI::App& app, Globals& g, int& exit_code) {
  (void)g;
  auto a = std::make_shared<VmArgs>();
  auto common = [&](CLI::App* c) {
    c->add_option("--root", a->root, "node state root (default $REGDISK_ROOT or /var/lib/regdisk)");
    c->add_option("-c,--connect", a->uri, "libvirt URI (default $LIBVIRT_DEFAULT_URI or qemu:///system)");
  };
  auto* run = app.add_subcommand("run", "Boot the VMs of a spec whose disks are registry disks")
                  ->footer("Example: regdisk run vm.yaml --console\n"
                           "Each registry disk becomes a per-VM qcow2 overlay on one cached, verified copy;\n"
                           "writes vanish when the VM stops. Specs: RegistryDisk:v1alpha, registryDisk\n"
                           "(kubevirt.io/v1alpha1) or containerDisk volumes; replica sets too.");
  run->add_option("spec", a->spec_file, "VM spec YAML")->required();
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
  auto* pod = render->add_subcommand("pod", "The launcher Pod with one wrapper container per registry disk");
  pod->add_option("spec", a->spec_file, "VM spec YAML")->required();
  pod->add_option("--launcher-image", a->launcher_image, "the compute container's image");
  pod->add_option("--serve-image", a->serve_image,
                  "the image whose /regdisk-serve the init container installs for the disk containers "
                  "(regdisk build-base; default kubevirt.io/registry-disk-v1alpha)");
  pod->add_flag("--no-resolve", a->no_resolve, "do not pin image tags to digests (no registry access)");
  a->reg.Add(pod);
  pod->callback([&exit_code, a] { exit_code = RunRenderPod(*a); });
}

}  // namespace regdisk::cli
