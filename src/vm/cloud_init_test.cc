#include "vm/cloud_init.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/fs.h"

namespace regdisk::vm {
namespace {

using nlohmann::json;

// Every regular file of the ISO by name, read back with libarchive's reader
// (which prefers the Rock Ridge names).
std::map<std::string, std::string> ReadIso(const std::string& path) {
  std::map<std::string, std::string> files;
  archive* a = archive_read_new();
  archive_read_support_format_iso9660(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 65536), ARCHIVE_OK) << archive_error_string(a);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    std::string data(static_cast<size_t>(archive_entry_size(e)), '\0');
    if (!data.empty()) {
      EXPECT_EQ(archive_read_data(a, data.data(), data.size()), static_cast<la_ssize_t>(data.size()));
    }
    files[archive_entry_pathname(e)] = data;
  }
  archive_read_free(a);
  return files;
}

// The volume identifiers (ECMA-119 8.4.6: bytes 40..71 of a volume
// descriptor, from sector 16 on): the primary descriptor's (d-characters
// only, so upper case) and the Joliet supplementary descriptor's (UCS-2 big
// endian, the label as given; blkid and so cloud-init report this one).
std::pair<std::string, std::string> VolumeIds(const std::string& path) {
  auto iso = ReadFile(path, 1 << 20);
  EXPECT_TRUE(iso.ok());
  std::string primary, joliet;
  for (size_t sector = 16; iso.ok() && (sector + 1) * 2048 <= iso->size(); ++sector) {
    std::string_view d(iso->data() + sector * 2048, 2048);
    if (d.substr(1, 5) != "CD001" || static_cast<unsigned char>(d[0]) == 255) break;
    std::string_view id = d.substr(40, 32);
    if (d[0] == 1) {
      primary = std::string(id);
    } else if (d[0] == 2) {
      for (size_t i = 0; i + 1 < id.size(); i += 2) {
        if (id[i] == 0) joliet += id[i + 1];
      }
    }
  }
  for (std::string* s : {&primary, &joliet}) {
    while (!s->empty() && s->back() == ' ') s->pop_back();
  }
  return {primary, joliet};
}

// What util-linux's blkid (which cloud-init itself runs to find the volume)
// says the label and type are, or "" when blkid is not installed.
std::string Blkid(const std::string& path) {
  for (const char* blkid : {"/usr/sbin/blkid", "/sbin/blkid"}) {
    if (::access(blkid, X_OK) != 0) continue;
    std::string cmd = std::string(blkid) + " -p -o value -s LABEL -s TYPE " + path;
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out;
  }
  return "";
}

// The primary and Joliet volume identifiers, and what blkid reports.
void ExpectLabel(const std::string& iso, const std::string& primary, const std::string& joliet) {
  EXPECT_EQ(VolumeIds(iso), std::make_pair(primary, joliet));
  std::string blkid = Blkid(iso);
  if (!blkid.empty()) {
    EXPECT_EQ(blkid, joliet + "\niso9660\n");
  }
}

// Exactly the three files, user and network data as given; the meta data.
json ExpectFiles(const std::string& iso, const CloudInitSource& s, const std::string& user,
                 const std::string& network, const std::string& meta) {
  auto files = ReadIso(iso);
  EXPECT_EQ(files.size(), 3u);
  EXPECT_EQ(files[user], s.user_data);
  EXPECT_EQ(files[network], s.network_data.value_or("(none)"));
  return json::parse(files[meta], nullptr, false);
}

