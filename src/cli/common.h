// Shared pieces of the command-line verbs: global options, opening the
// store an image name points at, and turning a Status into one line on
// stderr plus an exit code.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "layout/layout.h"
#include "oci/location.h"
#include "registry/registry.h"
#include "util/status.h"

namespace regdisk::cli {

struct Globals {
  std::string store;  // --store; empty: layout::DefaultStorePath()
  bool quiet = false;
};

// An image name opened in its store: the local store for NAME, the layout
// for oci:PATH[:TAG]. Registries (docker://) are not stores one can open
// here yet.
struct StoreImage {
  oci::ImageLocation location;
  std::unique_ptr<layout::Layout> store;
};
StatusOr<StoreImage> OpenImage(const Globals& g, const std::string& name, bool create);

// Prints "regdisk: <message>" on stderr; returns the process exit code.
int Fail(const Status& s);

// How to reach registries, as skopeo's flags say it.
struct RegistryFlags {
  std::string creds;         // --creds USER:PASSWORD
  bool tls_verify = true;    // --tls-verify=false
  std::string cert_dir;      // --cert-dir DIR
  int retry_times = 3;       // --retry-times N
  int stall_timeout = 60;    // --stall-timeout SECONDS
  int parallel = 4;          // --parallel N
  void Add(CLI::App* cmd);
  // The registry client's options these flags give.
  registry::Options Options() const;
};

// A registry repository as a Store. `secret` (an imagePullSecret name) is
// looked up as ROOT/secrets/NAME.json, an auth file.
StatusOr<std::unique_ptr<oci::Store>> OpenRegistry(const RegistryFlags& f, const oci::Reference& ref,
                                                   const std::string& auth_file = "");
// Any image location as a Store: local store, oci: layout, or registry.
struct AnyImage {
  oci::ImageLocation location;
  std::unique_ptr<oci::Store> store;
};
StatusOr<AnyImage> OpenAny(const Globals& g, const RegistryFlags& f, const std::string& name, bool create);

// The node cache root: --root, else $REGDISK_ROOT, else /var/lib/regdisk.
std::string NodeRoot(const std::string& flag);

// Each verb registers its subcommand; the callback stores the exit code.
void RegisterBuild(CLI::App& app, Globals& g, int& exit_code);
void RegisterImages(CLI::App& app, Globals& g, int& exit_code);
void RegisterRegistry(CLI::App& app, Globals& g, int& exit_code);
void RegisterNode(CLI::App& app, Globals& g, int& exit_code);
void RegisterVm(CLI::App& app, Globals& g, int& exit_code);

}  // namespace regdisk::cli
