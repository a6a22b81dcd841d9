// regdisk: store VM disks in OCI registries and boot VMs from them.
#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "util/progress.h"

int main(int argc, char** argv) {
  using namespace regdisk;
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
  cli::Globals g;
  app.add_option("--store", g.store,
                 "local image store (default $REGDISK_STORE or ~/.local/share/regdisk/store)");
  app.add_flag("-q,--quiet", g.quiet, "no progress output");
  int exit_code = 0;
  cli::RegisterBuild(app, g, exit_code);
  cli::RegisterImages(app, g, exit_code);
  cli::RegisterRegistry(app, g, exit_code);
  cli::RegisterNode(app, g, exit_code);
  cli::RegisterVm(app, g, exit_code);
  app.parse_complete_callback([&] {
    if (g.quiet) Progress::SetEnabled(false);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
