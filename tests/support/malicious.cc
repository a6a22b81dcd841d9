#include "malicious.h"

#include <fstream>

#include "forge.h"
#include "oci/media_types.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::forge {
namespace {

using T = TarEntry::Type;

StatusOr<std::string> QemuImg(const std::string& scratch, const std::string& name,
                              const std::vector<std::string>& options) {
  std::string path = scratch + "/" + name;
  std::vector<std::string> argv = {"qemu-img", "create", "-q", "-f", "qcow2"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.insert(argv.end(), {path, "16M"});
  RETURN_IF_ERROR(RunChecked(argv).status());
  return ReadFile(path);
}

void PutBigEndian(std::string& s, size_t offset, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, value >>= 8) s[offset + i] = static_cast<char>(value & 0xff);
}

Status OneDisk(oci::Store& store, const std::string& tag, const std::string& name, const std::string& data,
               const std::string& declared, uint64_t vsize) {
  return PutImage(store, {{MakeTar({{"disk", T::kDir}, {"disk/" + name, T::kFile, data}}), Compression::kGzip,
                           DiskAnnotations(name, declared, vsize)}},
                  tag)
      .status();
}

Status Entries(oci::Store& store, const std::string& tag, std::vector<TarEntry> entries) {
  return PutImage(store, {{MakeTar(entries)}}, tag).status();
}

}  // namespace

std::vector<MaliciousCase> MaliciousCases(const std::string& scratch) {
  const std::string raw(1 << 20, 'r');
  std::vector<MaliciousCase> c;
  auto add = [&](std::string name, std::string expect, auto put, std::string path = "") {
    c.push_back({std::move(name), std::move(expect), std::move(path), put});
  };
  add("path traversal", "\"..\"", [=](oci::Store& s, const std::string& t, auto&) {
    return Entries(s, t, {{"disk/../../etc/cron.d/x", T::kFile, "* * * * * root sh"}});
  });
  add("absolute name", "absolute name", [=](oci::Store& s, const std::string& t, auto&) {
    return Entries(s, t, {{"/disk/disk.img", T::kFile, raw}});
  });
  add("symlink escape", "symlink", [=](oci::Store& s, const std::string& t, auto&) {
    return Entries(s, t, {{"disk/disk.img", T::kSymlink, "", "/etc/shadow"}});
  });
  add("hardlink escape", "hardlink", [=](oci::Store& s, const std::string& t, auto&) {
    return Entries(s, t, {{"etc/shadow", T::kFile, "x"}, {"disk/disk.img", T::kHardlink, "", "etc/shadow"}});
  });
  add("device node", "device node", [=](oci::Store& s, const std::string& t, auto&) {
    return Entries(s, t, {{"disk/disk.img", T::kCharDevice}});
  });
  add("two disks without path", "2 files in /disk", [=](oci::Store& s, const std::string& t, auto&) {
    return Entries(s, t, {{"disk/a.img", T::kFile, raw}, {"disk/b.img", T::kFile, raw}});
  });
  add("qcow2 backing file /etc/shadow", "backing file", [=](oci::Store& s, const std::string& t, auto&) {
    ASSIGN_OR_RETURN(std::string q, QemuImg(scratch, "backing.qcow2", {"-u", "-b", "/etc/shadow", "-F", "raw"}));
    return OneDisk(s, t, "disk.qcow2", q, "qcow2", 16 << 20);
  });
  add("qcow2 external data file", "data file", [=](oci::Store& s, const std::string& t, auto&) {
    ASSIGN_OR_RETURN(std::string q, QemuImg(scratch, "ext.qcow2", {"-o", "data_file=" + scratch + "/ext.data"}));
    return OneDisk(s, t, "disk.qcow2", q, "qcow2", 16 << 20);
  });
  add("qcow2 unknown incompatible feature", "incompatible", [=](oci::Store& s, const std::string& t, auto&) {
    ASSIGN_OR_RETURN(std::string q, QemuImg(scratch, "feat.qcow2", {}));
    PutBigEndian(q, 72, 1ull << 7, 8);  // incompatible_features
    return OneDisk(s, t, "disk.qcow2", q, "qcow2", 16 << 20);
  });
  add("raw declared as qcow2", "declared qcow2", [=](oci::Store& s, const std::string& t, auto&) {
    return OneDisk(s, t, "disk.img", raw, "qcow2", raw.size());
  });
  add("qcow2 declared as raw", "declared raw", [=](oci::Store& s, const std::string& t, auto&) {
    ASSIGN_OR_RETURN(std::string q, QemuImg(scratch, "plain.qcow2", {}));
    return OneDisk(s, t, "disk.img", q, "raw", q.size());
  });
  add("huge virtual size", "virtual size", [=](oci::Store& s, const std::string& t, auto&) {
    ASSIGN_OR_RETURN(std::string q, QemuImg(scratch, "huge.qcow2", {}));
    PutBigEndian(q, 24, 1ull << 50, 8);  // 1 PiB
    return OneDisk(s, t, "disk.qcow2", q, "qcow2", 1ull << 50);
  });
  add("gzip bomb", "decompression bomb", [=](oci::Store& s, const std::string& t, auto&) {
    return Entries(s, t, {{"disk/bomb.img", T::kFile, std::string(96 << 20, '\0')}});
  });
  add("blob altered in storage", "digest", [=](oci::Store& s, const std::string& t, const auto& corrupt) {
    ASSIGN_OR_RETURN(oci::RawManifest m, PutImage(s, {{MakeTar({{"disk/disk.img", T::kFile, raw}}), Compression::kNone}}, t));
    ASSIGN_OR_RETURN(oci::Manifest parsed, oci::ParseManifest(m.bytes));
    corrupt(parsed.layers[0].digest);
    return OkStatus();
  });
  add("diff_id that lies", "diff_id", [=](oci::Store& s, const std::string& t, auto&) {
    Layer l{MakeTar({{"disk/disk.img", T::kFile, raw}})};
    l.diff_id = oci::Digest::Of("something else");
    return PutImage(s, {l}, t).status();
  });
  add("gzip bytes labelled zstd", "not zstd", [=](oci::Store& s, const std::string& t, auto&) {
    Layer l{MakeTar({{"disk/disk.img", T::kFile, raw}})};
    l.media_type = oci::media::kOciLayerZstd;
    return PutImage(s, {l}, t).status();
  });
  return c;
}

}  // namespace regdisk::forge
