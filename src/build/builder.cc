#include "build/builder.h"

#include <cstdlib>
#include <ctime>
#include <set>

#include "disk/qemu_img.h"
#include "oci/copy.h"
#include "oci/media_types.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::build {
namespace {

Status CheckDiskName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return InvalidArgument("invalid disk name \"" + name + "\": must be a plain file name");
  }
  return OkStatus();
}

// Blobs this build added to the store, removed again if the build fails.
class Undo {
 public:
  explicit Undo(oci::Store& store) : store_(store) {}
  ~Undo() {
    if (done_) return;
    for (const auto& d : added_) (void)store_.DeleteBlob(d);
  }
  void Add(const oci::Digest& d) { added_.push_back(d); }
  void Done() { done_ = true; }

 private:
  oci::Store& store_;
  std::vector<oci::Digest> added_;
  bool done_ = false;
};

StatusOr<oci::Descriptor> PutBlob(oci::Store& store, Undo& undo, std::string_view data,
                                  const std::string& media_type) {
  ASSIGN_OR_RETURN(auto writer, store.CreateBlob());
  RETURN_IF_ERROR(writer->Write(data.data(), data.size()));
  ASSIGN_OR_RETURN(oci::Descriptor d, writer->Commit(media_type, oci::Digest::Of(data)));
  if (writer->created()) undo.Add(d.digest);
  return d;
}

// A disk ready to be packed: inspected, converted if asked.
struct PreparedDisk {
  DiskSource source;
  disk::DiskInfo info;
};

StatusOr<PreparedDisk> PrepareDisk(const DiskSource& src, bool convert, const TempDir& scratch) {
  RETURN_IF_ERROR(CheckDiskName(src.name));
  ASSIGN_OR_RETURN(disk::DiskInfo info, disk::Inspect(src.path, src.format));
  PreparedDisk out{src, info};
  if (convert && info.format == disk::Format::kRaw) {
    std::string converted = scratch.path() + "/" + src.name + ".qcow2";
    auto r = RunChecked({"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", src.path, converted});
    if (!r.ok()) return r.status().Annotate("converting " + src.path + " to qcow2");
    ASSIGN_OR_RETURN(out.info, disk::Inspect(converted, disk::Format::kQcow2));
    out.source.path = converted;
  }
  // qemu-img's own reading (info, and check for a qcow2) must agree, as it
  // must again on every node.
  RETURN_IF_ERROR(disk::CrossCheck(out.source.path, out.info));
  return out;
}

}  // namespace

StatusOr<DiskStandard> ParseDiskStandard(std::string_view name) {
  if (name == "v1alpha") return DiskStandard::kV1alpha;
  if (name == "v2") return DiskStandard::kV2;
  return InvalidArgument("disk standard " + Quote(name) + ": expected v1alpha or v2");
}

const char* DiskStandardName(DiskStandard s) { return s == DiskStandard::kV2 ? "v2" : "v1alpha"; }

