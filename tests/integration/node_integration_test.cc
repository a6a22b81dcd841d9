// The node cache against the real Distribution registry (kOpen on
// loopback): the malicious-image suite pushed to it, 16 processes preparing
// one image, kill -9 at many points of a prepare, overlays that never
// write through to the cached disk, and regdisk-node doing what regdisk
// does. The CLI runs as operators run it.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "cache/node_cache.h"
#include "forge.h"
#include "oci/media_types.h"
#include "harness.h"
#include "malicious.h"
#include "registry/repository.h"
#include "registry_server.h"

extern char** environ;

namespace regdisk::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using T = forge::TarEntry::Type;

// Half random, half zero: each 64 KiB run is one or the other. Random runs
// keep gzip honest (the layer stays large enough to be cut mid-transfer),
// zero runs become holes the extractor must keep.
std::string MixedDisk(size_t size, uint64_t seed) {
  constexpr size_t kRun = 64 << 10;
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (size_t off = 0; off < size; off += kRun) {
    if (rng() % 2 == 0) continue;
    for (size_t i = off; i + 8 <= std::min(off + kRun, size); i += 8) {
      uint64_t v = rng() | 1;  // never a zero word: the run is data
      std::memcpy(&out[i], &v, 8);
    }
  }
  return out;
}

std::string HexOf(const std::string& data) { return oci::Digest::Of(data).hex(); }

// Every entry under `dir`, for messages about what was left behind.
std::string Listing(const std::string& dir) {
  std::string out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    out += " " + fs::relative(it->path(), dir).string();
  }
  return out.empty() ? " (empty)" : out;
}

// Starts the regdisk binary without waiting, its output into `log`, so a
// test can kill it.
pid_t SpawnRegdisk(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv = {REGDISK_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return SpawnLogged(argv, log);
}

class NodeIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Neither the machine's auth files nor its node root may leak in.
    setenv("HOME", home_.path().c_str(), 1);
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("REGISTRY_AUTH_FILE");
    unsetenv("REGDISK_ROOT");
    ASSERT_EQ(server_.error(), "");
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "=== registry log\n" << server_.Log();
  }

  std::string Ref(const std::string& name) const { return server_.host() + "/" + name; }

  static registry::Options RegistryOptions() {
    registry::Options o;
    o.tls_verify = false;  // plain http on loopback
    o.retry_delay = std::chrono::milliseconds(50);
    return o;
  }

  StatusOr<std::unique_ptr<registry::Repository>> Repo(const std::string& name) const {
    ASSIGN_OR_RETURN(oci::Reference ref, oci::Reference::Parse(Ref(name)));
    return registry::Repository::Open(ref, RegistryOptions());
  }

  static StatusOr<std::unique_ptr<oci::Store>> OpenStore(const oci::Reference& ref) {
    ASSIGN_OR_RETURN(auto repo, registry::Repository::Open(ref, RegistryOptions()));
    return std::unique_ptr<oci::Store>(std::move(repo));
  }

  // Pushes `disk` as the raw /disk/disk.img of NAME:TAG (one gzip layer, the
  // annotations regdisk build writes) and keeps a copy at `input` for
  // comparisons. Returns the layer's digest.
  oci::Digest PushDisk(const std::string& name_tag, const std::string& disk, const std::string& input) {
    EXPECT_TRUE(WriteFileAtomic(input, disk).ok());
    size_t colon = name_tag.rfind(':');
    auto repo = Repo(name_tag.substr(0, colon));
    EXPECT_TRUE(repo.ok()) << repo.status().message();
    if (!repo.ok()) return {};
    forge::Layer layer{forge::MakeTar({{"disk", T::kDir}, {"disk/disk.img", T::kFile, disk}}),
                       forge::Compression::kGzip, forge::DiskAnnotations("disk.img", "raw", disk.size())};
    auto m = forge::PutImage(**repo, {layer}, name_tag.substr(colon + 1));
    EXPECT_TRUE(m.ok()) << m.status().message();
    if (!m.ok()) return {};
    return oci::ParseManifest(m->bytes)->layers[0].digest;
  }

  // `regdisk prepare` as an operator types it.
  static std::vector<std::string> PrepareArgs(const std::string& root, const std::string& vm,
                                              const std::string& ref) {
    return {"prepare", "--root", root, "--vm", vm, "--tls-verify=false", ref};
  }

  // The lease `vm` holds under `root`, read through the library.
  static cache::Lease LeaseOf(const std::string& root, const std::string& vm) {
    cache::CacheOptions o;
    o.root = root;
    auto c = cache::NodeCache::Open(o);
    EXPECT_TRUE(c.ok()) << c.status().message();
    if (!c.ok()) return {};
    auto l = (*c)->GetLease(vm);
    EXPECT_TRUE(l.ok() && *l) << vm << " holds no lease";
    return l.ok() && *l ? **l : cache::Lease{};
  }

  // Nothing of a refused image may stay in a cache root: no disk, no VM,
  // no work file, no manifest or config.
  static void ExpectNothingFrom(const std::string& root, const std::string& what) {
    for (const char* sub : {"/disks", "/vms", "/tmp", "/images/blobs/sha256"}) {
      EXPECT_EQ(CountEntries(root + sub), 0) << what << " left in " << sub << ":" << Listing(root + sub);
    }
  }

  TempDir home_{"regdisk-home"};
  TempDir dir_{"regdisk-node"};
  RegistryServer server_{RegistryServer::Flavour::kOpen};
};

