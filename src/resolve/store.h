// The command line's policy for reaching images, as a library under it:
// which store an image name opens, how registries are reached (skopeo's
// flags), where imagePullSecrets live, which node root is used.
//
// Image names follow skopeo's transports (oci/location.h): NAME[:TAG] is
// the local store, oci:PATH[:TAG] an OCI layout, docker://REF a registry.
#pragma once

#include <memory>
#include <string>

#include "layout/layout.h"
#include "lazy/entry.h"
#include "oci/location.h"
#include "oci/store.h"
#include "registry/registry.h"
#include "util/status.h"

namespace regdisk::resolve {

// How to reach registries, as skopeo's flags say it.
struct RegistryFlags {
  std::string creds;       // --creds USER:PASSWORD
  bool tls_verify = true;  // --tls-verify=false
  std::string cert_dir;    // --cert-dir DIR
  int retry_times = 3;     // --retry-times N
  int stall_timeout = 60;  // --stall-timeout SECONDS
  int parallel = 4;        // --parallel N
  // The registry client's options these flags give.
  registry::Options Options() const;
};

// The flags as a JSON object, as a lazy entry's serve.json keeps them
// ({"creds", "tlsVerify", "certDir", "retryTimes", "stallTimeout",
// "parallel"}), and back. Parsing refuses a wrong type or a number out of
// range (retryTimes and stallTimeout 0..kMaxFlagValue, parallel
// 1..registry::kMaxParallel); missing keys keep their defaults.
inline constexpr int kMaxFlagValue = 3600;  // an hour of stall, or of retries, is past any use
std::string RegistryFlagsJson(const RegistryFlags& flags);
StatusOr<RegistryFlags> ParseRegistryFlagsJson(std::string_view json);

// The store a lazy cache entry's blob comes from (its serve.json's
// "image", "registry" and "authFile"): "docker://REF" is the registry
// repository (OpenRegistry with those flags and auth file),
// "oci:/ABS/PATH[@DIGEST]" a layout (tests, air-gapped nodes).
StatusOr<std::unique_ptr<oci::Store>> OpenServeSource(const std::string& image, const std::string& registry_json,
                                                      const std::string& auth_file);

// The local store's directory: `flag` (--store), else layout::DefaultStorePath().
std::string LocalStorePath(const std::string& flag);

// The node state root: `flag` (--root), else $REGDISK_ROOT, else /var/lib/regdisk.
std::string NodeRoot(const std::string& flag);

// The largest disk accepted (--max-disk-size, a Kubernetes quantity):
// `flag`, else oci::kDefaultMaxDiskSize. Zero or a bad quantity is refused.
StatusOr<uint64_t> MaxDiskSize(const std::string& flag);

// An image name opened in its store.
struct Image {
  oci::ImageLocation location;
  std::unique_ptr<oci::Store> store;
};
// Any image name: the local store (at LocalStorePath(store_flag)) or an
// oci: layout, made when missing with `create`; or a registry repository.
StatusOr<Image> OpenImage(const std::string& store_flag, const RegistryFlags& flags, const std::string& name,
                          bool create);

// An image name that must be a layout (the local store or oci:PATH), for
// verbs that change a layout's own tags. docker://REF is Unsupported.
struct LayoutImage {
  oci::ImageLocation location;
  std::unique_ptr<layout::Layout> store;
};
StatusOr<LayoutImage> OpenLayoutImage(const std::string& store_flag, const std::string& name, bool create);

// A registry repository as a Store. Credentials: the flags' --creds, else
// `auth_file` when given (an auth file, e.g. a pull secret's), else the
// user's auth files (registry/auth_file.h).
StatusOr<std::unique_ptr<oci::Store>> OpenRegistry(const RegistryFlags& flags, const oci::Reference& ref,
                                                   const std::string& auth_file = "");

// The auth file of the imagePullSecret `secret`: ROOT/secrets/NAME.json
// (empty for no secret). InvalidArgument when `secret` is not a safe name
// (the rules of VM names: one path component); NotFound without the file.
StatusOr<std::string> PullSecretFile(const std::string& root, const std::string& secret);

// A registry image as VM specs and leases write it: "docker://REF" and
// "REF" name the same image, "REF".
std::string RegistryImageName(const std::string& name);

// How a lazily served disk's background fill runs (--fill-rate, --fill-delay).
// By default it leaves the link to the guest's own reads while the VM boots
// (a boot reads what it needs in its first minute; 11 MiB for the demo
// disk), then takes at most a third of a 1 Gb/s link.
inline constexpr uint64_t kDefaultFillRate = 32ull << 20;  // bytes/s
inline constexpr int kDefaultFillDelay = 60;              // seconds
// Also where chunks come from besides the registry (--peers, --peer-self,
// --peer-timeout; lazy/chunk_store.h): other nodes' peer servers.
struct FillFlags {
  std::string rate;                // a quantity of bytes/s ("64Mi"); "": the default; "0": unlimited
  int delay = kDefaultFillDelay;   // seconds
  std::string peers;               // the peer spec (peer::OpenPeers); "": no peers
  std::string peer_self;           // HOST:PORT of this node's own peer server, or ""
  int peer_timeout = 0;            // ms per peer request; 0: the client's default
};

// What a lazy cache entry's serve.json takes from the command line
// (cache::PrepareRequest::serve): the registry flags but --creds (no file
// regdisk writes holds a secret; the serving process uses auth files),
// `auth_file` (a pull secret's, or ""), the fill's rate and delay, and the
// peers (checked as above; --peer-timeout 1 to lazy::kMaxPeerTimeoutMs).
StatusOr<lazy::ServeConfig> ServeSettings(const RegistryFlags& flags, const FillFlags& fill,
                                          const std::string& auth_file);

}  // namespace regdisk::resolve
