// regdisk run, stop, ls, render pod: VMs from specs that name registry
// disks, booted through libvirt on this node.
#include <cstdio>

#include "cli/verbs.h"
#include "resolve/image.h"
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
  resolve::RegistryFlags reg;
  std::string max_disk;  // --max-disk-size
};

StatusOr<vm::VmSet> LoadSpec(const std::string& file) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(file, 1 << 20));
  auto set = vm::ParseVmYaml(text);
  if (!set.ok()) return set.status().Annotate(file);
  return set;
}

StatusOr<std::unique_ptr<runtime::Runner>> OpenRunner(const VmArgs& a) {
  runtime::RunnerOptions o;
  o.cache.root = resolve::NodeRoot(a.root);
  ASSIGN_OR_RETURN(uint64_t max_disk, resolve::MaxDiskSize(a.max_disk));
  o.cache.limits = layer::ExtractLimits::ForMaxDiskSize(max_disk);
  o.libvirt_uri = a.uri;
  o.domain_type = a.kvm ? "kvm" : "qemu";
  std::string root = o.cache.root;
  resolve::RegistryFlags reg = a.reg;
  o.open = [root, reg](const oci::Reference& ref,
                       const std::string& secret) -> StatusOr<std::unique_ptr<oci::Store>> {
    ASSIGN_OR_RETURN(std::string auth_file, resolve::PullSecretFile(root, secret));
    return resolve::OpenRegistry(reg, ref, auth_file);
  };
  return runtime::Runner::Open(std::move(o));
}

Status RunRun(const VmArgs& a) {
  auto set = LoadSpec(a.spec_file);
  if (!set.ok()) return set.status();
  auto runner = OpenRunner(a);
  if (!runner.ok()) return runner.status();
  auto names = (*runner)->Run(*set);
  if (!names.ok()) return names.status();
  for (const auto& n : *names) std::printf("started %s\n", n.c_str());
  std::fflush(stdout);
  if (a.console) {
    for (const auto& n : *names) {
      Status s = (*runner)->FollowConsole(n, stdout, a.console_timeout);
      if (!s.ok()) return s;
    }
  }
  return OkStatus();
}

Status RunStop(const VmArgs& a) {
  auto runner = OpenRunner(a);
  if (!runner.ok()) return runner.status();
  Status s = (*runner)->Stop(a.name, a.forget);
  if (!s.ok()) return s;
  std::printf("stopped %s\n", a.name.c_str());
  return OkStatus();
}

Status RunConsole(const VmArgs& a) {
  auto runner = OpenRunner(a);
  if (!runner.ok()) return runner.status();
  Status s = (*runner)->FollowConsole(a.name, stdout, a.console_timeout);
  return s;
}

Status RunLs(const VmArgs& a) {
  auto runner = OpenRunner(a);
  if (!runner.ok()) return runner.status();
  auto vms = (*runner)->List();
  if (!vms.ok()) return vms.status();
  std::printf("%-30s %-8s %s\n", "NAME", "STATE", "DISKS");
  for (const auto& v : *vms) {
    std::string disks;
    for (const auto& [disk, digest] : v.pins) disks += (disks.empty() ? "" : " ") + disk + "@" + digest.substr(0, 19);
    std::printf("%-30s %-8s %s\n", OneLine(v.name).c_str(), v.running ? "running" : "stopped", OneLine(disks).c_str());
  }
  return OkStatus();
}

Status RunRenderPod(const VmArgs& a) {
  auto set = LoadSpec(a.spec_file);
  if (!set.ok()) return set.status();
  vm::PodOptions o;
  if (!a.launcher_image.empty()) o.launcher_image = a.launcher_image;
  if (!a.serve_image.empty()) o.serve_image = a.serve_image;
  if (!a.no_resolve) {
    // Pin each disk's image to the digest its tag names now.
    for (const auto& d : set->vm.disks) {
      auto ref = oci::Reference::Parse(d.volume.image);
      if (!ref.ok()) return ref.status();
      if (ref->digest) continue;
      auto digest = resolve::PinDigest(a.reg, *ref);
      if (!digest.ok()) return digest.status();
      o.pinned_digests[d.name] = *digest;
    }
  }
  std::printf("%s", vm::RenderLauncherPod(set->vm, o).c_str());
  return OkStatus();
}

}  // namespace

std::vector<Verb> VmVerbs() {
  // Every VM verb has its own arguments and the node's --root and libvirt URI.
  auto verb = [](std::string name, std::string summary, std::vector<std::string> examples, std::string notes,
                 std::function<void(CLI::App*, VmArgs&)> add, Status (*run)(const VmArgs&)) {
    auto with_node = [add](CLI::App* cmd, VmArgs& a) {
      add(cmd, a);
      AddRootFlag(cmd, a.root);
      cmd->add_option("-c,--connect", a.uri, "libvirt URI (default $LIBVIRT_DEFAULT_URI or qemu:///system)");
    };
    return ArgsVerb<VmArgs>(std::move(name), std::move(summary), std::move(examples), std::move(notes), with_node,
                            run);
  };
  // render has no node flags: it only writes YAML.
  Verb render_pod = ArgsVerb<VmArgs>(
      "render pod", "The launcher Pod with one wrapper container per registry disk",
      {"regdisk render pod vm.yaml > pod.yaml", "regdisk render pod vm.yaml --no-resolve"},
      "Image tags are pinned to the digests the registry gives now, unless --no-resolve.\n",
      [](CLI::App* cmd, VmArgs& a) {
        cmd->add_option("spec", a.spec_file, "VM spec YAML")->required();
        cmd->add_option("--launcher-image", a.launcher_image, "the compute container's image");
        cmd->add_option("--serve-image", a.serve_image,
                        "the image whose /regdisk-serve the init container installs for the disk containers "
                        "(regdisk build-base; default kubevirt.io/registry-disk-v1alpha)");
        cmd->add_flag("--no-resolve", a.no_resolve, "do not pin image tags to digests (no registry access)");
        AddRegistryFlags(cmd, a.reg);
      },
      RunRenderPod);
  return {
      verb("run", "Boot the VMs of a spec whose disks are registry disks", {"regdisk run vm.yaml --console"},
           "Each registry disk becomes a per-VM qcow2 overlay on one cached, verified copy;\n"
           "writes vanish when the VM stops. Specs: RegistryDisk:v1alpha, registryDisk\n"
           "(kubevirt.io/v1alpha1) or containerDisk volumes; replica sets too.\n",
           [](CLI::App* cmd, VmArgs& a) {
             cmd->add_option("spec", a.spec_file, "VM spec YAML")->required();
             cmd->add_flag("--console", a.console, "follow the serial console until the VM stops");
             cmd->add_option("--console-timeout", a.console_timeout, "stop following after N seconds (0: never)");
             cmd->add_flag("--kvm", a.kvm, "use KVM instead of TCG");
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
  };
}

}  // namespace regdisk::cli