// Bounds every refusal by the CLI keeps, with room for a loaded machine:
// each is seconds of work at most (20,000 fsynced files took 155 s), and
// no refused disk is written (a 2 GiB bomb once was).
constexpr double kRefusalSeconds = 60;
constexpr uint64_t kRefusalRootBytes = 16 << 20;

// Every malicious image, pushed to the real registry, is refused by the
// library (with a layer limit, for the gzip bomb) and by the CLI, with a
// one-line escaped message naming the cause, within its bounds of time and
// bytes under --root (sampled while it runs), and leaves nothing in either
// cache root.
TEST_F(NodeIntegrationTest, MaliciousImagesFromTheRegistryAreRefusedAndLeaveNothing) {
  cache::CacheOptions o;
  o.root = dir_.path() + "/lib-root";
  o.limits.max_layer_bytes = 64 << 20;  // the suite's gzip bomb inflates to 96 MiB
  const std::string cli_root = dir_.path() + "/cli-root";
  auto repo = Repo("evil");
  ASSERT_TRUE(repo.ok()) << repo.status().message();

  // The registry never checks what it serves: alter the stored bytes.
  auto corrupt = [&](const oci::Digest& d) {
    std::string path = server_.BlobDataPath(d.hex());
    auto bytes = ReadFile(path, 1 << 30);
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    (*bytes)[bytes->size() / 2] ^= 0x55;
    ASSERT_TRUE(WriteFileAtomic(path, *bytes).ok());
  };
  auto cases = forge::MaliciousCases(dir_.path());
  ASSERT_GE(cases.size(), 28u);
  int i = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string tag = "case" + std::to_string(i++), ref = Ref("evil:" + tag);
    Status put = c.put(**repo, tag, corrupt);
    ASSERT_TRUE(put.ok()) << put.message();

    cache::CacheOptions with = o;
    if (c.max_disk_size) with.limits.max_disk_size = c.max_disk_size;
    auto cache = cache::NodeCache::Open(with);
    ASSERT_TRUE(cache.ok()) << cache.status().message();
    auto lease = (*cache)->Prepare({"lib-" + tag, ref, c.path, {}}, OpenStore);
    ASSERT_FALSE(lease.ok()) << "accepted by the library";
    EXPECT_NE(lease.status().message().find(c.expect), std::string::npos) << lease.status().message();
    ExpectNothingFrom(o.root, "library");

    // The CLI keeps the default layer limit (1 TiB), which 96 MiB of zeros
    // does not reach: the bomb is the library's case only.
    if (c.name == "gzip bomb") continue;
    std::vector<std::string> args = PrepareArgs(cli_root, "cli-" + tag, ref);
    if (!c.path.empty()) args.insert(args.end(), {"--path", c.path});
    if (c.max_disk_size) args.insert(args.end(), {"--max-disk-size", std::to_string(c.max_disk_size)});
    Measured m = RegdiskMeasured(args, cli_root);
    ExpectRefused(m.result, c.expect);
    EXPECT_LT(m.seconds, kRefusalSeconds);
    EXPECT_LT(m.peak_bytes, kRefusalRootBytes);
    std::cout << "[ numbers  ] " << c.name << ": refused in " << m.seconds << " s, peak " << m.peak_bytes
              << " bytes under --root\n";
    ExpectNothingFrom(cli_root, "CLI");
  }
  auto lib = cache::NodeCache::Open(o);
  ASSERT_TRUE(lib.ok()) << lib.status().message();
  EXPECT_TRUE((*lib)->List()->empty());
  ProcessResult ls = Regdisk({"cache", "ls", "--json", "--root", cli_root});
  EXPECT_EQ(ls.exit_code, 0) << Describe(ls);
  EXPECT_EQ(ls.out, "[]\n");
}

