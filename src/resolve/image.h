// The command line's policy for choosing images: digest pinning, the
// platform an image is built for, the base image a build starts from.
#pragma once

#include <memory>
#include <string>

#include "build/builder.h"
#include "oci/manifest.h"
#include "oci/reference.h"
#include "resolve/store.h"

namespace regdisk::resolve {

// --platform OS/ARCH[/VARIANT], or this machine's when `flag` is empty.
StatusOr<oci::Platform> ChoosePlatform(const std::string& flag);

// A build's base image: the manifest for `platform` (an index is narrowed
// to it), and the store it is read from.
struct Base {
  build::BaseImage image;
  std::unique_ptr<oci::Store> owned;  // the base's store, unless it is `dest`
};
// Opens the base image `name` (any image name). When it lives in the
// build's destination store `dest`, it is read through `dest` itself.
StatusOr<Base> OpenBase(const std::string& store_flag, const RegistryFlags& flags, const std::string& name,
                        oci::Store& dest, const oci::Platform& platform);

}  // namespace regdisk::resolve
