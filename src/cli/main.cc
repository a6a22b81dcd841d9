// regdisk: store VM disks in OCI registries and boot VMs from them.
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/exit.h"
#include "cli/verbs.h"
#include "util/progress.h"

namespace {

using namespace regdisk;
using namespace regdisk::cli;

// Runs the chosen verb; an exception that escaped a library is a bug, and
// still ends at the exit point as one line.
Status RunVerb(const Action& action) {
  try {
    return action();
  } catch (const std::exception& e) {
    return Internal(std::string("uncaught exception: ") + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "regdisk: VM disks as OCI images, without a Docker daemon.\n\n"
      "Build a disk image:   regdisk build fedora.qcow2 -t vmdisks/fedora:38\n"
      "From a Dockerfile:    regdisk build -f Dockerfile . -t vmdisks/fedora:38\n"
      "List and inspect:     regdisk images; regdisk inspect vmdisks/fedora:38\n"
      "Push to a registry:   regdisk push vmdisks/fedora:38 docker://registry.example.com/vmdisks/fedora:38\n"
      "Boot VMs from it:     regdisk run vm.yaml --console\n\n"
      "Images are named as in skopeo: NAME[:TAG] is the local store,\n"
      "oci:PATH[:TAG] any OCI image layout directory, docker://NAME a registry.",
      "regdisk"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "regdisk 0.1.0");
  Globals g;
  app.add_option("--store", g.store,
                 "local image store (default $REGDISK_STORE or ~/.local/share/regdisk/store)");
  app.add_flag("-q,--quiet", g.quiet, "no progress output");
  Action chosen;
  AddVerbs(app, AllVerbs(), g, &chosen);
  // Set after the verbs, which would otherwise inherit it.
  app.footer("Errors are one line on stderr, \"regdisk: <what failed>\".\n" + ExitCodeHelp());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here too, with 0.
    return app.exit(e) == 0 ? 0 : kUsageExit;
  }
  if (g.quiet) Progress::SetEnabled(false);
  return Exit(RunVerb(chosen));
}