// A 67 KB zstd layer that inflates to a 2 GiB raw disk of zeros: under the
// default limit (64 GiB) it is a valid disk and becomes one of holes, never
// 2 GiB on the node's disk; under --max-disk-size 1Gi it is refused from its
// tar header (that case is in the malicious suite). pull refuses it from its
// annotation under the same flag.
TEST_F(NodeIntegrationTest, A2GiBZstdBombStaysHolesUnderTheDefaultLimit) {
  auto repo = Repo("bomb");
  ASSERT_TRUE(repo.ok()) << repo.status().message();
  forge::Layer l;
  l.compressed = forge::ZstdZeroFileTar("disk/bomb.img", 2ull << 30);
  l.annotations = forge::DiskAnnotations("bomb.img", "raw", 2ull << 30);
  ASSERT_TRUE(forge::PutImage(**repo, {l}, "v1").ok());
  const std::string root = dir_.path() + "/root";
  Measured m = RegdiskMeasured(PrepareArgs(root, "bomb", Ref("bomb:v1")), root);
  ASSERT_EQ(m.result.exit_code, 0) << Describe(m.result);
  std::cout << "[ numbers  ] 2 GiB zstd bomb (" << l.compressed->blob.size() << " bytes) accepted in " << m.seconds
            << " s, peak " << m.peak_bytes << " bytes under --root\n";
  EXPECT_LT(m.peak_bytes, kRefusalRootBytes);
  struct stat st;
  ASSERT_EQ(::stat(LeaseOf(root, "bomb").base_file.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 2ull << 30);

  // pull keeps to the same limit, from the disk's declared size, before
  // any blob is fetched; within it, the 67 KB are stored as they are.
  const std::string store = dir_.path() + "/store";
  ProcessResult small = Regdisk({"--store", store, "pull", "--tls-verify=false", "--max-disk-size", "1Gi",
                                 "docker://" + Ref("bomb:v1")});
  ExpectRefused(small, "declares a virtual size of 2147483648 bytes, over the disk size limit of 1073741824");
  EXPECT_EQ(CountEntries(store + "/blobs/sha256"), 0) << Listing(store);
  ProcessResult pulled = Regdisk({"--store", store, "pull", "--tls-verify=false", "docker://" + Ref("bomb:v1")});
  EXPECT_EQ(pulled.exit_code, 0) << Describe(pulled);
}

// inspect reads annotations from the registry: a disk size that is not a
// number is a one-line error (it was an uncaught std::stoull), and names
// with terminal controls are printed escaped.
TEST_F(NodeIntegrationTest, InspectRefusesABadSizeAnnotationAndEscapesNames) {
  auto repo = Repo("annotated");
  ASSERT_TRUE(repo.ok()) << repo.status().message();
  auto put = [&](const std::string& tag, const std::string& path, const std::string& size) {
    forge::Layer l{forge::MakeTar({{"disk/disk.img", T::kFile, std::string(1 << 20, 'r')}})};
    l.annotations = {{oci::annotation::kDiskPath, path},
                     {oci::annotation::kDiskFormat, "raw\x1b[2J"},
                     {oci::annotation::kDiskVirtualSize, size}};
    ASSERT_TRUE(forge::PutImage(**repo, {l}, tag).ok());
  };
  put("nan", "/disk/disk.img", "12abc");
  put("esc", "/disk/\x1b]0;pwned\x07\rdisk.img", "1048576");
  put("huge", "/disk/disk.img", "99999999999999999999999");

  ProcessResult nan = Regdisk({"inspect", "--tls-verify=false", "docker://" + Ref("annotated:nan")});
  ExpectRefused(nan, "annotation io.regdisk.disk.virtual-size = \"12abc\": expected a size in bytes");
  ExpectRefused(Regdisk({"inspect", "--tls-verify=false", "docker://" + Ref("annotated:huge")}),
                "expected a size in bytes");

  ProcessResult esc = Regdisk({"inspect", "--tls-verify=false", "docker://" + Ref("annotated:esc")});
  ASSERT_EQ(esc.exit_code, 0) << Describe(esc);
  EXPECT_NE(esc.out.find("Disk:       /disk/\\x1b]0;pwned\\x07\\x0ddisk.img (raw\\x1b[2J, 1.0 MiB virtual)"),
            std::string::npos)
      << esc.out;
  EXPECT_EQ(esc.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(esc.out.find('\r'), std::string::npos);
}

// 16 processes (half regdisk, half regdisk-node) prepare one image at
// once: the registry serves its layer once, every VM gets its own overlay,
// and all share one base file whose bytes are the input's; each VM reads
// exactly the input through its overlay.
TEST_F(NodeIntegrationTest, SixteenProcessesDownloadOnceAndShareOneBase) {
  constexpr int kVms = 16;
  const std::string input = dir_.path() + "/input.raw", root = dir_.path() + "/root";
  oci::Digest layer = PushDisk("shared/disk:v1", MixedDisk(32 << 20, 16), input);
  ASSERT_FALSE(layer.empty());
  const std::string want = Sha256File(input);

  std::vector<ProcessResult> results(kVms);
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int i = 0; i < kVms; ++i) {
    threads.emplace_back([&, i] {
      // Half write the image as the other verbs do: both name one disk.
      std::string image = (i % 2 ? "docker://" : "") + Ref("shared/disk:v1");
      // One stream (--parallel 1): then one download is one layer GET.
      auto r = RunProcess({i / 2 % 2 ? REGDISK_NODE_BIN : REGDISK_BIN, "prepare", "--root", root, "--vm", "vm-" + std::to_string(i),
                           "--tls-verify=false", "--parallel", "1", image});
      if (r.ok()) results[i] = *r;
    });
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::set<std::string> overlays, bases;
  for (int i = 0; i < kVms; ++i) {
    ASSERT_EQ(results[i].exit_code, 0) << "vm-" << i << "\n" << Describe(results[i]);
    cache::Lease l = LeaseOf(root, "vm-" + std::to_string(i));
    EXPECT_EQ(results[i].out.substr(0, results[i].out.find('\n')), l.overlay);
    overlays.insert(l.overlay);
    bases.insert(l.base_file);
  }
  int gets = server_.CountRequests("GET", "/blobs/" + layer.str(), 200);
  std::cout << "[ numbers  ] " << kVms << " processes in " << seconds << " s, layer GETs: " << gets
            << ", manifest GETs: " << server_.CountRequests("GET", "/manifests/") << "\n";
  EXPECT_EQ(gets, 1);
  EXPECT_EQ(overlays.size(), static_cast<size_t>(kVms));
  ASSERT_EQ(bases.size(), 1u);
  EXPECT_EQ(Sha256File(*bases.begin()), want);
  EXPECT_EQ(CountEntries(root + "/disks"), 1);
  EXPECT_EQ(CountEntries(root + "/tmp"), 0) << Listing(root + "/tmp");
  // What each VM sees: its overlay over the base, byte for byte the input.
  for (const auto& overlay : overlays) {
    ProcessResult r = RunCmd({"qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", overlay, input});
    EXPECT_EQ(r.exit_code, 0) << overlay << "\n" << Describe(r);
  }
}

// regdisk-node is regdisk's node verbs: on one root, a lease made by either
// is seen, listed and released by the other, both print the same, a
// refusal is the same line and exit code, and its help teaches its own
// name and only its verbs.
TEST_F(NodeIntegrationTest, RegdiskNodeAndRegdiskShareOneRoot) {
  const std::string input = dir_.path() + "/input.raw", root = dir_.path() + "/root";
  const std::string ref = Ref("both/disk:v1");
  ASSERT_FALSE(PushDisk("both/disk:v1", MixedDisk(4 << 20, 4), input).empty());
  auto node = [](std::vector<std::string> args) {
    args.insert(args.begin(), REGDISK_NODE_BIN);
    return RunCmd(args);
  };
  ProcessResult pulled = node(PrepareArgs(root, "by-node", ref));
  ASSERT_EQ(pulled.exit_code, 0) << Describe(pulled);
  ProcessResult cached = Regdisk(PrepareArgs(root, "by-regdisk", ref));
  ASSERT_EQ(cached.exit_code, 0) << Describe(cached);
  EXPECT_EQ(Regdisk(PrepareArgs(root, "by-node", ref)).out, pulled.out);
  EXPECT_EQ(node(PrepareArgs(root, "by-regdisk", ref)).out, cached.out);
  EXPECT_EQ(LeaseOf(root, "by-node").base_file, LeaseOf(root, "by-regdisk").base_file);
  EXPECT_EQ(Sha256File(LeaseOf(root, "by-node").base_file), Sha256File(input));

  ProcessResult ls = Regdisk({"cache", "ls", "--root", root, "--json"});
  ASSERT_EQ(ls.exit_code, 0) << Describe(ls);
  EXPECT_NE(ls.out.find("\"by-node\""), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("\"by-regdisk\""), std::string::npos) << ls.out;
  EXPECT_EQ(node({"cache", "ls", "--root", root, "--json"}).out, ls.out);
  EXPECT_EQ(node({"cache", "ls", "--root", root}).out, Regdisk({"cache", "ls", "--root", root}).out);

  const std::vector<std::vector<std::string>> refused = {
      {"release", "--root", root, "--vm", "nobody"},
      {"prepare", "--root", root, "--vm", "Not_A_Name", ref},
      {"cache", "gc", "--root", root, "--max-size", "lots"},
      {"prepare", "--root", root, ref},  // no --vm: a usage error
  };
  for (const auto& args : refused) {
    ProcessResult a = node(args), b = Regdisk(args);
    EXPECT_NE(b.exit_code, 0) << args[0];
    EXPECT_EQ(a.exit_code, b.exit_code) << Describe(a);
    EXPECT_EQ(a.err, b.err) << args[0];
  }

  ASSERT_EQ(node({"release", "--root", root, "--vm", "by-regdisk"}).exit_code, 0);
  ASSERT_EQ(Regdisk({"release", "--root", root, "--vm", "by-node"}).exit_code, 0);
  EXPECT_EQ(CountEntries(root + "/vms"), 0) << Listing(root + "/vms");
  ProcessResult gc = node({"cache", "gc", "--root", root});
  ASSERT_EQ(gc.exit_code, 0) << Describe(gc);
  EXPECT_EQ(CountEntries(root + "/disks"), 0) << Listing(root + "/disks");

  ProcessResult help = node({"--help"});
  ASSERT_EQ(help.exit_code, 0) << Describe(help);
  for (const char* verb : {"\n  prepare ", "\n  release ", "\n  cache ", "regdisk-node prepare --vm"}) {
    EXPECT_NE(help.out.find(verb), std::string::npos) << verb << " missing from\n" << help.out;
  }
  for (const char* other : {"\n  build ", "\n  run ", "--store"}) {
    EXPECT_EQ(help.out.find(other), std::string::npos) << other << " in\n" << help.out;
  }
  ProcessResult prepare_help = node({"prepare", "--help"});
  EXPECT_NE(prepare_help.out.find("  regdisk-node prepare --vm web-0 "), std::string::npos) << prepare_help.out;
  // A verb of regdisk's that regdisk-node does not have is a usage error.
  EXPECT_EQ(node({"run", "vm.yaml"}).exit_code, Regdisk({"no-such-verb"}).exit_code);
}

// What a cache root holds after a prepare was killed: where the kill landed.
std::string Phase(const std::string& root) {
  if (CountEntries(root + "/disks") > 0) return "published";
  if (CountEntries(root + "/tmp") > 0) return "mid-work";
  return "before-work";
}

// Kills a prepare mid-way and, with no prepare of that image after it, runs
// gc: a node must not keep a dead download's bytes forever.
void ExpectGcRemovesWhatAKillLeaves(const std::string& root, const std::string& ref, Clock::duration full) {
  for (int k : {5, 3, 7}) {  // until a kill lands mid-work
    pid_t pid = SpawnRegdisk({"prepare", "--root", root, "--vm", "abandoned", "--tls-verify=false", ref},
                             "/dev/null");
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(full * k / 10);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    if (Phase(root) == "mid-work") break;
    (void)Regdisk({"release", "--root", root, "--vm", "abandoned"});
    (void)Regdisk({"cache", "gc", "--root", root});
  }
  ASSERT_EQ(Phase(root), "mid-work") << Listing(root);
  ProcessResult gc = Regdisk({"cache", "gc", "--root", root});
  ASSERT_EQ(gc.exit_code, 0) << Describe(gc);
  EXPECT_EQ(CountEntries(root + "/tmp"), 0) << Listing(root + "/tmp");
  EXPECT_EQ(CountEntries(root + "/vms"), 0) << Listing(root + "/vms");
}

// kill -9 of a prepare at points spread over its whole run (download and
// extraction stream together, then the qemu-img check, the publication and
// the overlay), then a new prepare: it always succeeds with the input's
// bytes, so nothing a killed process left half-done is ever trusted.
TEST_F(NodeIntegrationTest, KillAtAnyPointThenPrepareAgainGivesTheRightDisk) {
  const std::string input = dir_.path() + "/input.raw", root = dir_.path() + "/root";
  const std::string ref = Ref("big/disk:v1");
  ASSERT_FALSE(PushDisk("big/disk:v1", MixedDisk(64 << 20, 64), input).empty());
  const std::string want = Sha256File(input);

  // Calibrate: the kill points are fractions of an uninterrupted prepare.
  auto start = Clock::now();
  ProcessResult first = Regdisk(PrepareArgs(root, "calibrate", ref));
  auto full = Clock::now() - start;
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  EXPECT_EQ(Sha256File(LeaseOf(root, "calibrate").base_file), want);
  ASSERT_EQ(Regdisk({"release", "--root", root, "--vm", "calibrate"}).exit_code, 0);
  ASSERT_EQ(Regdisk({"cache", "gc", "--root", root}).exit_code, 0);

  std::vector<Clock::duration> delays = {std::chrono::milliseconds(5)};
  for (int k = 1; k <= 10; ++k) delays.push_back(full * k / 10);
  std::map<std::string, int> phases;
  for (size_t i = 0; i < delays.size(); ++i) {
    SCOPED_TRACE("kill after " + std::to_string(std::chrono::duration<double>(delays[i]).count()) + " s");
    std::string killed = "killed-" + std::to_string(i), after = "after-" + std::to_string(i);
    pid_t pid = SpawnRegdisk(PrepareArgs(root, killed, ref), dir_.path() + "/" + killed + ".log");
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(delays[i]);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    phases[Phase(root)]++;

    ProcessResult r = Regdisk(PrepareArgs(root, after, ref));
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(Sha256File(LeaseOf(root, after).base_file), want);
    EXPECT_EQ(CountEntries(root + "/tmp"), 0) << Listing(root + "/tmp");

    // Back to an empty cache, so that the next kill lands in a download too.
    (void)Regdisk({"release", "--root", root, "--vm", killed});  // it may hold no lease
    ASSERT_EQ(Regdisk({"release", "--root", root, "--vm", after}).exit_code, 0);
    ProcessResult gc = Regdisk({"cache", "gc", "--root", root});
    ASSERT_EQ(gc.exit_code, 0) << Describe(gc);
    EXPECT_EQ(CountEntries(root + "/disks"), 0) << Listing(root + "/disks");
    EXPECT_EQ(CountEntries(root + "/vms"), 0) << Listing(root + "/vms");
  }
  std::cout << "[ numbers  ] full prepare " << std::chrono::duration<double>(full).count() << " s; "
            << delays.size() << " kills:";
  for (const auto& [phase, n] : phases) std::cout << " " << phase << "=" << n;
  std::cout << "\n";
  // The spread must have reached the download/extraction itself.
  EXPECT_GE(phases["mid-work"], 1);
  ExpectGcRemovesWhatAKillLeaves(root, ref, full);
}

// A VM's writes land in its overlay only: the cached disk's hash does not
// move, the overlay reads back the new bytes over the old ones, and another
// VM on the same disk still sees the input.
TEST_F(NodeIntegrationTest, OverlayWritesNeverReachTheCachedDisk) {
  if (!HaveProgram("qemu-io")) GTEST_SKIP() << "qemu-io (qemu-utils) is not installed";
  const std::string input = dir_.path() + "/input.raw", root = dir_.path() + "/root";
  const std::string disk = MixedDisk(8 << 20, 8);
  ASSERT_FALSE(PushDisk("vm/disk:v1", disk, input).empty());
  ProcessResult w1 = Regdisk(PrepareArgs(root, "writer", Ref("vm/disk:v1")));
  ASSERT_EQ(w1.exit_code, 0) << Describe(w1);
  // The reader names the root relatively (--root root, from dir_): its
  // overlay must still find the shared disk.
  std::vector<std::string> args = {"env", "-C", dir_.path(), REGDISK_BIN};
  for (const auto& a : PrepareArgs("root", "reader", Ref("vm/disk:v1"))) args.push_back(a);
  ProcessResult r1 = RunCmd(args);
  ASSERT_EQ(r1.exit_code, 0) << Describe(r1);
  cache::Lease writer = LeaseOf(root, "writer"), reader = LeaseOf(root, "reader");
  ASSERT_EQ(writer.base_file, reader.base_file);
  const std::string base_hash = Sha256File(writer.base_file);
  ASSERT_EQ(base_hash, HexOf(disk));

  // The overlay names its backing file and format: qemu never probes.
  ProcessResult info = RunCmd({"qemu-img", "info", "-f", "qcow2", writer.overlay});
  EXPECT_NE(info.out.find("backing file: " + writer.base_file), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("backing file format: raw"), std::string::npos) << info.out;

  ProcessResult w = RunCmd({"qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 1M", writer.overlay});
  ASSERT_EQ(w.exit_code, 0) << Describe(w);
  EXPECT_EQ(Sha256File(writer.base_file), base_hash);

  ProcessResult back = RunCmd({"qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 1M", writer.overlay});
  EXPECT_EQ(back.exit_code, 0) << Describe(back);
  EXPECT_EQ(back.out.find("verification failed"), std::string::npos) << Describe(back);
  // The whole guest view: 1 MiB of 0xab, then the input's bytes.
  std::string seen = dir_.path() + "/seen.raw", expect = disk;
  std::memset(expect.data(), 0xab, 1 << 20);
  ASSERT_EQ(RunCmd({"qemu-img", "convert", "-f", "qcow2", "-O", "raw", writer.overlay, seen}).exit_code, 0);
  EXPECT_EQ(Sha256File(seen), HexOf(expect));
  ProcessResult other = RunCmd({"qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", reader.overlay, input});
  EXPECT_EQ(other.exit_code, 0) << Describe(other);

  // The lease ends with the overlay; the shared disk stays as it was.
  ASSERT_EQ(Regdisk({"release", "--root", root, "--vm", "writer"}).exit_code, 0);
  EXPECT_FALSE(PathExists(writer.overlay));
  EXPECT_EQ(Sha256File(writer.base_file), base_hash);
  struct stat st;
  ASSERT_EQ(::stat(writer.base_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

}  // namespace
}  // namespace regdisk::testing
