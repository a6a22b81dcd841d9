// Shared pieces of the command-line verbs: global options, the registry
// flags, and turning a Status into one line on stderr plus an exit code.
// The policy behind them (which store a name opens, pull secrets, digest
// pinning, the base platform) is in src/resolve.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "resolve/image.h"
#include "resolve/store.h"
#include "util/status.h"

namespace regdisk::cli {

struct Globals {
  std::string store;  // --store; empty: layout::DefaultStorePath()
  bool quiet = false;
};

// Prints "regdisk: <message>" on stderr; returns the process exit code.
int Fail(const Status& s);

// Adds skopeo's registry flags (--creds, --tls-verify, ...) to `cmd`.
void AddRegistryFlags(CLI::App* cmd, resolve::RegistryFlags& flags);

// Each verb registers its subcommand; the callback stores the exit code.
void RegisterBuild(CLI::App& app, Globals& g, int& exit_code);
void RegisterImages(CLI::App& app, Globals& g, int& exit_code);
void RegisterRegistry(CLI::App& app, Globals& g, int& exit_code);
void RegisterNode(CLI::App& app, Globals& g, int& exit_code);
void RegisterVm(CLI::App& app, Globals& g, int& exit_code);

}  // namespace regdisk::cli
