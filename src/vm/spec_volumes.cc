// spec.volumes[]: containerDisk / registryDisk, cloudInitNoCloud /
// cloudInitConfigDrive (inline, base64 or from a Secret given alongside),
// emptyDisk; every other volume source is refused with its reason.
#include <algorithm>

#include "util/base64.h"
#include "vm/spec_internal.h"

namespace regdisk::vm::internal {
namespace {

constexpr const char* kNoStorage =
    "regdisk runs registry disks on one node without Kubernetes storage; use a containerDisk";
constexpr const char* kNoApiServer = "there is no Kubernetes API server to read it from on one node";

// A clean absolute path to a file: no empty, "." or ".." component, no
// control character, not "/" itself.
Status CheckDiskPath(const Field& f, const std::string& path) {
  bool ok = path.size() > 1 && path.size() <= 4096 && path.front() == '/' &&
            std::none_of(path.begin(), path.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
  std::string_view rest = std::string_view(path).substr(ok ? 1 : 0);
  while (ok) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    ok = !part.empty() && part != "." && part != "..";
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return ok ? OkStatus() : f.Error(Quoted(path) + " must be a clean absolute path to a file in the image");
}

StatusOr<RegistryDiskVolume> ParseContainerDisk(const Field& src) {
  RETURN_IF_ERROR(src.NeedMap());
  RETURN_IF_ERROR(CheckKeys(src, {Use("image"), Use("path"), Use("imagePullPolicy"), Use("imagePullSecret")}));
  RegistryDiskVolume v;
  Field image = src["image"];
  ASSIGN_OR_RETURN(v.image, image.Str(true));
  RETURN_IF_ERROR(CheckImage(image, v.image));
  ASSIGN_OR_RETURN(v.path, src["path"].Str(false));
  if (!v.path.empty()) RETURN_IF_ERROR(CheckDiskPath(src["path"], v.path));
  ASSIGN_OR_RETURN(v.pull_policy, src["imagePullPolicy"].Str(false));
  if (!v.pull_policy.empty() && v.pull_policy != "Always" && v.pull_policy != "IfNotPresent" &&
      v.pull_policy != "Never") {
    return src["imagePullPolicy"].Error(Quoted(v.pull_policy) + " is not Always, IfNotPresent or Never");
  }
  ASSIGN_OR_RETURN(v.pull_secret, src["imagePullSecret"].Str(false));
  if (!v.pull_secret.empty() && !IsDnsSubdomain(v.pull_secret)) {
    return src["imagePullSecret"].Error(Quoted(v.pull_secret) + " is not a valid secret name");
  }
  return v;
}

// A Secret's value for the first key present (KubeVirt reads "userdata" or
// "userData", "networkdata" or "networkData").
StatusOr<std::string> FromSecret(const Field& ref, const Context& ctx, const char* lower, const char* camel) {
  RETURN_IF_ERROR(ref.NeedMap());
  RETURN_IF_ERROR(CheckKeys(ref, {Use("name")}));
  ASSIGN_OR_RETURN(std::string name, ref["name"].Str(true));
  auto secret = ctx.refs->secrets.find(ctx.ns + "/" + name);
  if (secret == ctx.refs->secrets.end()) {
    return ref["name"].Error("no Secret " + Quoted(name) + " in namespace " + Quoted(ctx.ns) +
                             " among the given files (name the file holding it)");
  }
  for (const char* k : {lower, camel}) {
    auto v = secret->second.find(k);
    if (v != secret->second.end()) return v->second;
  }
  return ref["name"].Error("Secret " + Quoted(name) + " has no " + lower + " or " + camel + " key");
}

// One of `inline_key`, `base64_key`, `secret_key`; nullopt when none is set.
StatusOr<std::optional<std::string>> CloudInitPart(const Field& src, const Context& ctx, const char* inline_key,
                                                   const char* base64_key, const char* secret_key,
                                                   const char* lower, const char* camel) {
  int set = 0;
  for (const char* k : {inline_key, base64_key, secret_key}) set += src[k].present();
  if (set > 1) {
    return src.Error(std::string("only one of ") + inline_key + ", " + base64_key + " and " + secret_key +
                     " may be set");
  }
  if (src[secret_key].present()) {
    ASSIGN_OR_RETURN(std::string text, FromSecret(src[secret_key], ctx, lower, camel));
    return std::optional<std::string>(std::move(text));
  }
  Field f = src[inline_key].present() ? src[inline_key] : src[base64_key];
  if (!f.present()) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string text, f.Str(false));
  if (f.path.ends_with("Base64")) {
    std::erase_if(text, [](char c) { return c == '\n' || c == '\r'; });  // as Go's decoder does
    std::optional<std::string> decoded = Base64Decode(text);
    if (!decoded) return f.Error("not valid base64");
    text = std::move(*decoded);
  }
  if (text.size() > kMaxInlineCloudInit) {
    return f.Error("larger than " + std::to_string(kMaxInlineCloudInit) + " bytes (KubeVirt's limit for inline data; use " + std::string(secret_key) +
                   " for more)");
  }
  return std::optional<std::string>(std::move(text));
}

StatusOr<CloudInitData> ParseCloudInit(const Field& src, const Context& ctx) {
  RETURN_IF_ERROR(src.NeedMap());
  RETURN_IF_ERROR(CheckKeys(src, {Use("userData"), Use("userDataBase64"), Use("secretRef"), Use("networkData"),
                                  Use("networkDataBase64"), Use("networkDataSecretRef")}));
  CloudInitData d;
  ASSIGN_OR_RETURN(std::optional<std::string> user,
                   CloudInitPart(src, ctx, "userData", "userDataBase64", "secretRef", "userdata", "userData"));
  ASSIGN_OR_RETURN(d.network_data, CloudInitPart(src, ctx, "networkData", "networkDataBase64",
                                                 "networkDataSecretRef", "networkdata", "networkData"));
  if (!user && !d.network_data) return src.Error("needs user data or network data (as KubeVirt does)");
  d.user_data = user.value_or("");
  return d;
}

StatusOr<uint64_t> ParseEmptyDisk(const Field& src) {
  RETURN_IF_ERROR(src.NeedMap());
  RETURN_IF_ERROR(CheckKeys(src, {Use("capacity")}));
  // A qcow2 needs a whole number of 512-byte sectors: round up.
  ASSIGN_OR_RETURN(uint64_t bytes, Bytes(src["capacity"], 1, kMaxEmptyDisk, "1 byte to 1Ti"));
  return (bytes + 511) / 512 * 512;
}

}  // namespace

StatusOr<VolumeTable> ParseVolumes(const Field& vols, const Context& ctx, VmSpec* vm) {
  ASSIGN_OR_RETURN(size_t n, vols.SeqSize(false));
  if (n > kMaxDisks) return vols.Error("more than " + std::to_string(kMaxDisks) + " volumes");
  VolumeTable table;
  bool container_disk = false, cloud_init = false;
  for (size_t i = 0; i < n; ++i) {
    Field v = vols[i];
    if (!v.present() || !v.node.IsMap()) return v.Error("must be a mapping");
    RETURN_IF_ERROR(CheckKeys(v, {
        Use("name"), Use("containerDisk"), Use("registryDisk"), Use("cloudInitNoCloud"),
        Use("cloudInitConfigDrive"), Use("emptyDisk"),
        Refuse("persistentVolumeClaim", kNoStorage), Refuse("dataVolume", kNoStorage),
        Refuse("hostDisk", "regdisk does not give a VM files of the host"),
        Refuse("ephemeral", kNoStorage),
        Refuse("configMap", kNoApiServer), Refuse("secret", kNoApiServer),
        Refuse("serviceAccount", kNoApiServer), Refuse("downwardAPI", kNoApiServer),
        Refuse("downwardMetrics", "no metrics source on one node"),
        Refuse("sysprep", "Windows sysprep volumes are not supported"),
        Refuse("memoryDump", "memory dumps are not supported")}));
    ASSIGN_OR_RETURN(std::string name, v["name"].Str(true));
    RETURN_IF_ERROR(CheckName(v["name"], name, kMaxVolumeName));
    if (table.count(name)) return v["name"].Error("duplicate volume " + Quoted(name));
    Volume vol;
    vol.name = name;
    int sources = 0;
    for (const char* k : {"containerDisk", "registryDisk", "cloudInitNoCloud", "cloudInitConfigDrive", "emptyDisk"}) {
      sources += v[k].exists;
    }
    if (sources != 1) return v.Error(sources ? "more than one volume source" : "no volume source");
    if (v["containerDisk"].exists || v["registryDisk"].exists) {
      container_disk |= v["containerDisk"].exists;
      Field src = v["containerDisk"].exists ? v["containerDisk"] : v["registryDisk"];
      ASSIGN_OR_RETURN(vol.container, ParseContainerDisk(src));
      vol.container.name = name;
    } else if (v["emptyDisk"].exists) {
      vol.kind = VolumeKind::kEmptyDisk;
      ASSIGN_OR_RETURN(vol.capacity, ParseEmptyDisk(v["emptyDisk"]));
    } else {
      bool drive = v["cloudInitConfigDrive"].exists;
      vol.kind = drive ? VolumeKind::kCloudInitConfigDrive : VolumeKind::kCloudInitNoCloud;
      ASSIGN_OR_RETURN(vol.cloud_init, ParseCloudInit(v[drive ? "cloudInitConfigDrive" : "cloudInitNoCloud"], ctx));
    }
    if (vol.kind == VolumeKind::kCloudInitNoCloud || vol.kind == VolumeKind::kCloudInitConfigDrive) {
      if (cloud_init) return v.Error("a second cloud-init volume (the guest would see two data sources)");
      cloud_init = true;
    }
    table[name] = {std::move(vol), i};
  }
  vm->source_form = container_disk ? "containerDisk" : "v1alpha1";
  return table;
}

}  // namespace regdisk::vm::internal
