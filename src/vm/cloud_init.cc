#include "vm/cloud_init.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/fs.h"

namespace regdisk::vm {
namespace {

using nlohmann::json;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

Status CheckName(const char* field, const std::string& v, bool required) {
  if (required && v.empty()) return InvalidArgument(std::string("cloud-init ") + field + ": required");
  if (v.size() > kMaxCloudInitNameBytes) {
    return InvalidArgument(std::string("cloud-init ") + field + ": longer than " +
                           std::to_string(kMaxCloudInitNameBytes) + " bytes");
  }
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgument(std::string("cloud-init ") + field + ": control character in " + Quote(v));
    }
  }
  return OkStatus();
}

Status CheckData(const char* field, const std::string& v) {
  if (v.size() > kMaxCloudInitDataBytes) {
    return InvalidArgument(std::string("cloud-init ") + field + ": " + std::to_string(v.size()) +
                           " bytes, more than the limit of " + std::to_string(kMaxCloudInitDataBytes));
  }
  return OkStatus();
}

// The files of the volume, directories first (the writer wants a parent
// before its children).
std::vector<std::pair<std::string, std::string>> Files(const CloudInitSource& s) {
  std::vector<std::pair<std::string, std::string>> f;
  if (s.kind == CloudInitKind::kNoCloud) {
    json meta = {{"instance-id", s.instance_id}};
    if (!s.hostname.empty()) meta["local-hostname"] = s.hostname;
    f.emplace_back("meta-data", meta.dump() + "\n");
    f.emplace_back("user-data", s.user_data);
    if (s.network_data) f.emplace_back("network-config", *s.network_data);
  } else {
    json meta = {{"instance_id", s.instance_id}, {"hostname", s.hostname}, {"name", s.hostname}};
    if (!s.uuid.empty()) meta["uuid"] = s.uuid;
    f.emplace_back("openstack/latest/meta_data.json", meta.dump() + "\n");
    f.emplace_back("openstack/latest/user_data", s.user_data);
    if (s.network_data) f.emplace_back("openstack/latest/network_data.json", *s.network_data);
  }
  return f;
}

Status ArchiveError(archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  return Internal("writing the cloud-init ISO: " + what + ": " + OneLine(msg ? msg : "unknown error"));
}

Status AddEntry(archive* a, const std::string& name, const std::string* data) {
  std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), data ? AE_IFREG : AE_IFDIR);
  archive_entry_set_perm(e.get(), data ? 0444 : 0555);
  archive_entry_set_size(e.get(), data ? static_cast<la_int64_t>(data->size()) : 0);
  archive_entry_set_mtime(e.get(), 0, 0);  // no host time in the entries
  if (archive_write_header(a, e.get()) != ARCHIVE_OK) return ArchiveError(a, name);
  if (data && !data->empty() &&
      archive_write_data(a, data->data(), data->size()) != static_cast<la_ssize_t>(data->size())) {
    return ArchiveError(a, name);
  }
  return OkStatus();
}

}  // namespace

const char* CloudInitLabel(CloudInitKind kind) {
  return kind == CloudInitKind::kNoCloud ? "cidata" : "config-2";
}

Status WriteCloudInitIso(const CloudInitSource& s, const std::string& path) {
  RETURN_IF_ERROR(CheckName("instance-id", s.instance_id, true));
  RETURN_IF_ERROR(CheckName("hostname", s.hostname, false));
  RETURN_IF_ERROR(CheckName("uuid", s.uuid, false));
  RETURN_IF_ERROR(CheckData("user data", s.user_data));
  if (s.network_data) RETURN_IF_ERROR(CheckData("network data", *s.network_data));

  ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(path, 0644));
  std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
  const std::string options = std::string("iso9660:volume-id=") + CloudInitLabel(s.kind) +
                              ",iso9660:rockridge,iso9660:joliet,iso9660:!pad";
  if (archive_write_set_format_iso9660(a.get()) != ARCHIVE_OK ||
      archive_write_set_options(a.get(), options.c_str()) != ARCHIVE_OK) {
    return ArchiveError(a.get(), "options");
  }
  if (archive_write_open_fd(a.get(), out.fd()) != ARCHIVE_OK) return ArchiveError(a.get(), "open");
  if (s.kind == CloudInitKind::kConfigDrive) {
    for (const char* dir : {"openstack", "openstack/latest"}) RETURN_IF_ERROR(AddEntry(a.get(), dir, nullptr));
  }
  for (const auto& [name, data] : Files(s)) RETURN_IF_ERROR(AddEntry(a.get(), name, &data));
  if (archive_write_close(a.get()) != ARCHIVE_OK) return ArchiveError(a.get(), "close");
  return out.Commit().Annotate("writing " + path);
}

}  // namespace regdisk::vm
