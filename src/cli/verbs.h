// The command line as a table of verbs. Each file cmd_*.cc lists one group
// of verbs (their arguments, help and action); a program (cli/app.h) adds
// its table to the CLI11 app and runs the verb the command line names:
// regdisk all of them, regdisk-node the node verbs. A verb's action
// returns a Status to the one exit point (cli/exit.h) and never prints an
// error itself.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "lazy/peer_chunks.h"
#include "resolve/store.h"
#include "util/status.h"

namespace regdisk::cli {

// The options before the verb.
struct Globals {
  std::string store;  // --store; empty: layout::DefaultStorePath()
  bool quiet = false;
};

// What a verb does once the whole command line is parsed.
using Action = std::function<Status()>;

struct Verb {
  // "build", or "GROUP VERB" for a verb under a command that only groups
  // verbs ("cache gc", "render pod"); the group is made by the first such
  // verb, with kGroups' summary.
  std::string name;
  std::string summary;  // one line, in the command list
  // Command lines shown first in the verb's --help; at least one.
  std::vector<std::string> examples;
  std::string notes;  // more help after the examples; may be empty
  // Adds the verb's arguments and options to `cmd`; returns its action,
  // which reads them (and `g`) when it runs.
  std::function<Action(CLI::App* cmd, const Globals& g)> setup;
};

// The commands that only group verbs.
struct Group {
  const char* name;
  const char* summary;
};
inline constexpr Group kGroups[] = {
    {"cache", "The node's disk cache"},
    {"render", "Render manifests: a VM's launcher Pod or domain, the nodes' DaemonSet"},
};

// The groups of verbs, one file each.
std::vector<Verb> BuildVerbs();     // cmd_build.cc
std::vector<Verb> ImageVerbs();     // cmd_images.cc
std::vector<Verb> RegistryVerbs();  // cmd_registry.cc
std::vector<Verb> NodeVerbs();      // cmd_node.cc
std::vector<Verb> VmVerbs();        // cmd_vm.cc

// A verb whose arguments are one struct: `add` binds them to the command
// line, `run` acts on them.
template <typename Args>
Verb ArgsVerb(std::string name, std::string summary, std::vector<std::string> examples, std::string notes,
              std::function<void(CLI::App*, Args&)> add, Status (*run)(const Args&)) {
  return Verb{std::move(name), std::move(summary), std::move(examples), std::move(notes),
              [add, run](CLI::App* cmd, const Globals&) -> Action {
                auto args = std::make_shared<Args>();
                add(cmd, *args);
                return [args, run] { return run(*args); };
              }};
}

// A maker of ArgsVerbs for a group whose every verb also takes `common`'s
// options (the node verbs' --root, say): call it as ArgsVerb without the
// template argument.
template <typename Args>
auto ArgsVerbsWith(std::function<void(CLI::App*, Args&)> common) {
  return [common](std::string name, std::string summary, std::vector<std::string> examples, std::string notes,
                  std::function<void(CLI::App*, Args&)> add, Status (*run)(const Args&)) {
    auto both = [add, common](CLI::App* cmd, Args& a) {
      add(cmd, a);
      common(cmd, a);
    };
    return ArgsVerb<Args>(std::move(name), std::move(summary), std::move(examples), std::move(notes), both, run);
  };
}

// --root, the node state root (resolve::NodeRoot).
void AddRootFlag(CLI::App* cmd, std::string& root);

// Adds skopeo's registry flags (--creds, --tls-verify, ...) to `cmd`.
void AddRegistryFlags(CLI::App* cmd, resolve::RegistryFlags& flags);

// --max-disk-size, the largest disk a verb accepts (resolve::MaxDiskSize).
void AddMaxDiskSizeFlag(CLI::App* cmd, std::string& value);
// --fill-rate and --fill-delay: a lazily served disk's background fill;
// --peers, --peer-self and --peer-timeout: where chunks come from besides
// the registry (checked while the command line is parsed).
void AddFillFlags(CLI::App* cmd, resolve::FillFlags& flags);
// The peers of `serve` for a full prepare's fill
// (cache::CacheOptions::open_peers), logging to stderr; nullptr: none.
StatusOr<std::shared_ptr<lazy::PeerChunks>> OpenPeers(const lazy::ServeConfig& serve);

// The verb table: every group above, in the order --help lists them
// (all_verbs.cc).
std::vector<Verb> AllVerbs();

// Adds `verbs` to `app`; the one the command line names sets `*chosen` to
// its action while `app` parses.
void AddVerbs(CLI::App& app, const std::vector<Verb>& verbs, const Globals& g, Action* chosen);

}  // namespace regdisk::cli
