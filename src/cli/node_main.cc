// regdisk-node: the node verbs of regdisk alone (prepare, release, cache ls,
// cache gc, peer), for the agent that runs one per VM. The same verbs, options and
// --root as `regdisk`, from the same table (cmd_node.cc), but linked without
// libvirt (runtime/) and the libraries it loads, which cost a VM's prepare
// more than its work.
#include "cli/app.h"

int main(int argc, char** argv) {
  using namespace regdisk::cli;
  return RunProgram({"regdisk-node",
                     "regdisk-node: the node's disk cache, the node verbs of regdisk alone\n"
                     "(same verbs, options and --root), starting fast enough to run once per VM.\n\n"
                     "Give a VM its overlay:  regdisk-node prepare --vm web-0 registry.example.com/disks/fedora:38\n"
                     "End its lease:          regdisk-node release --vm web-0\n"
                     "See and trim the cache: regdisk-node cache ls; regdisk-node cache gc --max-size 20Gi\n"
                     "Serve chunks to peers:  regdisk-node peer --listen 0.0.0.0:7480",
                     /*store=*/false},
                    NodeVerbs(), argc, argv);
}
