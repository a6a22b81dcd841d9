// regdisk build: a disk file (or a Dockerfile) to a registry-disk image.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "build/builder.h"
#include "build/dockerfile.h"
#include "cli/verbs.h"
#include "oci/media_types.h"
#include "resolve/image.h"
#include "util/fs.h"
#include "util/progress.h"

namespace regdisk::cli {
namespace {

struct BuildArgs {
  std::string source;  // the disk, or the context with -f
  std::string dockerfile, tag, format, convert, compress = "gzip", standard = "v2", base, platform, disk_name;
  std::vector<std::string> labels;
  int level = -1, threads = 0;
  resolve::RegistryFlags reg;
};

Status RunBuild(const Globals& g, const BuildArgs& a) {
  build::BuildOptions opts;
  auto platform = resolve::ChoosePlatform(a.platform);
  if (!platform.ok()) return platform.status();
  opts.platform = *platform;
  auto compression = layer::ParseCompression(a.compress);
  if (!compression.ok()) return compression.status();
  opts.layer.compression = *compression;
  opts.layer.level = a.level;
  opts.layer.threads = a.threads;
  ASSIGN_OR_RETURN(opts.standard, build::ParseDiskStandard(a.standard));
  if (!a.convert.empty() && a.convert != "qcow2") {
    return InvalidArgument("--convert " + a.convert + ": only qcow2 is supported");
  }
  opts.convert_to_qcow2 = !a.convert.empty();
  for (const auto& l : a.labels) {
    auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgument("--label " + l + ": expected KEY=VALUE");
    opts.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  std::optional<disk::Format> declared;
  if (!a.format.empty()) {
    auto f = disk::ParseFormat(a.format);
    if (!f.ok()) return f.status().Annotate("--format");
    declared = *f;
  }

  std::string base_name = a.base;
  if (!a.dockerfile.empty()) {
    auto text = ReadFile(a.dockerfile, 1 << 20);
    if (!text.ok()) return text.status();
    auto df = build::ParseDockerfile(*text, a.dockerfile);
    if (!df.ok()) return df.status();
    if (df->copies.empty()) return InvalidArgument(a.dockerfile + ": no ADD or COPY of a disk into /disk");
    Status s = build::ApplyDockerfile(*df, a.source, opts);
    if (!s.ok()) return s.Annotate(a.dockerfile);
    if (base_name.empty() && df->from != "scratch") base_name = df->from;
    for (auto& d : opts.disks) d.format = declared;
  } else {
    build::DiskSource d;
    d.path = a.source;
    d.name = a.disk_name.empty() ? a.source.substr(a.source.rfind('/') + 1) : a.disk_name;
    d.format = declared;
    opts.disks.push_back(d);
  }

  // Validate the target name before any work.
  auto loc = oci::ImageLocation::Parse(a.tag);
  if (!loc.ok()) return loc.status();
  auto dest = resolve::OpenImage(g.store, a.reg, a.tag, true);
  if (!dest.ok()) return dest.status();
  std::optional<build::BaseImage> base;
  resolve::Base base_holder;
  if (!base_name.empty() && base_name != "scratch") {
    auto b = resolve::OpenBase(g.store, a.reg, base_name, *dest->store, opts.platform);
    if (!b.ok()) return b.status();
    base_holder = std::move(*b);
    base = base_holder.image;
  }

  uint64_t total = 0;
  for (const auto& d : opts.disks) {
    struct stat st;
    if (::stat(d.path.c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_size);
  }
  Progress progress("packing " + a.tag, total);
  opts.on_bytes = [&](uint64_t n) { progress.Add(n); };
  auto result = build::BuildImage(*dest->store, opts, base, dest->location.tag);
  progress.Done();
  if (!result.ok()) return result.status().Annotate("building " + a.tag);

  if (g.quiet) {
    std::printf("%s\n", result->manifest.digest.str().c_str());
    return OkStatus();
  }
  std::printf("built %s %s\n", dest->location.str().c_str(), result->manifest.digest.str().c_str());
  for (const auto& d : result->disks) {
    std::printf("  %s  %s, %s virtual, layer %s\n", OneLine(d.path_in_image).c_str(), disk::FormatName(d.info.format),
                HumanBytes(d.info.virtual_size).c_str(), HumanBytes(d.layer.size).c_str());
  }
  return OkStatus();
}

// regdisk-serve beside this binary (installed) or in the build tree.
std::string FindServe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "regdisk-serve";
  std::string dir(buf, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  for (const std::string& c : {dir + "/regdisk-serve", dir + "/../serve/regdisk-serve"}) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return dir + "/regdisk-serve";
}

struct BuildBaseArgs {
  std::string tag, serve, platform;
  resolve::RegistryFlags reg;
};

Status RunBuildBase(const Globals& g, const BuildBaseArgs& a) {
  const std::string& tag = a.tag;
  const std::string& platform = a.platform;
  std::string serve = a.serve;
  build::BuildOptions opts;
  auto p = resolve::ChoosePlatform(platform);
  if (!p.ok()) return p.status();
  opts.platform = *p;
  if (serve.empty()) {
    if (!oci::Platform::Host().Matches(opts.platform)) {
      return InvalidArgument("--platform " + platform + ": name a regdisk-serve built for it with --serve");
    }
    serve = FindServe();
  }
  opts.files.push_back({serve, "regdisk-serve", 0755});
  opts.entrypoint = {"/regdisk-serve"};
  // The wrapping standard the base serves (the seed's registry-disk-v1alpha);
  // images built on it relabel with their disks' standard.
  opts.labels[oci::annotation::kDiskStandard] = "v1alpha";
  if (::access(serve.c_str(), R_OK) != 0) {
    return NotFound("regdisk-serve not found at " + serve + " (build it, or name it with --serve)");
  }
  auto dest = resolve::OpenImage(g.store, a.reg, tag, true);
  if (!dest.ok()) return dest.status();
  auto result = build::BuildImage(*dest->store, opts, std::nullopt, dest->location.tag);
  if (!result.ok()) return result.status().Annotate("building " + tag);
  std::printf("built %s %s\n", dest->location.str().c_str(), result->manifest.digest.str().c_str());
  return OkStatus();
}

}  // namespace

std::vector<Verb> BuildVerbs() {
  Verb build{
      "build", "Pack a VM disk (raw or qcow2) into a registry-disk image",
      {"regdisk build fedora.qcow2 -t vmdisks/fedora:38",
       "regdisk build disk.raw --convert qcow2 --compress zstd -t oci:out:v1",
       "regdisk build -f Dockerfile . -t vmdisks/fedora:38"},
      "The disk lands at /disk/<name> (owner 107:107, mode 0440) in one layer;\n"
      "raw disks are stored sparse. A qcow2 with a backing file or an external\n"
      "data file is refused: it would point at files on this machine.",
      [](CLI::App* cmd, const Globals& g) -> Action {
        auto args = std::make_shared<BuildArgs>();
        cmd->add_option("source", args->source, "the disk file; with -f, the build context directory")
            ->required();
        cmd->add_option("-t,--tag", args->tag,
                        "image name: NAME[:TAG] (local store), oci:PATH[:TAG], or docker://REF (straight to a "
                        "registry)")
            ->required();
        cmd->add_option("-f,--file", args->dockerfile,
                        "build from a Dockerfile (FROM, ADD/COPY to /disk, LABEL, ENV)");
        cmd->add_option("--format", args->format, "insist on the disk's format: raw or qcow2 (default: detect)");
        cmd->add_option("--convert", args->convert, "convert raw disks with qemu-img first: qcow2");
        cmd->add_option("--compress", args->compress, "layer compression: gzip, zstd or none")
            ->capture_default_str();
        cmd->add_option("--standard", args->standard,
                        "disk layer standard: v2 (chunked, indexed: docs/disk-standard-v2.md) or v1alpha (one "
                        "stream); both are one tar any runtime reads")
            ->capture_default_str();
        cmd->add_option("--level", args->level, "compression level (default: gzip 6, zstd 3)");
        cmd->add_option("--threads", args->threads, "compression threads (default: one per core)");
        cmd->add_option("--base", args->base,
                        "put the disk on this base image (NAME[:TAG], oci:PATH[:TAG] or docker://REF)");
        cmd->add_option("--platform", args->platform, "OS/ARCH[/VARIANT] of the image (default: this machine's)");
        cmd->add_option("--disk-name", args->disk_name, "file name inside /disk (default: the disk's own)");
        cmd->add_option("--label", args->labels, "KEY=VALUE label on the image config (repeatable)");
        AddRegistryFlags(cmd, args->reg);
        return [&g, args] { return RunBuild(g, *args); };
      }};

  Verb build_base{
      "build-base", "Build the registry-disk base image (the seed's registry-disk-v1alpha)",
      {"regdisk build-base -t kubevirt.io/registry-disk-v1alpha",
       "regdisk build --base kubevirt.io/registry-disk-v1alpha disk.qcow2 -t NAME"},
      "FROM scratch with the static /regdisk-serve entrypoint and an empty /disk.\n",
      [](CLI::App* cmd, const Globals& g) -> Action {
        auto args = std::make_shared<BuildBaseArgs>();
        cmd->add_option("-t,--tag", args->tag, "image name: NAME[:TAG], oci:PATH[:TAG] or docker://REF")
            ->required();
        cmd->add_option("--serve", args->serve, "the regdisk-serve binary (default: the one beside regdisk)");
        cmd->add_option("--platform", args->platform, "OS/ARCH[/VARIANT] (default: this machine's)");
        AddRegistryFlags(cmd, args->reg);
        return [&g, args] { return RunBuildBase(g, *args); };
      }};
  return {build, build_base};
}

}  // namespace regdisk::cli
