// regdisk prepare, release, cache ls, cache gc: the node cache, for
// operators (what the agent does for each VM disk); regdisk peer: the
// node's peer server.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "cache/node_cache.h"
#include "cli/verbs.h"
#include "peer/protocol.h"
#include "peer/server.h"
#include "resolve/store.h"
#include "util/progress.h"
#include "vm/spec.h"

namespace regdisk::cli {
namespace {

struct NodeArgs {
  std::string root, vm, image, path, policy, max_size, platform, listen;
  bool json = false, lazy = false;
  resolve::RegistryFlags reg;
  resolve::FillFlags fill;
  std::string max_disk;  // --max-disk-size
};

StatusOr<std::unique_ptr<cache::NodeCache>> OpenCache(const NodeArgs& a, Progress* progress) {
  cache::CacheOptions o;
  o.root = resolve::NodeRoot(a.root);
  if (!a.platform.empty()) {
    ASSIGN_OR_RETURN(o.platform, oci::Platform::Parse(a.platform));
  }
  ASSIGN_OR_RETURN(uint64_t max_disk, resolve::MaxDiskSize(a.max_disk));
  o.limits = layer::ExtractLimits::ForMaxDiskSize(max_disk);
  if (progress) o.on_bytes = [progress](uint64_t n) { progress->Add(n); };
  o.open_peers = OpenPeers;
  return cache::NodeCache::Open(o);
}

Status RunPrepare(const NodeArgs& a) {
  // The other verbs write a registry image docker://REF; a VM spec writes
  // REF. Both name the same image, and the lease records the plain form.
  std::string image = resolve::RegistryImageName(a.image);
  cache::PrepareRequest req{a.vm, image, a.path, {}};
  // --creds cannot be handed to the serving process (it would have to be
  // written down): pulled whole.
  req.lazy = a.lazy && a.reg.creds.empty();
  if (a.lazy && !req.lazy) {
    std::fprintf(stderr, "regdisk: pulled whole, not lazily: --creds is not kept for a serving process; "
                         "log in (regdisk login) to serve lazily\n");
  }
  ASSIGN_OR_RETURN(req.serve, resolve::ServeSettings(a.reg, a.fill, ""));
  if (!a.policy.empty()) {
    auto p = cache::ParsePullPolicy(a.policy);
    if (!p.ok()) return p.status();
    req.policy = *p;
  }
  Progress progress("pulling " + a.image, 0);  // Progress escapes its label
  auto cache = OpenCache(a, &progress);
  if (!cache.ok()) return cache.status();
  auto lease = (*cache)->Prepare(req, [&](const oci::Reference& ref) { return resolve::OpenRegistry(a.reg, ref); });
  progress.Done();
  if (!lease.ok()) return lease.status();
  if (!lease->full_pull_reason.empty()) {
    std::fprintf(stderr, "regdisk: pulled whole, not lazily: %s\n", OneLine(lease->full_pull_reason).c_str());
  }
  if (a.json) {
    nlohmann::json j = {{"vm", lease->vm}, {"overlay", lease->overlay}, {"digest", lease->manifest.str()},
                        {"base", lease->base_file}, {"baseFormat", disk::FormatName(lease->base_format)},
                        {"path", lease->path_in_image}, {"nbdSocket", lease->nbd_socket}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s\n%s\n", OneLine(lease->overlay).c_str(), lease->manifest.str().c_str());
  }
  return OkStatus();
}

Status RunRelease(const NodeArgs& a) {
  auto cache = OpenCache(a, nullptr);
  if (!cache.ok()) return cache.status();
  Status s = (*cache)->Release(a.vm);
  return s;
}

Status RunCacheLs(const NodeArgs& a) {
  auto cache = OpenCache(a, nullptr);
  if (!cache.ok()) return cache.status();
  auto entries = (*cache)->List();
  if (!entries.ok()) return entries.status();
  nlohmann::json list = nlohmann::json::array();
  if (!a.json) {
    std::printf("%-50s %-19s %-6s %-8s %10s %10s  %s\n", "SOURCE", "DIGEST", "FORMAT", "STATE", "VIRTUAL", "ON DISK",
                "LEASES");
  }
  for (const auto& e : *entries) {
    std::string leases;
    for (const auto& vm : e.leased_by) leases += (leases.empty() ? "" : ",") + vm;
    if (a.json) {
      list.push_back({{"key", e.key}, {"source", e.source}, {"digest", e.manifest.str()}, {"path", e.path_in_image},
                      {"format", disk::FormatName(e.format)}, {"virtualSize", e.virtual_size},
                      {"bytesOnDisk", e.bytes_on_disk}, {"lastUsed", e.last_used}, {"leasedBy", e.leased_by},
                      {"state", e.lazy ? "lazy" : "complete"}, {"served", e.served}});
    } else {
      std::printf("%-50s %-19s %-6s %-8s %10s %10s  %s\n", OneLine(e.source).c_str(),
                  ("sha256:" + e.manifest.short_hex()).c_str(), disk::FormatName(e.format), e.lazy ? "lazy" : "complete",
                  HumanBytes(e.virtual_size).c_str(), HumanBytes(e.bytes_on_disk).c_str(),
                  leases.empty() ? "-" : OneLine(leases).c_str());
    }
  }
  if (a.json) std::printf("%s\n", list.dump(2).c_str());
  return OkStatus();
}

Status RunCacheGc(const NodeArgs& a) {
  uint64_t max = 0;
  if (!a.max_size.empty()) {
    auto m = vm::ParseQuantity(a.max_size);
    if (!m.ok()) return m.status().Annotate("--max-size");
    max = *m;
  }
  auto cache = OpenCache(a, nullptr);
  if (!cache.ok()) return cache.status();
  auto r = (*cache)->Gc(max);
  if (!r.ok()) return r.status();
  std::printf("removed %d disks, freed %s, %s kept\n", r->removed, HumanBytes(r->bytes_freed).c_str(),
              HumanBytes(r->bytes_kept).c_str());
  return OkStatus();
}

// Runs the peer server until SIGTERM or SIGINT.
Status RunPeer(const NodeArgs& a) {
  const std::string root = resolve::NodeRoot(a.root);
  struct stat st;
  if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFound("--root " + Quote(root) + ": no such directory (the node cache's root)");
  }
  // The signals wait for sigwait below, in this thread only: blocked
  // before the server's threads start, which inherit the mask.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &stop, &old);
  auto log = [](const std::string& line) { std::fprintf(stderr, "regdisk peer: %s\n", line.c_str()); };
  auto server = peer::Server::Start({.root = root, .listen = a.listen, .log = log});
  if (!server.ok()) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return server.status();
  }
  log("serving the verified chunks of " + OneLine(root) + " on " + OneLine(a.listen) + " (port " +
      std::to_string((*server)->port()) + ")");
  int sig = 0;
  sigwait(&stop, &sig);
  (*server)->Stop();
  log(std::string("stopped (") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ")");
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return OkStatus();
}

}  // namespace

