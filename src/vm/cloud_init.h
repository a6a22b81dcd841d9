// The per-VM cloud-init data source, made the way KubeVirt makes it (its
// pkg/cloud-init): an ISO 9660 volume with Rock Ridge and Joliet (so names
// keep their case and their '-') holding
//   NoCloud (label "cidata"):      meta-data      {"instance-id", "local-hostname"}
//                                  user-data
//                                  network-config (only when network data is given)
//   ConfigDrive (label "config-2"): openstack/latest/meta_data.json
//                                      {"instance_id", "uuid", "hostname", "name"}
//                                  openstack/latest/user_data
//                                  openstack/latest/network_data.json (when given)
// The label is the Joliet volume identifier, exactly as above, which is
// what blkid (and so cloud-init and findfs) reports; the primary volume
// descriptor can hold only d-characters: "CIDATA", "CONFIG_2" (cloud-init
// also accepts upper case cidata). meta-data is written as JSON, which is YAML, so no value can break out of
// its field. Written with libarchive's iso9660 writer (no genisoimage).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "util/status.h"

namespace regdisk::vm {

// A Kubernetes Secret holds at most 1 MiB, and that is where user data too
// large for a spec lives (secretRef): nothing a user can give is larger.
inline constexpr uint64_t kMaxCloudInitDataBytes = 1 << 20;
// instance-id, hostname and uuid come from object names and firmware.uuid:
// a DNS subdomain is at most 253 bytes.
inline constexpr size_t kMaxCloudInitNameBytes = 253;

enum class CloudInitKind { kNoCloud, kConfigDrive };

struct CloudInitSource {
  CloudInitKind kind = CloudInitKind::kNoCloud;
  std::string instance_id;  // KubeVirt: "NAME.NAMESPACE"
  std::string hostname;     // KubeVirt: the VMI's name
  std::string uuid;         // ConfigDrive only: firmware.uuid (may be empty)
  std::string user_data;
  std::optional<std::string> network_data;
};

// The volume label: "cidata" or "config-2".
const char* CloudInitLabel(CloudInitKind kind);

// Writes the ISO to `path` atomically (temp + fsync + rename), mode 0644.
// Refuses, leaving nothing: user or network data over
// kMaxCloudInitDataBytes, names over kMaxCloudInitNameBytes or holding
// control characters, and an empty instance-id.
Status WriteCloudInitIso(const CloudInitSource& source, const std::string& path);

}  // namespace regdisk::vm
