#include "lazy/donors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "layer/chunk_reader.h"
#include "lazy/entry.h"
#include "util/fs.h"

namespace regdisk::lazy {
Donors Donors::Scan(const std::string& root, const std::string& self_key, const layer::DiskIndex& wanted) {
  std::set<std::array<uint8_t, 32>> want;
  for (const layer::IndexEntry& e : wanted.entries) {
    if (!e.zero()) want.insert(e.sha256);
  }
  Donors d;
  size_t scanned = 0;
  for (const std::string& key : ListDir(root + "/disks")) {
    if (key == self_key || scanned >= kMaxDonorEntries) continue;
    const std::string dir = EntryDir(root, key);
    auto bytes = ReadFile(dir + "/" + kIndexFile, layer::kMaxIndexBytes);
    if (!bytes.ok()) continue;
    ++scanned;
    // The donor's index was checked against its anchor when its entry was
    // made; here it is only a list of places to try (the bytes are
    // re-hashed), so any structurally valid index will do.
    auto index = layer::DecodeIndex(*bytes, UINT64_MAX);
    if (!index.ok()) continue;
    std::string file = dir + "/" + kDiskFile;
    if (!PathExists(file)) file = dir + "/" + kPartialFile;
    for (const layer::IndexEntry& e : index->entries) {
      if (e.zero() || !want.count(e.sha256)) continue;
      std::vector<Place>& places = d.places_[e.sha256];
      if (places.size() < kMaxPlacesPerChunk) places.push_back({file, e.disk_offset, e.length});
    }
  }
  return d;
}

StatusOr<std::string> Donors::Fetch(const layer::IndexEntry& e) const {
  auto it = places_.find(e.sha256);
  if (it == places_.end()) return NotFound("no donor");
  for (const Place& p : it->second) {
    if (p.length != e.length) continue;
    int fd = ::open(p.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    std::string bytes(e.length, '\0');
    Status read = PreadAll(fd, bytes.data(), bytes.size(), p.offset, p.file);
    ::close(fd);
    if (read.ok() && layer::CheckChunk(e, bytes).ok()) return bytes;
  }
  return NotFound("no donor holds the chunk");
}

}  // namespace regdisk::lazy
