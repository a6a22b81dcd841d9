// regdisk: store VM disks in OCI registries and boot VMs from them.
#include "cli/app.h"

int main(int argc, char** argv) {
  using namespace regdisk::cli;
  return RunProgram({"regdisk",
                     "regdisk: VM disks as OCI images, without a Docker daemon.\n\n"
                     "Build a disk image:   regdisk build fedora.qcow2 -t vmdisks/fedora:38\n"
                     "From a Dockerfile:    regdisk build -f Dockerfile . -t vmdisks/fedora:38\n"
                     "List and inspect:     regdisk images; regdisk inspect vmdisks/fedora:38\n"
                     "Push to a registry:   regdisk push vmdisks/fedora:38 docker://registry.example.com/vmdisks/fedora:38\n"
                     "Boot VMs from it:     regdisk run vm.yaml --console\n\n"
                     "Images are named as in skopeo: NAME[:TAG] is the local store,\n"
                     "oci:PATH[:TAG] any OCI image layout directory, docker://NAME a registry."},
                    AllVerbs(), argc, argv);
}
