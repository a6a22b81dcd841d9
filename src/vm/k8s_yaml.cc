#include "vm/k8s_yaml.h"

namespace regdisk::vm::k8s {

void Args(YAML::Emitter& e, const char* key, const std::vector<std::string>& args) {
  e << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const std::string& a : args) Text(e, a);
  e << YAML::EndSeq;
}

void Resources(YAML::Emitter& e, const Amounts& requests, const Amounts* limits) {
  e << YAML::Key << "resources" << YAML::Value << YAML::BeginMap;
  for (auto [key, a] : {std::pair{"requests", &requests}, std::pair{"limits", limits}}) {
    if (!a) continue;
    e << YAML::Key << key << YAML::Value << YAML::BeginMap;
    if (!a->cpu.empty()) e << YAML::Key << "cpu" << YAML::Value << YAML::DoubleQuoted << a->cpu;
    if (!a->memory.empty()) e << YAML::Key << "memory" << YAML::Value << YAML::DoubleQuoted << a->memory;
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
}

void SecurityContext(YAML::Emitter& e, const Identity& id) {
  e << YAML::Key << "securityContext" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "runAsUser" << YAML::Value << id.uid;
  e << YAML::Key << "runAsGroup" << YAML::Value << id.gid;
  e << YAML::Key << "runAsNonRoot" << YAML::Value << (id.uid != 0);
  e << YAML::Key << "allowPrivilegeEscalation" << YAML::Value << false;
  if (id.read_only_root) e << YAML::Key << "readOnlyRootFilesystem" << YAML::Value << true;
  e << YAML::Key << "capabilities" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "drop" << YAML::Value << YAML::Flow << YAML::BeginSeq << "ALL" << YAML::EndSeq;
  e << YAML::EndMap << YAML::EndMap;
}

}  // namespace regdisk::vm::k8s
