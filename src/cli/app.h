// A program around a verb table (cli/verbs.h): the options before the verb,
// --help and --version, the parse, and the one exit point (cli/exit.h).
// `regdisk` is every verb (main.cc); `regdisk-node` the node verbs alone
// (node_main.cc), linked without libvirt, for the agent that runs one per VM.
#pragma once

#include <string>
#include <vector>

#include "cli/verbs.h"

namespace regdisk::cli {

struct Program {
  // As typed; the verbs' examples ("regdisk prepare ...") are shown with it.
  std::string name;
  std::string about;  // --help's first lines
  // --store, the local image store: the node verbs never use it.
  bool store = true;
};

// Parses `argv` against `verbs`, runs the verb it names, and returns the
// process's exit code (cli/exit.h; 2 for a wrong command line, 0 for --help
// and --version).
int RunProgram(const Program& program, std::vector<Verb> verbs, int argc, char** argv);

}  // namespace regdisk::cli
