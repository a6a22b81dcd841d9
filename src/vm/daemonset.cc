#include "vm/daemonset.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include "vm/k8s_yaml.h"
#include "vm/spec_internal.h"

namespace regdisk::vm {
namespace {

using k8s::Text;

constexpr const char* kRootVolume = "regdisk-root";
constexpr const char* kHealthPath = "/v1/health";  // peer::kHealthPath, which vm may not include
// The peer server holds a few connections and chunk buffers (1 MiB each)
// at once; it hashes every chunk it serves, which a CPU limit would stall.
const k8s::Amounts kPeerRequests{"50m", "64Mi"}, kPeerLimits{"", "256Mi"};
const std::pair<const char*, const char*> kLabels[] = {{"app.kubernetes.io/name", "regdisk"},
                                                       {"app.kubernetes.io/component", "peer"}};

void Labels(YAML::Emitter& e, const char* key) {
  e << YAML::Key << key << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : kLabels) e << YAML::Key << k << YAML::Value << v;
  e << YAML::EndMap;
}

// Opens an object's mapping: apiVersion, kind, metadata (name, o.ns, the
// labels), and the key "spec".
void Begin(YAML::Emitter& e, const char* api_version, const char* kind, const char* name,
           const NodeDaemonSetOptions& o) {
  e << YAML::BeginMap;
  e << YAML::Key << "apiVersion" << YAML::Value << api_version;
  e << YAML::Key << "kind" << YAML::Value << kind;
  e << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << name;
  e << YAML::Key << "namespace" << YAML::Value;
  Text(e, o.ns);
  Labels(e, "labels");
  e << YAML::EndMap;
  e << YAML::Key << "spec" << YAML::Value;
}

void PeerContainer(YAML::Emitter& e, const NodeDaemonSetOptions& o) {
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << "peer";
  e << YAML::Key << "image" << YAML::Value;
  Text(e, o.image);
  k8s::Args(e, "command", {"regdisk-node", "peer", "--root", o.root, "--listen", "0.0.0.0:" + std::to_string(o.port)});
  e << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << kPeerPortName;
  e << YAML::Key << "containerPort" << YAML::Value << o.port;
  if (!o.host_network) e << YAML::Key << "hostPort" << YAML::Value << o.port;
  e << YAML::Key << "protocol" << YAML::Value << "TCP";
  e << YAML::EndMap << YAML::EndSeq;
  e << YAML::Key << "readinessProbe" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "httpGet" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "path" << YAML::Value << kHealthPath;
  e << YAML::Key << "port" << YAML::Value << o.port;
  e << YAML::EndMap;
  e << YAML::Key << "periodSeconds" << YAML::Value << 10;
  e << YAML::EndMap;
  k8s::Resources(e, kPeerRequests, &kPeerLimits);
  k8s::SecurityContext(e, {.uid = 0, .gid = 0, .read_only_root = true});
  e << YAML::Key << "volumeMounts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << kRootVolume;
  e << YAML::Key << "mountPath" << YAML::Value;
  Text(e, o.root);
  e << YAML::Key << "readOnly" << YAML::Value << true;
  e << YAML::EndMap << YAML::EndSeq;
  e << YAML::EndMap;
}

void DaemonSet(YAML::Emitter& e, const NodeDaemonSetOptions& o) {
  Begin(e, "apps/v1", "DaemonSet", kNodeDaemonSetName, o);
  e << YAML::BeginMap;
  e << YAML::Key << "selector" << YAML::Value << YAML::BeginMap;
  Labels(e, "matchLabels");
  e << YAML::EndMap;
  e << YAML::Key << "template" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  Labels(e, "labels");
  e << YAML::EndMap;
  e << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  if (o.host_network) e << YAML::Key << "hostNetwork" << YAML::Value << true;
  e << YAML::Key << "automountServiceAccountToken" << YAML::Value << false;
  e << YAML::Key << "tolerations" << YAML::Value << YAML::BeginSeq;
  for (const char* effect : {"NoSchedule", "NoExecute"}) {
    e << YAML::Flow << YAML::BeginMap << YAML::Key << "operator" << YAML::Value << "Exists";
    e << YAML::Key << "effect" << YAML::Value << effect << YAML::EndMap;
  }
  e << YAML::EndSeq;
  e << YAML::Key << "containers" << YAML::Value << YAML::BeginSeq;
  PeerContainer(e, o);
  e << YAML::EndSeq;
  e << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << kRootVolume;
  e << YAML::Key << "hostPath" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "path" << YAML::Value;
  Text(e, o.root);
  e << YAML::Key << "type" << YAML::Value << "DirectoryOrCreate";
  e << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  e << YAML::EndMap << YAML::EndMap << YAML::EndMap << YAML::EndMap;
}

void Service(YAML::Emitter& e, const NodeDaemonSetOptions& o) {
  Begin(e, "v1", "Service", kPeerServiceName, o);
  e << YAML::BeginMap;
  e << YAML::Key << "clusterIP" << YAML::Value << "None";
  e << YAML::Key << "publishNotReadyAddresses" << YAML::Value << true;
  Labels(e, "selector");
  e << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << kPeerPortName;
  e << YAML::Key << "port" << YAML::Value << o.port;
  e << YAML::Key << "targetPort" << YAML::Value << o.port;
  e << YAML::Key << "protocol" << YAML::Value << "TCP";
  e << YAML::EndMap << YAML::EndSeq;
  e << YAML::EndMap << YAML::EndMap;
}

std::string Emit(void (*doc)(YAML::Emitter&, const NodeDaemonSetOptions&), const NodeDaemonSetOptions& o) {
  YAML::Emitter e;
  e.SetIndent(2);
  doc(e, o);
  return std::string(e.c_str()) + "\n";
}

bool IsNormalAbsolutePath(const std::string& p) {
  if (p.size() < 2 || p.size() > kMaxRootPath || p.front() != '/' || p.back() == '/') return false;
  for (unsigned char c : p) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  std::string_view rest(p);
  rest.remove_prefix(1);
  while (!rest.empty()) {
    std::string_view part = rest.substr(0, rest.find('/'));
    if (part.empty() || part == "." || part == "..") return false;
    rest.remove_prefix(std::min(rest.size(), part.size() + 1));
  }
  return true;
}

}  // namespace

Status CheckNodeDaemonSet(const NodeDaemonSetOptions& o) {
  if (!internal::IsDnsLabel(o.ns, 63)) {
    return InvalidArgument("--namespace " + Quote(o.ns) +
                           ": not a DNS label (lowercase letters, digits and '-', at most 63 characters)");
  }
  if (o.image.empty()) return InvalidArgument("--image is required: regdisk builds no image holding regdisk-node");
  if (!internal::IsImageReference(o.image)) return InvalidArgument("--image " + Quote(o.image) + ": not an image reference");
  if (!IsNormalAbsolutePath(o.root)) {
    return InvalidArgument("--root " + Quote(o.root) +
                           ": want an absolute path other than / (no '.', '..' or empty components, no trailing '/')");
  }
  if (o.port < kMinPort || o.port > 65535) {
    return InvalidArgument("--port " + std::to_string(o.port) + ": want " + std::to_string(kMinPort) +
                           "-65535 (the peer server runs without capabilities, and a lower port needs one)");
  }
  return OkStatus();
}

StatusOr<std::string> RenderNodeDaemonSet(const NodeDaemonSetOptions& o) {
  RETURN_IF_ERROR(CheckNodeDaemonSet(o));
  return Emit(DaemonSet, o) + "---\n" + Emit(Service, o);
}

}  // namespace regdisk::vm
