// The malicious-image suite against a local layout as the source. The same
// suite runs against the real registry in tests/integration.
#include <filesystem>

#include <gtest/gtest.h>

#include "cache/node_cache.h"
#include "malicious.h"
#include "util/fs.h"

namespace regdisk::cache {
namespace {

namespace fs = std::filesystem;

TEST(MaliciousImages, EachIsRefusedWithItsCauseAndLeavesNothing) {
  TempDir dir("regdisk-mal");
  std::string src_root = dir.path() + "/source";
  auto source = *layout::Layout::Open(src_root, true);
  CacheOptions o;
  o.root = dir.path() + "/root";
  o.limits.max_layer_bytes = 64 << 20;
  StoreOpener open = [&](const oci::Reference&) -> StatusOr<std::unique_ptr<oci::Store>> {
    ASSIGN_OR_RETURN(auto l, layout::Layout::Open(src_root, false));
    return std::unique_ptr<oci::Store>(std::move(l));
  };
  auto corrupt = [&](const oci::Digest& d) {
    std::string path = source->BlobPath(d);
    std::string bytes = *ReadFile(path, 1ull << 30);
    bytes[bytes.size() / 2] ^= 0x55;
    fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
    ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());
  };
  int i = 0;
  for (const auto& c : forge::MaliciousCases(dir.path())) {
    SCOPED_TRACE(c.name);
    std::string tag = "case" + std::to_string(i++);
    Status put = c.put(*source, tag, corrupt);
    ASSERT_TRUE(put.ok()) << put.message();
    CacheOptions with = o;
    if (c.max_disk_size) with.limits.max_disk_size = c.max_disk_size;
    auto cache = *NodeCache::Open(with);
    auto lease = cache->Prepare({"vm-" + tag, "example.com/evil:" + tag, c.path, {}}, open);
    ASSERT_FALSE(lease.ok()) << "accepted";
    EXPECT_NE(lease.status().message().find(c.expect), std::string::npos) << lease.status().message();
    EXPECT_TRUE(fs::is_empty(o.root + "/disks"));
    EXPECT_TRUE(fs::is_empty(o.root + "/tmp")) << "work files left behind";
    EXPECT_TRUE(fs::is_empty(o.root + "/vms"));
    EXPECT_TRUE(cache->List()->empty());
    // One line, escaped, however many names or control characters.
    EXPECT_EQ(lease.status().message(), OneLine(lease.status().message()));
    EXPECT_LT(lease.status().message().size(), 1000u);
  }
  // Nothing from any of them in the cache's image store either.
  auto images = layout::Layout::Open(o.root + "/images", false);
  EXPECT_TRUE((*images)->ListTags()->empty());
  EXPECT_TRUE(fs::is_empty(o.root + "/images/blobs/sha256"));
}

}  // namespace
}  // namespace regdisk::cache
