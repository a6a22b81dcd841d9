#include "resolve/image.h"

#include "oci/media_types.h"

namespace regdisk::resolve {

StatusOr<std::string> PinDigest(const RegistryFlags& flags, const oci::Reference& ref) {
  if (ref.digest) return ref.digest->str();
  ASSIGN_OR_RETURN(auto store, OpenRegistry(flags, ref));
  auto m = store->GetManifest(ref.tag);
  if (!m.ok()) return m.status().Annotate(ref.str());
  return m->descriptor.digest.str();
}

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
  base.image.manifest = raw->descriptor;
  if (oci::IsIndexType(raw->descriptor.media_type)) {
    ASSIGN_OR_RETURN(oci::Index index, oci::ParseIndex(raw->bytes));
    auto pick = oci::SelectPlatform(index, platform);
    if (!pick.ok()) return pick.status().Annotate("base image " + name);
    base.image.manifest = *pick;
  }
  return base;
}

}  // namespace regdisk::resolve
