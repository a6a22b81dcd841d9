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

uint64_t BigEndianAt(const std::string& s, size_t offset) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(s[offset + i]);
  return v;
}

// Header fields (qcow2.txt) the table cases move.
constexpr size_t kL1TableOffset = 40, kRefcountTableOffset = 48, kNbSnapshots = 60, kSnapshotsOffset = 64;

// A fresh 16 MiB qcow2 altered by `patch`, as /disk/disk.qcow2.
template <typename Patch>
Status PatchedQcow2(const std::string& scratch, const std::string& file, oci::Store& s, const std::string& t,
                    Patch patch) {
  ASSIGN_OR_RETURN(std::string q, QemuImg(scratch, file, {}));
  patch(q);
  return OneDisk(s, t, "disk.qcow2", q, "qcow2", 16 << 20);
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
  // Class 2: decompression bombs and disk exhaustion, refused before a byte
  // of the disk is written.
  add("2 GiB zstd bomb over --max-disk-size", "over the disk size limit", [=](oci::Store& s, const std::string& t, auto&) {
    Layer l;
    l.compressed = ZstdZeroFileTar("disk/bomb.img", 2ull << 30);
    return PutImage(s, {l}, t).status();
  });
  c.back().max_disk_size = 1ull << 30;
  add("qcow2 virtual size over the disk limit", "over the disk size limit", [=](oci::Store& s, const std::string& t, auto&) {
    ASSIGN_OR_RETURN(std::string q, QemuImg(scratch, "tib.qcow2", {}));
    PutBigEndian(q, 24, 1ull << 40, 8);  // 1 TiB: under the format's 16 TiB, over the default 64 GiB
    return OneDisk(s, t, "disk.qcow2", q, "qcow2", 1ull << 40);
  });
  // Class 4: too many entries; the message lists a few.
  add("20,000 one-byte files under disk/", "more than 16 files under /disk", [=](oci::Store& s, const std::string& t, auto&) {
    std::vector<TarEntry> files = {{"disk", T::kDir}};
    for (int i = 0; i < 20000; ++i) files.push_back({"disk/f" + std::to_string(i), T::kFile, "x"});
    return Entries(s, t, files);
  });
  // Class 5: names that would drive a terminal (OSC title, clear screen, CR).
  add("control characters in file names",
      "2 files in /disk (\"\\x1b[2J\\x0db.img\", \"\\x1b]0;pwned\\x07a.img\")", [=](oci::Store& s, const std::string& t, auto&) {
    return Entries(s, t, {{"disk/\x1b]0;pwned\x07" "a.img", T::kFile, raw}, {"disk/\x1b[2J\rb.img", T::kFile, raw}});
  });
  add("file name not UTF-8", "\"disk/\\xff\\xfe.img\" is not a valid UTF-8 name", [=](oci::Store& s, const std::string& t, auto&) {
    return PutImage(s, {{UstarTar("disk/\xff\xfe.img", raw)}}, t).status();
  });
  // Class 7: qcow2 tables outside the file or over the header, in the order
  // the checks run.
  add("qcow2 refcount table over the header", "refcount table at offset 0x0 overlaps the header",
      [=](oci::Store& s, const std::string& t, auto&) {
        return PatchedQcow2(scratch, "rt.qcow2", s, t, [](std::string& q) { PutBigEndian(q, kRefcountTableOffset, 0, 8); });
      });
  add("qcow2 snapshot table outside the file", "snapshot table (offset 0x40000000", [=](oci::Store& s, const std::string& t, auto&) {
    return PatchedQcow2(scratch, "snap.qcow2", s, t, [](std::string& q) {
      PutBigEndian(q, kNbSnapshots, 1, 4);
      PutBigEndian(q, kSnapshotsOffset, 1ull << 30, 8);
    });
  });
  add("qcow2 L1 table outside the file", "L1 table (offset 0x7fff0000", [=](oci::Store& s, const std::string& t, auto&) {
    return PatchedQcow2(scratch, "l1.qcow2", s, t, [](std::string& q) { PutBigEndian(q, kL1TableOffset, 0x7fff0000, 8); });
  });
  add("qcow2 L1 and refcount tables overlap", "refcount table and L1 table overlap", [=](oci::Store& s, const std::string& t, auto&) {
    return PatchedQcow2(scratch, "ovl.qcow2", s, t,
                        [](std::string& q) { PutBigEndian(q, kL1TableOffset, BigEndianAt(q, kRefcountTableOffset), 8); });
  });
  add("qcow2 L2 table outside the file", "L1 table entry 0: qcow2 L2 table", [=](oci::Store& s, const std::string& t, auto&) {
    return PatchedQcow2(scratch, "l2.qcow2", s, t, [](std::string& q) {
      PutBigEndian(q, BigEndianAt(q, kL1TableOffset), (1ull << 63) | (1ull << 30), 8);  // copied, at 1 GiB
    });
  });
  add("qcow2 refcount block outside the file", "refcount table entry 0: qcow2 refcount block", [=](oci::Store& s, const std::string& t, auto&) {
    return PatchedQcow2(scratch, "rb.qcow2", s, t, [](std::string& q) {
      PutBigEndian(q, BigEndianAt(q, kRefcountTableOffset), 1ull << 30, 8);
    });
  });
  // What only qemu-img check sees: the header cluster's refcount is 0, so
  // qemu would hand the header out as a free cluster on the first write.
  add("qcow2 refcount of the header is 0", "qemu-img check finds", [=](oci::Store& s, const std::string& t, auto&) {
    return PatchedQcow2(scratch, "ref0.qcow2", s, t, [](std::string& q) {
      uint64_t block = BigEndianAt(q, BigEndianAt(q, kRefcountTableOffset));
      PutBigEndian(q, block, 0, 2);  // 16-bit refcounts: cluster 0's
    });
  });
  add("gzip bytes labelled zstd", "not zstd", [=](oci::Store& s, const std::string& t, auto&) {
    Layer l{MakeTar({{"disk/disk.img", T::kFile, raw}})};
    l.media_type = oci::media::kOciLayerZstd;
    return PutImage(s, {l}, t).status();
  });
  return c;
}

}  // namespace regdisk::forge
