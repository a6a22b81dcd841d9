// spec.domain.devices.interfaces[] and spec.networks[]. regdisk has no pod
// network: masquerade and slirp (and an interface with no binding, and the
// interface KubeVirt attaches by default) are user-mode networking; bridge
// is a libvirt network, "default" unless the annotation
// regdisk.io/bridge-network names another.
#include <algorithm>
#include <cctype>
#include <set>

#include "vm/spec_internal.h"

namespace regdisk::vm::internal {
namespace {

constexpr const char* kModels[] = {"virtio", "e1000", "e1000e", "igb", "ne2k_pci", "pcnet", "rtl8139"};

// "02:00:00:aa:bb:cc" (or with '-'), unicast, written back with ':'.
StatusOr<std::string> ParseMac(const Field& f) {
  ASSIGN_OR_RETURN(std::string mac, f.Str(false));
  if (mac.empty()) return mac;
  bool ok = mac.size() == 17;
  for (size_t i = 0; ok && i < mac.size(); ++i) {
    if (i % 3 == 2) {
      ok = mac[i] == ':' || mac[i] == '-';
      mac[i] = ':';
    } else {
      ok = std::isxdigit(static_cast<unsigned char>(mac[i]));
      mac[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(mac[i])));
    }
  }
  if (!ok) return f.Error(Quoted(mac) + " is not a MAC address");
  if (std::stoi(mac.substr(0, 2), nullptr, 16) & 1) return f.Error(Quoted(mac) + " is a multicast address");
  return mac;
}

StatusOr<Interface> ParseInterface(const Field& f, const Context& ctx) {
  if (!f.present() || !f.node.IsMap()) return f.Error("must be a mapping");
  RETURN_IF_ERROR(CheckKeys(f, {
      Use("name"), Use("masquerade"), Use("slirp"), Use("bridge"), Use("model"), Use("macAddress"),
      Accept("ports"),
      Refuse("sriov", "SR-IOV needs devices of the host"), Refuse("macvtap", "macvtap is not supported"),
      Refuse("passt", "use masquerade (user-mode networking)"),
      Refuse("binding", "network binding plugins are not supported"),
      Refuse("bootOrder", "network boot is not supported"),
      Refuse("pciAddress", "regdisk lets libvirt place devices"),
      Refuse("dhcpOptions", "not supported"), Refuse("tag", "device role tags need KubeVirt's metadata service"),
      Refuse("state", "not supported"), Refuse("acpiIndex", "not supported")}));
  Interface i;
  ASSIGN_OR_RETURN(i.name, f["name"].Str(true));
  RETURN_IF_ERROR(CheckName(f["name"], i.name, 63));
  int bindings = 0;
  for (const char* b : {"masquerade", "slirp", "bridge"}) {
    bindings += f[b].exists;
    RETURN_IF_ERROR(f[b].NeedMap());
    RETURN_IF_ERROR(CheckKeys(f[b], {}));
  }
  if (bindings > 1) return f.Error("more than one of masquerade, slirp and bridge");
  if (f["bridge"].exists) {
    i.kind = InterfaceKind::kBridge;
    i.network = ctx.bridge_network;
  }
  ASSIGN_OR_RETURN(i.model, f["model"].Str(false));
  if (i.model.empty()) i.model = ctx.prefs.interface_model.value_or("virtio");
  if (std::find(std::begin(kModels), std::end(kModels), i.model) == std::end(kModels)) {
    return f["model"].Error("unknown model " + Quoted(i.model));
  }
  ASSIGN_OR_RETURN(i.mac, ParseMac(f["macAddress"]));
  return i;
}

// networks[]: name -> index; only the pod network.
StatusOr<std::map<std::string, size_t>> ParseNetworkList(const Field& nets) {
  ASSIGN_OR_RETURN(size_t n, nets.SeqSize(false));
  std::map<std::string, size_t> out;
  bool pod = false;
  for (size_t k = 0; k < n; ++k) {
    Field net = nets[k];
    if (!net.present() || !net.node.IsMap()) return net.Error("must be a mapping");
    RETURN_IF_ERROR(CheckKeys(net, {Use("name"), Use("pod"),
                                    Refuse("multus", "Multus networks are not supported; use the pod network")}));
    ASSIGN_OR_RETURN(std::string name, net["name"].Str(true));
    RETURN_IF_ERROR(CheckName(net["name"], name, 63));
    if (!net["pod"].exists) return net.Error("needs pod: {} (the only network regdisk has)");
    RETURN_IF_ERROR(net["pod"].NeedMap());
    RETURN_IF_ERROR(CheckKeys(net["pod"], {Refuse("vmNetworkCIDR", "user-mode networking picks its own addresses"),
                                           Refuse("vmIPv6NetworkCIDR", "user-mode networking picks its own addresses")}));
    if (pod) return net.Error("a second pod network (KubeVirt allows one)");
    pod = true;
    if (!out.emplace(name, k).second) return net["name"].Error("duplicate network " + Quoted(name));
  }
  return out;
}

}  // namespace

Status ParseNetworks(const Field& spec, const Context& ctx, VmSpec* vm) {
  Field ifaces = spec["domain"]["devices"]["interfaces"];
  ASSIGN_OR_RETURN(size_t n, ifaces.SeqSize(false));
  if (n > kMaxInterfaces) return ifaces.Error("more than 8 interfaces");
  ASSIGN_OR_RETURN(auto nets, ParseNetworkList(spec["networks"]));
  ASSIGN_OR_RETURN(bool autoattach, spec["domain"]["devices"]["autoattachPodInterface"].Bool(true));
  if (n == 0 && nets.empty()) {
    if (autoattach) {
      Interface i;
      i.name = "default";
      i.model = ctx.prefs.interface_model.value_or("virtio");
      vm->interfaces.push_back(i);
    }
    return OkStatus();
  }
  std::set<std::string> used;
  for (size_t k = 0; k < n; ++k) {
    ASSIGN_OR_RETURN(Interface i, ParseInterface(ifaces[k], ctx));
    if (!nets.count(i.name)) return ifaces[k]["name"].Error("no network named " + Quoted(i.name) + " in spec.networks");
    if (!used.insert(i.name).second) return ifaces[k]["name"].Error("duplicate interface " + Quoted(i.name));
    vm->interfaces.push_back(std::move(i));
  }
  for (const auto& [name, k] : nets) {
    if (!used.count(name)) return spec["networks"][k].Error("no interface for network " + Quoted(name));
  }
  return OkStatus();
}

}  // namespace regdisk::vm::internal
