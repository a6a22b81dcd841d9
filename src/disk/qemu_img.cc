#include "disk/qemu_img.h"

#include <nlohmann/json.hpp>

#include <cstdio>

#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::disk {

namespace {

ProcessLimits QemuImgLimits() {
  ProcessLimits limits;
  limits.cpu_seconds = kQemuImgCpuSeconds;
  limits.address_space = kQemuImgAddressSpace;
  return limits;
}

// qemu-img check's exit codes (qemu-img.texi).
constexpr int kCheckClean = 0;
constexpr int kCheckCorrupt = 2;
constexpr int kCheckLeaksOnly = 3;

}  // namespace

StatusOr<QemuImgInfo> RunQemuImgInfo(const std::string& path, Format format) {
  auto r = RunChecked({"qemu-img", "info", "--output=json", "-f", FormatName(format), path}, QemuImgLimits());
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

Status RunQemuImgCheck(const std::string& path, Format format) {
  if (format != Format::kQcow2) return OkStatus();
  ASSIGN_OR_RETURN(ProcessResult r,
                   RunProcess({"qemu-img", "check", "--output=json", "-f", FormatName(format), path}, QemuImgLimits()));
  if (r.exit_code == kCheckClean || r.exit_code == kCheckLeaksOnly) return OkStatus();
  if (r.exit_code == kCheckCorrupt) {
    uint64_t corruptions = 0;
    try {
      corruptions = nlohmann::json::parse(r.out).value("corruptions", uint64_t{0});
    } catch (const nlohmann::json::exception&) {
      // The count is for the message only.
    }
    return Corrupt(path + ": qemu-img check finds " + std::to_string(corruptions) + " corruptions: refused");
  }
  std::string err = r.err.substr(0, r.err.find('\n'));
  if (r.signal != 0) err = "killed by signal " + std::to_string(r.signal) + " (over its CPU or memory limit?)";
  return Corrupt(path + ": qemu-img check cannot check it: " + OneLine(err.substr(0, 300)));
}

Status CrossCheck(const std::string& path, const DiskInfo& info) {
  ASSIGN_OR_RETURN(QemuImgInfo q, RunQemuImgInfo(path, info.format));
  if (q.format != FormatName(info.format)) {
    return Corrupt(path + ": qemu-img reads it as " + Quote(q.format) + ", expected " + FormatName(info.format));
  }
  if (!q.backing_filename.empty()) {
    return InvalidArgument(path + ": qemu-img reports a backing file " + Quote(q.backing_filename) + ": refused");
  }
  if (!q.data_file.empty()) {
    return InvalidArgument(path + ": qemu-img reports an external data file " + Quote(q.data_file) + ": refused");
  }
  if (q.virtual_size != info.virtual_size) {
    return Corrupt(path + ": qemu-img says the virtual size is " + std::to_string(q.virtual_size) +
                   ", the header says " + std::to_string(info.virtual_size));
  }
  return RunQemuImgCheck(path, info.format);
}


}  // namespace regdisk::disk
