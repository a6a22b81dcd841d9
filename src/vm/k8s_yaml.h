// Pieces shared by the Kubernetes manifests regdisk renders (the launcher
// Pod, the node DaemonSet): quoting and the few blocks both emit.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace regdisk::vm::k8s {

// Values that come from outside (a spec, a flag) are always double-quoted,
// so that a name like "true" or "1e3" stays a string for every YAML reader.
inline YAML::Emitter& Text(YAML::Emitter& e, const std::string& s) { return e << YAML::DoubleQuoted << s; }

// `key: ["a", "b"]`, each element quoted.
void Args(YAML::Emitter& e, const char* key, const std::vector<std::string>& args);

// A container's cpu and memory; an empty one is left out.
struct Amounts {
  std::string cpu, memory;
};
// `resources: {requests: ..., limits: ...}`; no limits when `limits` is null.
void Resources(YAML::Emitter& e, const Amounts& requests, const Amounts* limits);

// `securityContext` for a container: the given identity, no privilege
// escalation, every capability dropped, and (when `read_only_root`) a
// read-only root filesystem.
struct Identity {
  int uid = 0, gid = 0;
  bool read_only_root = false;
};
void SecurityContext(YAML::Emitter& e, const Identity& id);

}  // namespace regdisk::vm::k8s
