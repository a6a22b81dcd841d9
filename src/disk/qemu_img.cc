#include "disk/qemu_img.h"

#include <nlohmann/json.hpp>

#include <cstdio>

#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::disk {

StatusOr<QemuImgInfo> RunQemuImgInfo(const std::string& path, Format format) {
  ProcessLimits limits;
  limits.cpu_seconds = kQemuImgCpuSeconds;
  limits.address_space = kQemuImgAddressSpace;
  auto r = RunChecked({"qemu-img", "info", "--output=json", "-f", FormatName(format), path}, limits);
  if (!r.ok()) return r.status().Annotate(path);
  try {
    auto j = nlohmann::json::parse(r->out);
    QemuImgInfo info;
    info.format = j.at("format").get<std::string>();
    info.virtual_size = j.at("virtual-size").get<uint64_t>();
    info.backing_filename = j.value("backing-filename", "");
    if (auto fs = j.find("format-specific"); fs != j.end() && fs->contains("data")) {
      info.data_file = (*fs)["data"].value("data-file", "");
    }
    return info;
  } catch (const nlohmann::json::exception& e) {
    return Internal(path + ": unexpected qemu-img info output: " + e.what());
  }
}

Status CrossCheck(const std::string& path, const DiskInfo& info) {
  ASSIGN_OR_RETURN(QemuImgInfo q, RunQemuImgInfo(path, info.format));
  if (q.format != FormatName(info.format)) {
    return Corrupt(path + ": qemu-img reads it as " + q.format + ", expected " + FormatName(info.format));
  }
  if (!q.backing_filename.empty()) {
    return InvalidArgument(path + ": qemu-img reports a backing file \"" + q.backing_filename + "\": refused");
  }
  if (!q.data_file.empty()) {
    return InvalidArgument(path + ": qemu-img reports an external data file \"" + q.data_file + "\": refused");
  }
  if (q.virtual_size != info.virtual_size) {
    return Corrupt(path + ": qemu-img says the virtual size is " + std::to_string(q.virtual_size) +
                   ", the header says " + std::to_string(info.virtual_size));
  }
  return OkStatus();
}


}  // namespace regdisk::disk
