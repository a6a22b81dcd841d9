// regdisk images, inspect, rmi, gc: looking at and tidying the local store.
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/verbs.h"
#include "oci/media_types.h"
#include "resolve/store.h"
#include "util/progress.h"

namespace regdisk::cli {
namespace {

using nlohmann::json;

struct DiskView {
  std::string path, format;
  std::optional<uint64_t> virtual_size;
};

// Disks as recorded in layer annotations by regdisk build. The annotations
// are outside data: a size that is not a number is an error.
StatusOr<std::vector<DiskView>> DisksOf(const oci::Manifest& m) {
  std::vector<DiskView> out;
  for (const auto& l : m.layers) {
    auto p = l.annotations.find(oci::annotation::kDiskPath);
    if (p == l.annotations.end()) continue;
    auto get = [&](const char* k) {
      auto it = l.annotations.find(k);
      return it == l.annotations.end() ? std::string() : it->second;
    };
    DiskView d{p->second, get(oci::annotation::kDiskFormat), std::nullopt};
    if (auto vs = l.annotations.find(oci::annotation::kDiskVirtualSize); vs != l.annotations.end()) {
      ASSIGN_OR_RETURN(d.virtual_size, oci::ParseSizeAnnotation(vs->first, vs->second));
    }
    out.push_back(std::move(d));
  }
  return out;
}

Status RunImages(const Globals& g, bool as_json) {
  auto store = layout::Layout::Open(resolve::LocalStorePath(g.store), true);
  if (!store.ok()) return store.status();
  auto tags = (*store)->ListTags();
  if (!tags.ok()) return tags.status();
  json list = json::array();
  if (!as_json) std::printf("%-50s %-19s %10s\n", "NAME", "DIGEST", "SIZE");
  for (const auto& [tag, desc] : *tags) {
    uint64_t size = desc.size;
    auto raw = (*store)->GetManifest(desc.digest.str());
    if (raw.ok() && oci::IsManifestType(desc.media_type)) {
      if (auto m = oci::ParseManifest(raw->bytes); m.ok()) {
        size += m->config.size;
        for (const auto& l : m->layers) size += l.size;
      }
    }
    if (as_json) {
      list.push_back({{"name", tag}, {"digest", desc.digest.str()}, {"size", size}});
    } else {
      std::printf("%-50s %-19s %10s\n", OneLine(tag).c_str(), ("sha256:" + desc.digest.short_hex()).c_str(),
                  HumanBytes(size).c_str());
    }
  }
  if (as_json) std::printf("%s\n", list.dump(2).c_str());
  return OkStatus();
}

Status RunInspect(const Globals& g, const resolve::RegistryFlags& reg, const std::string& name, bool as_json) {
  auto img = resolve::OpenImage(g.store, reg, name, false);
  if (!img.ok()) return img.status();
  auto got = img->store->GetManifest(img->location.tag);
  if (!got.ok()) return got.status();
  const oci::Descriptor* desc = &got->descriptor;
  const std::string* raw = &got->bytes;
  if (oci::IsIndexType(desc->media_type)) {
    auto index = oci::ParseIndex(*raw);
    if (!index.ok()) return index.status();
    if (as_json) {
      std::printf("%s\n", json({{"name", img->location.str()}, {"digest", desc->digest.str()},
                                {"mediaType", desc->media_type}, {"index", json::parse(*raw)}})
                              .dump(2).c_str());
      return OkStatus();
    }
    std::printf("Name:       %s\nDigest:     %s\nMediaType:  %s\nManifests:\n", OneLine(img->location.str()).c_str(),
                desc->digest.str().c_str(), OneLine(desc->media_type).c_str());
    for (const auto& m : index->manifests) {
      std::printf("  %s  %s\n", m.digest.str().c_str(), m.platform ? OneLine(m.platform->str()).c_str() : "-");
    }
    return OkStatus();
  }
  auto manifest = oci::ParseManifest(*raw);
  if (!manifest.ok()) return manifest.status();
  auto raw_config = oci::ReadBlob(*img->store, manifest->config, oci::kMaxManifestBytes);
  if (!raw_config.ok()) return raw_config.status();
  auto config = oci::ParseImageConfig(*raw_config);
  if (!config.ok()) return config.status();
  uint64_t size = manifest->config.size;
  for (const auto& l : manifest->layers) size += l.size;
  oci::Platform platform{config->architecture, config->os, config->variant};
  auto disks = DisksOf(*manifest);
  if (!disks.ok()) return disks.status().Annotate(img->location.str());

  if (as_json) {
    json jd = json::array();
    for (const auto& d : *disks) {
      jd.push_back({{"path", d.path}, {"format", d.format}, {"virtualSize", d.virtual_size.value_or(0)}});
    }
    json out = {{"name", img->location.str()}, {"digest", desc->digest.str()},
                {"mediaType", desc->media_type}, {"platform", platform.str()},
                {"created", config->created}, {"size", size}, {"disks", jd},
                {"manifest", json::parse(*raw)}, {"config", json::parse(*raw_config)}};
    std::printf("%s\n", out.dump(2).c_str());
    return OkStatus();
  }
  // Everything but the digests and sizes is outside data: escaped.
  std::printf("Name:       %s\nDigest:     %s\nMediaType:  %s\nPlatform:   %s\nCreated:    %s\n",
              OneLine(img->location.str()).c_str(), desc->digest.str().c_str(), OneLine(desc->media_type).c_str(),
              OneLine(platform.str()).c_str(), OneLine(config->created).c_str());
  for (const auto& d : *disks) {
    std::string vs = d.virtual_size ? HumanBytes(*d.virtual_size) : "?";
    std::printf("Disk:       %s (%s, %s virtual)\n", OneLine(d.path).c_str(), OneLine(d.format).c_str(), vs.c_str());
  }
  std::printf("Layers:\n");
  for (const auto& l : manifest->layers) {
    std::printf("  sha256:%s  %10s  %s\n", l.digest.short_hex().c_str(), HumanBytes(l.size).c_str(),
                OneLine(l.media_type).c_str());
  }
  std::printf("Size:       %s\n", HumanBytes(size).c_str());
  return OkStatus();
}

Status RunRmi(const Globals& g, const std::string& name) {
  auto img = resolve::OpenLayoutImage(g.store, name, false);
  if (!img.ok()) return img.status();
  Status s = img->store->Untag(img->location.tag);
  if (!s.ok()) return s;
  std::printf("untagged %s\n", OneLine(img->location.str()).c_str());
  return OkStatus();
}

Status RunGc(const Globals& g, const std::string& layout_path) {
  std::string root = !layout_path.empty() ? layout_path : resolve::LocalStorePath(g.store);
  auto store = layout::Layout::Open(root, false);
  if (!store.ok()) return store.status();
  auto r = (*store)->Gc();
  if (!r.ok()) return r.status();
  std::printf("removed %d blobs, freed %s\n", r->removed, HumanBytes(r->bytes_freed).c_str());
  return OkStatus();
}

}  // namespace

std::vector<Verb> ImageVerbs() {
  Verb images{"images", "List the images in the local store", {"regdisk images --json"}, "",
              [](CLI::App* cmd, const Globals& g) -> Action {
                auto as_json = std::make_shared<bool>(false);
                cmd->add_flag("--json", *as_json, "print JSON");
                return [&g, as_json] { return RunImages(g, *as_json); };
              }};
  Verb inspect{"inspect", "Show an image's manifest, config and disks",
               {"regdisk inspect vmdisks/fedora:38 --json",
                "regdisk inspect docker://localhost:5000/vmdisks/fedora:38"},
               "",
               [](CLI::App* cmd, const Globals& g) -> Action {
                 auto name = std::make_shared<std::string>();
                 auto as_json = std::make_shared<bool>(false);
                 auto reg = std::make_shared<resolve::RegistryFlags>();
                 cmd->add_option("image", *name, "NAME[:TAG], oci:PATH[:TAG] or docker://REF")->required();
                 cmd->add_flag("--json", *as_json, "print JSON (with the raw manifest and config)");
                 AddRegistryFlags(cmd, *reg);
                 return [&g, name, as_json, reg] { return RunInspect(g, *reg, *name, *as_json); };
               }};
  Verb rmi{"rmi", "Remove an image's tag (blobs go at the next gc)", {"regdisk rmi vmdisks/fedora:38"}, "",
           [](CLI::App* cmd, const Globals& g) -> Action {
             auto name = std::make_shared<std::string>();
             cmd->add_option("image", *name, "NAME[:TAG] or oci:PATH[:TAG]")->required();
             return [&g, name] { return RunRmi(g, *name); };
           }};
  Verb gc{"gc", "Remove blobs no tagged image uses", {"regdisk gc", "regdisk gc --layout out"}, "",
          [](CLI::App* cmd, const Globals& g) -> Action {
            auto path = std::make_shared<std::string>();
            cmd->add_option("--layout", *path, "an OCI layout directory instead of the local store");
            return [&g, path] { return RunGc(g, *path); };
          }};
  return {images, inspect, rmi, gc};
}

}  // namespace regdisk::cli