TEST(CloudInitTest, NoCloudHasLabelAndFilesKeepingTheirNames) {
  TempDir dir;
  std::string iso = dir.path() + "/cloudinit.iso";
  CloudInitSource s{CloudInitKind::kNoCloud, "vm1.default", "vm1", "", "#cloud-config\npassword: x\n",
                    std::string("version: 2\n")};
  ASSERT_TRUE(WriteCloudInitIso(s, iso).ok());
  ExpectLabel(iso, "CIDATA", "cidata");
  json meta = ExpectFiles(iso, s, "user-data", "network-config", "meta-data");
  EXPECT_EQ(meta["instance-id"], "vm1.default");
  EXPECT_EQ(meta["local-hostname"], "vm1");
  struct stat st;
  ASSERT_EQ(::stat(iso.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(CloudInitTest, NoCloudWithoutNetworkDataHasNoNetworkConfig) {
  TempDir dir;
  std::string iso = dir.path() + "/c.iso";
  ASSERT_TRUE(WriteCloudInitIso({CloudInitKind::kNoCloud, "a.b", "a", "", "", std::nullopt}, iso).ok());
  auto files = ReadIso(iso);
  EXPECT_EQ(files.size(), 2u);
  EXPECT_EQ(files.count("network-config"), 0u);
  EXPECT_EQ(files["user-data"], "");
}

TEST(CloudInitTest, ConfigDriveHasOpenstackLayout) {
  TempDir dir;
  std::string iso = dir.path() + "/cd.iso";
  CloudInitSource s{CloudInitKind::kConfigDrive, "vm2.ns", "vm2", "5d307ca9-b3ef-428c-8861-06e72d69f223",
                    "#!/bin/sh\necho hi\n", std::string("{\"links\":[]}")};
  ASSERT_TRUE(WriteCloudInitIso(s, iso).ok());
  ExpectLabel(iso, "CONFIG_2", "config-2");
  json meta = ExpectFiles(iso, s, "openstack/latest/user_data", "openstack/latest/network_data.json",
                          "openstack/latest/meta_data.json");
  EXPECT_EQ(meta["instance_id"], "vm2.ns");
  EXPECT_EQ(meta["uuid"], "5d307ca9-b3ef-428c-8861-06e72d69f223");
  EXPECT_EQ(meta["hostname"], "vm2");
  EXPECT_EQ(meta["name"], "vm2");
}

TEST(CloudInitTest, UserDataKeepsEveryByte) {
  TempDir dir;
  std::string iso = dir.path() + "/c.iso";
  std::string data;
  for (int i = 0; i < 70000; ++i) data += static_cast<char>(i * 7);  // NULs, high bytes, > one block
  ASSERT_TRUE(WriteCloudInitIso({CloudInitKind::kNoCloud, "x", "", "", data, std::nullopt}, iso).ok());
  EXPECT_EQ(ReadIso(iso)["user-data"], data);
}

// Malicious input: too large data is refused by the named limit; names that
// would break out of meta-data are either refused (control characters) or
// stay inside their JSON string; nothing is left behind on refusal.
TEST(CloudInitTest, RefusesOversizedDataAndBadNamesLeavingNothing) {
  TempDir dir;
  std::string iso = dir.path() + "/c.iso";
  std::string huge(kMaxCloudInitDataBytes + 1, 'a');
  Status s = WriteCloudInitIso({CloudInitKind::kNoCloud, "x", "x", "", huge, std::nullopt}, iso);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("user data"), std::string::npos) << s.message();
  s = WriteCloudInitIso({CloudInitKind::kNoCloud, "x", "x", "", "", huge}, iso);
  EXPECT_NE(s.message().find("network data"), std::string::npos) << s.message();
  s = WriteCloudInitIso({CloudInitKind::kNoCloud, "", "x", "", "", std::nullopt}, iso);
  EXPECT_NE(s.message().find("instance-id: required"), std::string::npos) << s.message();
  s = WriteCloudInitIso({CloudInitKind::kNoCloud, "x", "evil\nuser-data: owned", "", "", std::nullopt}, iso);
  EXPECT_EQ(s.message(), "cloud-init hostname: control character in \"evil\\x0auser-data: owned\"");
  s = WriteCloudInitIso({CloudInitKind::kNoCloud, std::string(kMaxCloudInitNameBytes + 1, 'n'), "", "", "",
                         std::nullopt}, iso);
  EXPECT_NE(s.message().find("longer than 253"), std::string::npos) << s.message();
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));

  // Quotes and YAML syntax in a name stay data.
  std::string odd = "a\"b'}: {c: [d";
  ASSERT_TRUE(WriteCloudInitIso({CloudInitKind::kNoCloud, odd, odd, "", "", std::nullopt}, iso).ok());
  auto meta = json::parse(ReadIso(iso)["meta-data"]);
  EXPECT_EQ(meta.size(), 2u);
  EXPECT_EQ(meta["instance-id"], odd);
  EXPECT_EQ(meta["local-hostname"], odd);
}

TEST(CloudInitTest, ReplacesAnExistingIsoAtomically) {
  TempDir dir;
  std::string iso = dir.path() + "/c.iso";
  ASSERT_TRUE(WriteFileAtomic(iso, "old").ok());
  ASSERT_TRUE(WriteCloudInitIso({CloudInitKind::kNoCloud, "x", "", "", "new", std::nullopt}, iso).ok());
  EXPECT_EQ(ReadIso(iso)["user-data"], "new");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

}  // namespace
}  // namespace regdisk::vm
