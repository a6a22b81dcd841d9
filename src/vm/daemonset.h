// The node DaemonSet and the peer Service (issue 15): one regdisk peer
// server per node, serving the verified v2 chunks of the node's cache to
// the other nodes (peer/protocol.h), and a headless Service
// whose DNS names list them, so that `--peers
// dns:regdisk-peers.NS.svc.cluster.local:PORT` (A records) or `--peers
// srv:_peer._tcp.regdisk-peers.NS.svc.cluster.local` (SRV records) find
// every node.
#pragma once

#include <string>

#include "util/status.h"

namespace regdisk::vm {

inline constexpr char kNodeDaemonSetName[] = "regdisk-node";
inline constexpr char kPeerServiceName[] = "regdisk-peers";
inline constexpr char kPeerPortName[] = "peer";  // the SRV record's _peer._tcp
// A hostPath path names a directory on every node: PATH_MAX bounds it.
inline constexpr size_t kMaxRootPath = 4096;
// The container has no capabilities, and binding a port below 1024 takes
// CAP_NET_BIND_SERVICE.
inline constexpr int kMinPort = 1024;

// The options mirror `regdisk render daemonset`'s flags; errors name the
// flags. The library has no default image (regdisk builds none holding
// regdisk-node) and no default port (the caller passes
// peer::kDefaultPort, which this module may not include).
struct NodeDaemonSetOptions {
  std::string ns = "kube-system";    // --namespace: a DNS label
  std::string image;                 // --image: holds regdisk-node on its PATH
  std::string root = "/var/lib/regdisk";  // --root: the node cache, a hostPath
  int port = 0;                      // --port: kMinPort-65535
  bool host_network = true;          // --host-network; false: a hostPort
};

// Checks the options: the namespace a DNS label (at most 63), the image a
// reference, the root absolute and normal ("/" alone, "." and ".."
// components, "//", a trailing "/" and control characters are refused;
// at most kMaxRootPath bytes), the port in kMinPort-65535. One line per refusal,
// naming the flag.
Status CheckNodeDaemonSet(const NodeDaemonSetOptions& o);

// Renders two YAML documents ("---" between them), deterministic:
//
// DaemonSet (apps/v1) kNodeDaemonSetName in o.ns, labels and selector
// app.kubernetes.io/name: regdisk, app.kubernetes.io/component: peer. Its
// one container "peer" runs [regdisk-node, peer, --root, ROOT, --listen,
// 0.0.0.0:PORT] with containerPort PORT named kPeerPortName (and hostPort
// PORT unless host_network; with hostNetwork the pod's address is the
// node's), readinessProbe httpGet /v1/health on PORT. ROOT is the hostPath
// volume "regdisk-root" (DirectoryOrCreate), mounted at ROOT read-only: the
// peer server only reads the cache. It runs as root (the cache's owner)
// with every capability dropped, no privilege escalation, a read-only root
// filesystem, no service account token; requests cpu 50m memory 64Mi,
// limits memory 256Mi (no cpu limit: throttling would stall peers'
// transfers). It tolerates every NoSchedule and NoExecute taint, as a node
// agent must run on every node that runs VMs.
//
// Service (v1) kPeerServiceName in o.ns: headless (clusterIP None), the
// same selector, port PORT named kPeerPortName (TCP), and
// publishNotReadyAddresses true: every node's clients see the same peer
// list while servers start (a peer not yet listening costs one refused
// connection), which keeps the chunks' ownership stable.
//
// Errors are CheckNodeDaemonSet's.
StatusOr<std::string> RenderNodeDaemonSet(const NodeDaemonSetOptions& o);

}  // namespace regdisk::vm