std::vector<Verb> NodeVerbs() {
  // Every node verb has its own arguments and --root.
  auto verb = ArgsVerbsWith<NodeArgs>([](CLI::App* cmd, NodeArgs& a) { AddRootFlag(cmd, a.root); });
  return {
      verb("prepare", "Give a VM its ephemeral overlay on a registry disk",
           {"regdisk prepare --vm web-0 registry.example.com/disks/fedora:38"},
           "Prints the overlay path and the pinned manifest digest. With --lazy, the overlay's backing\n"
           "is the entry's NBD socket (ROOT/disks/KEY/nbd.sock), served by nbdkit and regdisk-nbd.so.\n",
           [](CLI::App* cmd, NodeArgs& a) {
             cmd->add_option("--vm", a.vm, "the VM (lease) name")->required();
             cmd->add_option("image", a.image, "registry image: REGISTRY/NAME[:TAG|@DIGEST], docker:// optional")
                 ->required();
             cmd->add_option("--path", a.path, "the disk file in the image: /disk/NAME or another clean absolute path (default: the only file in /disk)");
             cmd->add_option("--pull-policy", a.policy, "Always or IfNotPresent (default: Always for :latest)");
             cmd->add_option("--platform", a.platform, "the image's platform, OS/ARCH[/VARIANT] (default: this machine's)");
             cmd->add_flag("--json", a.json, "print JSON");
             cmd->add_flag("--lazy", a.lazy,
                           "serve a v2 image's disk over NBD as its chunks arrive, after only its index is "
                           "fetched and verified (other images are pulled whole)");
             AddFillFlags(cmd, a.fill);
             AddRegistryFlags(cmd, a.reg);
             AddMaxDiskSizeFlag(cmd, a.max_disk);
           },
           RunPrepare),
      verb("release", "End a VM's lease and delete its overlay", {"regdisk release --vm web-0"}, "",
           [](CLI::App* cmd, NodeArgs& a) { cmd->add_option("--vm", a.vm, "the VM (lease) name")->required(); },
           RunRelease),
      verb("cache ls", "List cached disks and who leases them", {"regdisk cache ls --json"}, "",
           [](CLI::App* cmd, NodeArgs& a) { cmd->add_flag("--json", a.json, "print JSON"); }, RunCacheLs),
      verb("cache gc", "Remove unleased disks, least recently used first", {"regdisk cache gc --max-size 20Gi"},
           "",
           [](CLI::App* cmd, NodeArgs& a) {
             cmd->add_option("--max-size", a.max_size,
                             "keep at most this much, a Kubernetes quantity (e.g. 20Gi, 500M); default: remove all unleased");
           },
           RunCacheGc),
      verb("peer", "Serve this node's verified v2 chunks to other nodes (a foreground daemon)",
           {"regdisk peer --listen 0.0.0.0:" + std::to_string(peer::kDefaultPort),
            "regdisk peer --root /var/lib/regdisk --listen [::]:" + std::to_string(peer::kDefaultPort)},
           "Other nodes' lazy disks and fills (run/prepare --peers) fetch chunks from here before\n"
           "the registry. Plain HTTP, read-only: GET /v1/chunks/sha256/HEX (a chunk's bytes),\n"
           "POST /v1/have (which of these digests are held), GET /v1/health. Only chunks of the\n"
           "v2 entries under ROOT/disks whose index matches its anchor, that the entry verified\n"
           "(promoted, or marked in its chunk map), and whose bytes hash to the digest when read\n"
           "are served; nothing names a disk, an image or a file. Clients verify every chunk, so\n"
           "no TLS is needed. Logs one line at start and stop and per kind of refused request;\n"
           "stops on SIGTERM or SIGINT. See docs/peers.md for the protocol and its limits.\n",
           [](CLI::App* cmd, NodeArgs& a) {
             cmd->add_option("--listen", a.listen,
                             "HOST:PORT to listen on: an IPv4 address, or [IPv6]; 0.0.0.0 or [::] for all "
                             "(port " + std::to_string(peer::kDefaultPort) + " is the DaemonSet's)")
                 ->required();
           },
           RunPeer),
  };
}

}  // namespace regdisk::cli
