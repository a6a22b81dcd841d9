#include "resolve/image.h"

#include "oci/media_types.h"

namespace regdisk::resolve {

StatusOr<oci::Platform> ChoosePlatform(const std::string& flag) {
  if (flag.empty()) return oci::Platform::Host();
  return oci::Platform::Parse(flag);
}

StatusOr<Base> OpenBase(const std::string& store_flag, const RegistryFlags& flags, const std::string& name,
                        oci::Store& dest, const oci::Platform& platform) {
  ASSIGN_OR_RETURN(Image img, OpenImage(store_flag, flags, name, false));
  auto raw = img.store->GetManifest(img.location.tag);
  if (!raw.ok()) return raw.status().Annotate("base image " + name);
  Base base;
  base.image.store = img.store.get();
  if (img.store->id() == dest.id()) {
    base.image.store = &dest;
  } else {
    base.owned = std::move(img.store);
  }
  // An index is narrowed to `platform` down the chosen path only, as
  // prepare does (nested indexes, bounded depth).
  auto pick = oci::SelectManifest(*base.image.store, std::move(*raw), platform);
  if (!pick.ok()) return pick.status().Annotate("base image " + name);
  base.image.manifest = pick->descriptor;
  return base;
}

}  // namespace regdisk::resolve