std::string BuildTimestamp() {
  time_t t = 0;
  if (const char* s = std::getenv("SOURCE_DATE_EPOCH"); s && *s) t = std::strtoll(s, nullptr, 10);
  char buf[32];
  tm utc;
  gmtime_r(&t, &utc);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

StatusOr<BuildResult> BuildImage(oci::Store& dest, const BuildOptions& options,
                                 const std::optional<BaseImage>& base, const std::string& tag) {
  if (options.disks.empty() && options.files.empty()) return InvalidArgument("nothing to build: no disk given");

  // 1. Check every input before writing anything.
  TempDir scratch("regdisk-build");
  std::vector<PreparedDisk> disks;
  std::set<std::string> names;
  for (const auto& src : options.disks) {
    if (!names.insert(src.name).second) {
      return InvalidArgument("two disks are named /disk/" + src.name);
    }
    ASSIGN_OR_RETURN(PreparedDisk d, PrepareDisk(src, options.convert_to_qcow2, scratch));
    disks.push_back(std::move(d));
  }
  oci::Manifest manifest;
  manifest.media_type = oci::media::kOciManifest;
  oci::ImageConfig config;
  if (base) {
    ASSIGN_OR_RETURN(oci::RawManifest raw, base->store->GetManifest(base->manifest.digest.str()));
    ASSIGN_OR_RETURN(oci::Manifest bm, oci::ParseManifest(raw.bytes));
    ASSIGN_OR_RETURN(std::string rawc, oci::ReadBlob(*base->store, bm.config, oci::kMaxManifestBytes));
    ASSIGN_OR_RETURN(config, oci::ParseImageConfig(rawc));
    manifest.layers = bm.layers;
  } else {
    config.architecture = options.platform.architecture;
    config.os = options.platform.os;
    config.variant = options.platform.variant;
  }

  // 2. Write: base layers (when the base lives elsewhere), one layer per
  // disk, config, manifest.
  Undo undo(dest);
  if (base && base->store != &dest) {
    for (const auto& l : manifest.layers) {
      ASSIGN_OR_RETURN(bool have, dest.HasBlob(l.digest));
      if (have) continue;
      RETURN_IF_ERROR(oci::CopyBlob(*base->store, l, dest));
      undo.Add(l.digest);
    }
  }
  std::string created = BuildTimestamp();
  BuildResult result;
  // Files layers are plain tar streams in both standards; v2 chunks disks.
  layer::LayerOptions plain = options.layer, disk_layer = options.layer;
  plain.chunk_size = 0;
  disk_layer.chunk_size = options.standard == DiskStandard::kV2 ? options.chunk_size : 0;
  if (!options.files.empty()) {
    ASSIGN_OR_RETURN(auto blob, dest.CreateBlob());
    layer::LayerWriter writer(std::move(blob), plain);
    RETURN_IF_ERROR(writer.AddDirectory("disk", {0, 0, 0755}));
    std::string names;
    for (const auto& f : options.files) {
      RETURN_IF_ERROR(writer.AddFile(f.dest, f.path, {0, 0, f.mode}, false));
      names += " /" + f.dest;
    }
    ASSIGN_OR_RETURN(layer::LayerResult lr, writer.Finish());
    if (lr.created) undo.Add(lr.descriptor.digest);
    manifest.layers.push_back(lr.descriptor);
    config.diff_ids.push_back(lr.diff_id);
    config.history.push_back({created, "regdisk build: ADD" + names, "", false});
  }
  if (!options.entrypoint.empty()) {
    config.entrypoint = options.entrypoint;
    config.cmd.clear();
  }
  for (const auto& d : disks) {
    ASSIGN_OR_RETURN(auto blob, dest.CreateBlob());
    layer::LayerWriter writer(std::move(blob), disk_layer);
    std::string in_layer = "disk/" + d.source.name;
    RETURN_IF_ERROR(writer.AddDirectory("disk", {0, 0, 0755}));
    RETURN_IF_ERROR(writer.AddFile(in_layer, d.source.path, {d.source.uid, d.source.gid, kDiskMode},
                                   /*sparse=*/true, options.on_bytes));
    ASSIGN_OR_RETURN(layer::LayerResult lr, writer.Finish());
    if (lr.created) undo.Add(lr.descriptor.digest);
    oci::Descriptor desc = lr.descriptor;
    desc.annotations[oci::annotation::kDiskPath] = "/" + in_layer;
    desc.annotations[oci::annotation::kDiskFormat] = disk::FormatName(d.info.format);
    desc.annotations[oci::annotation::kDiskVirtualSize] = std::to_string(d.info.virtual_size);
    manifest.layers.push_back(desc);
    config.diff_ids.push_back(lr.diff_id);
    config.history.push_back({created, "regdisk build: ADD " + d.source.name + " /" + in_layer, "", false});
    result.disks.push_back({"/" + in_layer, d.info, desc});
  }
  config.created = created;
  for (const auto& [k, v] : options.labels) config.labels[k] = v;
  // An image with disks says their standard, whatever its base said.
  if (!result.disks.empty()) config.labels[oci::annotation::kDiskStandard] = DiskStandardName(options.standard);
  for (const auto& kv : options.env) {
    // Not a structured binding: clang 14 cannot capture one in the lambda.
    const std::string prefix = kv.first + "=";
    std::erase_if(config.env, [&](const std::string& e) { return e.starts_with(prefix); });
    config.env.push_back(prefix + kv.second);
  }
  if (config.os.empty()) config.os = "linux";

  ASSIGN_OR_RETURN(manifest.config, PutBlob(dest, undo, oci::EncodeImageConfig(config), oci::media::kOciConfig));
  manifest.annotations[oci::annotation::kDiskStandard] = DiskStandardName(options.standard);
  manifest.annotations[oci::annotation::kCreated] = created;
  if (result.disks.size() == 1) {
    for (const char* key : {oci::annotation::kDiskPath, oci::annotation::kDiskFormat,
                            oci::annotation::kDiskVirtualSize}) {
      manifest.annotations[key] = result.disks[0].layer.annotations[key];
    }
  }
  ASSIGN_OR_RETURN(oci::RawManifest raw, oci::PutManifest(dest, manifest, tag));
  result.manifest = raw.descriptor;
  undo.Done();
  return result;
}

}  // namespace regdisk::build
