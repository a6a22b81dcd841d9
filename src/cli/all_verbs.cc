// The whole verb table, regdisk's: every group (cli/verbs.h). Apart from
// verbs.cc so that regdisk-node, which has only the node verbs, links
// without the others (and the libvirt they need).
#include "cli/verbs.h"

namespace regdisk::cli {

std::vector<Verb> AllVerbs() {
  std::vector<Verb> all;
  for (auto group : {BuildVerbs, ImageVerbs, RegistryVerbs, NodeVerbs, VmVerbs}) {
    for (Verb& v : group()) all.push_back(std::move(v));
  }
  return all;
}

}  // namespace regdisk::cli
