// regdisk push, pull and prepare through a misbehaving network: a fault
// proxy (tests/tools/fault_proxy.py) between the binary and a real
// registry resets connections mid-blob, answers 5xx or 429 with
// Retry-After, truncates bodies, stalls past the timeout, or flips bytes, by
// rules the test writes into its control file. Each fault either ends in
// success after retries (and the image is then byte-identical) or in a
// clear one-line error; either way neither the registry's storage, the
// local store nor the node cache holds a blob whose content does not match
// its digest, and the same command without the fault works afterwards.
//
// SecretsTest: a password (and the tokens it buys) given with --creds or
// through an auth file appears in no output of push, pull, inspect, login
// or prepare, with or without progress, when they work and when they fail
// (wrong password, registry gone, 500s whose error bodies echo the
// Authorization header back).
//
// docs/reliability.md has the table of faults and outcomes.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"
#include "registry_server.h"
#include "util/sha256.h"

extern char** environ;

namespace regdisk::testing {
namespace {

using Flavour = RegistryServer::Flavour;
using Clock = std::chrono::steady_clock;

constexpr char kPython[] = "/usr/bin/python3";

// The fault proxy in front of `upstream` (HOST:PORT), with its control
// file, log and the Authorization values it saw in `dir`.
class FaultProxy {
 public:
  FaultProxy(const std::string& upstream, const std::string& dir) : dir_(dir) {
    pid_ = SpawnLogged({kPython, REGDISK_SOURCE_DIR "/tests/tools/fault_proxy.py", "--upstream", upstream,
                  "--port-file", dir + "/proxy.port", "--rules", rules_file(), "--log", dir + "/proxy.log",
                  "--record-auth", dir + "/proxy.auth"},
                 dir + "/proxy.out");
    host_ = WaitForPortFile(&pid_, dir + "/proxy.port", dir + "/proxy.out", 15, &error_);
    if (host_.empty()) error_ = "fault proxy " + error_;
  }
  ~FaultProxy() { Stop(); }
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  const std::string& host() const { return host_; }
  const std::string& error() const { return error_; }
  std::string rules_file() const { return dir_ + "/proxy.rules"; }

  // Replaces the rules (they count requests afresh from now on).
  void SetRules(const std::vector<std::string>& rules) {
    std::string text;
    for (const auto& r : rules) text += r + "\n";
    ASSERT_TRUE(WriteFileAtomic(rules_file(), text).ok());
    log_mark_ = Log().size();
  }
  std::string Log() const {
    auto text = ReadFile(dir_ + "/proxy.log");
    return text.ok() ? *text : "";
  }
  // Faults injected since the last SetRules.
  int Faults() const { return Count("-> FAULT"); }
  // Log lines holding `part` since the last SetRules.
  int Count(const std::string& part) const {
    std::string log = Log().substr(std::min(log_mark_, Log().size()));
    int n = 0;
    for (size_t p = log.find(part); p != std::string::npos; p = log.find(part, p + 1)) ++n;
    return n;
  }
  // Every Authorization header value the proxy forwarded.
  std::vector<std::string> AuthSeen() const {
    std::vector<std::string> out;
    auto text = ReadFile(dir_ + "/proxy.auth");
    if (!text.ok()) return out;
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }

 private:
  std::string dir_, host_, error_;
  pid_t pid_ = -1;
  size_t log_mark_ = 0;
};

bool IsHex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Files under `root` that claim a digest their content does not have: in a
// registry's storage (blobs/sha256/XX/HEX/data) and in OCI layouts
// (blobs/sha256/HEX); also any other file directly in a layout's
// blobs/sha256 (a half-written blob under a temp name).
std::vector<std::string> CorruptBlobs(const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<std::string> bad;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    fs::path p = it->path();
    std::string name = p.filename(), parent = p.parent_path().filename();
    std::string grand = p.parent_path().parent_path().filename();
    std::string want;
    if (name == "data" && IsHex64(parent) && p.string().find("/blobs/sha256/") != std::string::npos) {
      want = parent;
    } else if (parent == "sha256" && grand == "blobs") {
      if (!IsHex64(name)) {
        bad.push_back(p.string() + " (not a digest)");
        continue;
      }
      want = name;
    } else {
      continue;
    }
    if (Sha256File(p) != want) bad.push_back(p.string());
  }
  return bad;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

// ----------------------------------------------------------------------------
// Faults

enum class Op { kPush, kPull, kPrepare };

struct Fault {
  std::string name;
  Op op;
  std::vector<std::string> rules;  // LAYER in a rule becomes the layer's digest
  bool succeeds;                   // after retries; else a one-line error
  std::string error;               // part of that error
  std::vector<std::string> flags;  // extra flags for regdisk
  int min_seconds = 0;             // at least this long (Retry-After)
  int max_seconds = 30;            // and at most this (stalls are cut short)
  int layer_gets = -1;             // when set, the GETs of the layer the command made
  int patches = -1;                // when set, the PATCHes the command made, one of them streamed
};

void PrintTo(const Fault& f, std::ostream* os) { *os << f.name; }

class FaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    setenv("HOME", work_.path().c_str(), 1);
    unsetenv("XDG_RUNTIME_DIR");
    setenv("REGISTRY_AUTH_FILE", (work_.path() + "/auth.json").c_str(), 1);
    ASSERT_EQ(registry_.error(), "");
    ASSERT_EQ(proxy_.error(), "");
    // Data that does not compress, in a 16 MiB sparse disk: for a push
    // 10 MiB (the layer goes as one streamed PATCH, or two PATCHes of 8 MiB
    // chunks, and a PUT; the config as one PUT), else 4 MiB.
    size_t size = GetParam().op == Op::kPush ? 10 << 20 : 4 << 20;
    std::string noise;
    for (uint64_t x = 88172645463325252ull; noise.size() < size;) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      noise.append(reinterpret_cast<const char*>(&x), sizeof x);
    }
    MakeSparseFile(disk_, 16 << 20, {1 << 20}, noise);
    disk_sha_ = Sha256File(disk_);
    auto r = Cli("src", {"build", disk_, "-t", "vm/disk:v1"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    r = Cli("src", {"inspect", "vm/disk:v1", "--json"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    size_t layers = r.out.find("\"layers\": [");
    size_t digest = r.out.find("\"digest\": \"sha256:", layers);
    ASSERT_NE(digest, std::string::npos) << r.out;
    layer_ = r.out.substr(digest + 11, 71);
  }
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "=== proxy log\n" << proxy_.Log() << "=== registry log\n" << registry_.Log();
    }
  }

  ProcessResult Cli(const std::string& store, std::vector<std::string> args,
                    const std::vector<std::string>& extra = {}) {
    args.insert(args.begin(), {"--store", work_.path() + "/" + store});
    args.insert(args.end(), extra.begin(), extra.end());
    return Regdisk(args);
  }
  // Pushes the built image to `host` as vm/disk:v1.
  ProcessResult Push(const std::string& host, const std::vector<std::string>& extra = {}) {
    return Cli("src", {"push", "vm/disk:v1", "docker://" + host + "/vm/disk:v1", "--json"}, extra);
  }
  ProcessResult Pull(const std::string& host, const std::string& store, const std::vector<std::string>& extra = {}) {
    return Cli(store, {"pull", "docker://" + host + "/vm/disk:v1", "--json"}, extra);
  }
  ProcessResult Prepare(const std::string& host, const std::vector<std::string>& extra = {}) {
    return Cli("unused", {"prepare", "--root", node_, "--vm", "vm" + std::to_string(++vms_), "--json",
                          host + "/vm/disk:v1"},
               extra);
  }
  // The disk a successful prepare printed, by sha256.
  static std::string PreparedSha(const ProcessResult& r) {
    auto base = r.out.find("\"base\": \"");
    if (base == std::string::npos) return "no base in: " + r.out;
    base += 9;
    return Sha256File(r.out.substr(base, r.out.find('"', base) - base));
  }
  // Nothing in the registry, the stores or the node cache is corrupt, and
  // every disk the node cache holds is the one built.
  void ExpectNoCorruptObject() {
    std::string storage = registry_.BlobDataPath(std::string(64, '0'));
    storage = storage.substr(0, storage.find("/blobs/sha256/"));
    ASSERT_TRUE(storage.ends_with("/docker/registry/v2")) << storage;
    EXPECT_EQ(Join(CorruptBlobs(storage)), "") << "corrupt blobs in the registry";
    EXPECT_EQ(Join(CorruptBlobs(work_.path())), "") << "corrupt blobs in a local store or the node cache";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(node_ + "/disks", ec)) {
      EXPECT_EQ(Sha256File(e.path().string() + "/disk"), disk_sha_) << e.path();
    }
    EXPECT_EQ(CountEntries(node_ + "/tmp"), 0) << "the node cache kept work files";
  }

  TempDir work_{"regdisk-fault"};
  RegistryServer registry_{Flavour::kOpen};
  FaultProxy proxy_{registry_.host(), work_.path()};
  std::string disk_ = work_.path() + "/disk.raw", disk_sha_, layer_;
  std::string node_ = work_.path() + "/node";
  int vms_ = 0;
};

TEST_P(FaultTest, FinishesOrFailsCleanly) {
  Fault f = GetParam();
  for (auto& rule : f.rules) {
    if (auto p = rule.find("LAYER"); p != std::string::npos) rule.replace(p, 5, layer_);
  }
  std::string pushed;
  if (f.op != Op::kPush) {  // the image is in the registry, put there without faults
    auto r = Push(registry_.host());
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    pushed = r.out.substr(r.out.find("sha256:"), 71);
  }
  proxy_.SetRules(f.rules);
  auto start = Clock::now();
  ProcessResult r;
  switch (f.op) {
    case Op::kPush: r = Push(proxy_.host(), f.flags); break;
    case Op::kPull: r = Pull(proxy_.host(), "dst", f.flags); break;
    case Op::kPrepare: r = Prepare(proxy_.host(), f.flags); break;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GE(proxy_.Faults(), 1) << "the fault was never injected";
  std::cerr << "fault " << f.name << ": " << (r.exit_code == 0 ? "ok" : "failed") << " after " << seconds
            << " s, " << proxy_.Faults() << " faults injected" << (r.exit_code ? ": " + r.err : "\n");
  EXPECT_GE(seconds, f.min_seconds);
  EXPECT_LE(seconds, f.max_seconds);
  if (f.layer_gets >= 0) {
    EXPECT_EQ(proxy_.Count("GET /v2/vm/disk/blobs/" + layer_), f.layer_gets);
  }
  if (f.patches >= 0) {
    EXPECT_EQ(proxy_.Count(" PATCH /v2/"), f.patches);
    EXPECT_EQ(proxy_.Count(" chunked -> "), 1);
  }
  if (f.succeeds) {
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    if (f.op == Op::kPrepare) {
      EXPECT_EQ(PreparedSha(r), disk_sha_);
    }
    if (f.op == Op::kPush) pushed = r.out.substr(r.out.find("sha256:"), 71);
    if (f.op == Op::kPull) {
      EXPECT_NE(r.out.find(pushed), std::string::npos) << r.out;
    }
  } else {
    EXPECT_NE(r.exit_code, 0) << Describe(r);
    EXPECT_TRUE(r.err.starts_with("regdisk: ")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_NE(r.err.find(proxy_.host()), std::string::npos) << "does not name the registry: " << r.err;
    EXPECT_NE(r.err.find(f.error), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
  ExpectNoCorruptObject();

  // Without the fault: the same command works, and the result is the image.
  proxy_.SetRules({});
  if (f.op == Op::kPush) {
    if (!f.succeeds) {
      r = Push(proxy_.host());
      ASSERT_EQ(r.exit_code, 0) << Describe(r);
      pushed = r.out.substr(r.out.find("sha256:"), 71);
    }
    r = Prepare(registry_.host());  // straight from the registry
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(PreparedSha(r), disk_sha_);
    EXPECT_NE(r.out.find(pushed), std::string::npos);
  } else {
    r = f.op == Op::kPull ? Pull(proxy_.host(), "dst") : Prepare(proxy_.host());
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_NE(r.out.find(pushed), std::string::npos) << r.out;
    if (f.op == Op::kPrepare) {
      EXPECT_EQ(PreparedSha(r), disk_sha_);
    }
  }
  ExpectNoCorruptObject();
}

const std::vector<std::string> kFewRetries = {"--retry-times", "1"};
const std::vector<std::string> kShortStall = {"--stall-timeout", "2"};
// A proxy that wants a Content-Length: every streamed PATCH gets 411.
const std::string kRefuseStream = "PATCH /blobs/uploads/ times=0 refuse-chunked";

const Fault kFaults[] = {
    // Pull: blob bodies.
    {"PullResetMidBlob", Op::kPull, {"GET /blobs/LAYER reset after=2000000"}, true},
    {"PullResetMidBlobTwice", Op::kPull, {"GET /blobs/LAYER times=2 reset after=1000000"}, true},
    {"PullResetEveryBlobRead", Op::kPull, {"GET /blobs/LAYER times=0 reset after=2000000"}, true},
    {"PullBlobResetAtOnceAlways", Op::kPull, {"GET /blobs/LAYER times=0 reset"}, false, "unreachable",
     kFewRetries},
    {"PullTruncatedBlob", Op::kPull, {"GET /blobs/LAYER truncate after=3000000"}, true},
    {"PullStallMidBlob", Op::kPull, {"GET /blobs/LAYER stall after=1000000 seconds=40"}, true, "", kShortStall, 0, 10},
    {"PullBlob500", Op::kPull, {"GET /blobs/ status=500"}, true},
    {"PullBlob429RetryAfter", Op::kPull, {"GET /blobs/LAYER status=429 retry-after=1"}, true, "", {}, 1},
    {"PullFlippedBlobByte", Op::kPull, {"GET /blobs/LAYER flip"}, false, "does not match its digest"},
    // Pull: parallel Range requests (the 4 MiB layer comes as four 1 MiB ranges).
    {"PullRangeIgnored", Op::kPull, {"GET /blobs/LAYER times=0 strip-range"}, true, "", {}, 0, 30, 1},
    {"PullWrongFirstRange", Op::kPull, {"GET /blobs/LAYER shift-range"}, true},
    {"PullWrongRange", Op::kPull, {"GET /blobs/LAYER nth=3 shift-range by=4096"}, true},
    {"PullShortRange", Op::kPull, {"GET /blobs/LAYER nth=2 truncate after=1000"}, true},
    {"PullWrongRangeAlways", Op::kPull, {"GET /blobs/LAYER nth=2 times=0 shift-range"}, false, "asked for bytes",
     kFewRetries},
    {"PullOneStream", Op::kPull, {"GET /blobs/LAYER times=0 delay seconds=0"}, true, "", {"--parallel", "1"}, 0, 30, 1},
    // Pull: manifests and the registry as a whole.
    {"PullManifest503Twice", Op::kPull, {"GET /manifests/ times=2 status=503"}, true},
    {"PullManifestTruncated", Op::kPull, {"GET /manifests/ truncate after=100"}, true},
    {"PullManifestNoAnswer", Op::kPull, {"GET /manifests/ delay seconds=40"}, true, "", kShortStall, 0, 10},
    {"PullFlippedManifestByte", Op::kPull, {"GET /manifests/ flip"}, false, "does not match"},
    {"PullRegistry503Always", Op::kPull, {"* /v2/ times=0 status=503"}, false, "UNAVAILABLE", kFewRetries},
    // Prepare (the node cache) through the same faults.
    {"PrepareResetMidBlob", Op::kPrepare, {"GET /blobs/LAYER reset after=2000000"}, true},
    {"PrepareStallMidBlob", Op::kPrepare, {"GET /blobs/LAYER stall after=1000000 seconds=40"}, true, "",
     kShortStall, 0, 10},
    // A v2 layer: the first read of the layer is the index's range, checked
    // against the manifest's anchor before anything else.
    {"PrepareFlippedBlobByte", Op::kPrepare, {"GET /blobs/LAYER flip"}, false, "its chunk index"},
    {"PrepareBlob503Always", Op::kPrepare, {"GET /blobs/ times=0 status=503"}, false, "UNAVAILABLE",
     kFewRetries},
    // Push: uploads.
    {"PushStartUpload503Twice", Op::kPush, {"POST /blobs/uploads/ times=2 status=503"}, true},
    {"PushStartUploadNoAnswer", Op::kPush, {"POST /blobs/uploads/ delay seconds=40"}, true, "", kShortStall, 0, 10},
    // Push: the layer streamed in one PATCH. The proxy reads the whole body
    // before it acts, so the writer has freed its first chunk: the upload
    // is lost and the blob is sent again.
    {"PushStreamResetBeforeRegistry", Op::kPush, {"PATCH /blobs/uploads/ reset-request after=0"}, true},
    {"PushStreamResetMidBody", Op::kPush, {"PATCH /blobs/uploads/ reset-request after=3000000"}, true},
    {"PushStreamAnswerLost", Op::kPush, {"PATCH /blobs/uploads/ reset"}, true},
    {"PushStream503", Op::kPush, {"PATCH /blobs/uploads/ status=503"}, true},
    {"PushStreamNoAnswer", Op::kPush, {"PATCH /blobs/uploads/ delay seconds=40"}, true, "", kShortStall, 0, 10},
    // A proxy that refuses a chunked body at once: a PATCH per chunk (two
    // for the layer) after the one refused.
    {"PushStreamRefused", Op::kPush, {kRefuseStream}, true, "", {}, 0, 30, -1, 3},
    {"PushStreamRefused400", Op::kPush, {"PATCH /blobs/uploads/ times=0 refuse-chunked code=400"}, true, "", {},
     0, 30, -1, 3},
    // Push: a PATCH per chunk (the proxy refuses the stream, the first PATCH).
    {"PushChunkResetBeforeRegistry", Op::kPush, {kRefuseStream, "PATCH /blobs/uploads/ nth=2 reset-request after=0"},
     true},
    {"PushChunkResetMidBody", Op::kPush, {kRefuseStream, "PATCH /blobs/uploads/ nth=2 reset-request after=3000000"},
     true},
    {"PushSecondChunkResetMidBody", Op::kPush,
     {kRefuseStream, "PATCH /blobs/uploads/ nth=3 reset-request after=1000000"}, true},
    {"PushChunkAnswerLost", Op::kPush, {kRefuseStream, "PATCH /blobs/uploads/ nth=2 reset"}, true},
    {"PushChunk429RetryAfter", Op::kPush, {kRefuseStream, "PATCH /blobs/uploads/ nth=2 status=429 retry-after=1"},
     true, "", {}, 1},
    {"PushFinalPut500", Op::kPush, {"PUT /blobs/uploads/ status=500"}, true},
    {"PushFinalPutResetMidBody", Op::kPush, {"PUT /blobs/uploads/ times=2 reset-request after=100"}, true},
    {"PushFinalPutAnswerLost", Op::kPush, {"PUT /blobs/uploads/ times=2 reset"}, true},
    {"PushFlippedChunkByte", Op::kPush, {"PATCH /blobs/uploads/ times=0 flip-request"}, false, "DIGEST_INVALID"},
    {"PushManifest503Twice", Op::kPush, {"PUT /manifests/ times=2 status=503"}, true},
    {"PushManifestAnswerLost", Op::kPush, {"PUT /manifests/ reset"}, true},
    {"PushRegistryGone", Op::kPush, {"* /v2/ times=0 reset-request after=0"}, false, "unreachable", kFewRetries},
};

INSTANTIATE_TEST_SUITE_P(Faults, FaultTest, ::testing::ValuesIn(kFaults),
                         [](const auto& info) { return info.param.name; });

// A push killed (SIGKILL) while the pipeline's sender has a chunk in flight
// (the proxy holds the PATCH), then run again: the second push succeeds and
// the image in the registry is the disk built.
class KilledPushTest : public FaultTest {};

TEST_P(KilledPushTest, PushAgainAfterKill) {
  proxy_.SetRules(GetParam().rules);
  pid_t pid = SpawnLogged({REGDISK_BIN, "--store", work_.path() + "/src", "push", "vm/disk:v1",
                           "docker://" + proxy_.host() + "/vm/disk:v1"},
                          work_.path() + "/killed.out");
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 400 && proxy_.Faults() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_EQ(proxy_.Faults(), 1) << "the PATCH was never held";
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the push ended before it was killed";
  proxy_.SetRules({});
  auto r = Push(proxy_.host());
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::string pushed = r.out.substr(r.out.find("sha256:"), 71);
  r = Prepare(registry_.host());
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(PreparedSha(r), disk_sha_);
  EXPECT_NE(r.out.find(pushed), std::string::npos);
  ExpectNoCorruptObject();
}

INSTANTIATE_TEST_SUITE_P(Killed, KilledPushTest,
                         ::testing::Values(Fault{"PushKilledMidBlob", Op::kPush,
                                                 {"PATCH /blobs/uploads/ delay seconds=20"}, true}),
                         [](const auto& info) { return info.param.name; });

// ----------------------------------------------------------------------------
// Secrets

// A command line for sh, each argument quoted.
std::string ShellLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += (out.empty() ? "" : " ") + q + "'";
  }
  return out;
}

class SecretsTest : public ::testing::TestWithParam<Flavour> {
 protected:
  static constexpr char kWrongPassword[] = "Wr0ng-pa55word-for-alice";

  void SetUp() override {
    setenv("HOME", work_.path().c_str(), 1);
    unsetenv("XDG_RUNTIME_DIR");
    setenv("REGISTRY_AUTH_FILE", auth_file_.c_str(), 1);
    ASSERT_EQ(registry_.error(), "");
    ASSERT_EQ(proxy_.error(), "");
    MakeSparseFile(disk_, 8 << 20, {0, 3 << 20}, std::string(200000, 's') + "secret-test-disk");
    auto r = Regdisk({"--store", store_, "build", disk_, "-t", proxy_.host() + "/sec/disk:v1"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    // What pull, inspect and prepare read, put there past the proxy.
    r = Regdisk({"--store", store_, "push", proxy_.host() + "/sec/disk:v1", "docker://" + registry_.host() + "/sec/disk:v1",
                 "--creds", std::string(RegistryServer::kUser) + ":" + RegistryServer::kPassword});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "=== proxy log\n" << proxy_.Log() << "=== registry log\n" << registry_.Log();
  }

  // Runs regdisk twice: with plain pipes, and in a terminal (script(1)) so
  // progress is drawn; `in` goes to stdin. Checks that no secret shows in
  // either's output and returns the first result.
  ProcessResult Run(const std::vector<std::string>& args, bool want_ok, const std::string& in = "") {
    std::vector<std::string> argv = {REGDISK_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string line = ShellLine(argv);
    if (!in.empty()) line = "printf '%s\\n' " + ShellLine({in}) + " | " + line;
    ProcessResult piped = RunCmd({"sh", "-c", line});
    std::string what = ShellLine(args);
    EXPECT_EQ(piped.exit_code == 0, want_ok) << what << "\n" << Describe(piped);
    ExpectNoSecret(piped.out + piped.err, what);
    if (HaveTerminal()) {
      ProcessResult tty = RunCmd({"script", "-qec", line, "/dev/null"});
      EXPECT_EQ(tty.exit_code == 0, want_ok) << what << "\n" << Describe(tty);
      ExpectNoSecret(tty.out + tty.err, what + " (in a terminal)");
    }
    ++runs_;
    return piped;
  }

  // script(1) can give commands a pseudo-terminal here.
  static bool HaveTerminal() {
    static const bool have = [] {
      auto r = RunProcess({"script", "-qec", "test -t 1", "/dev/null"});
      bool ok = r.ok() && r->exit_code == 0;
      if (!ok) std::cerr << "no pseudo-terminal (script -qec): progress output is not checked\n";
      return ok;
    }();
    return have;
  }

  void ExpectNoSecret(const std::string& text, const std::string& what) {
    for (const auto& s : Secrets()) {
      EXPECT_EQ(text.find(s), std::string::npos) << what << " shows secret \"" << s << "\":\n" << text;
    }
  }

  // The passwords, their base64 forms, and every Authorization value sent
  // (Basic credentials, bearer tokens) with its credential part alone.
  std::vector<std::string> Secrets() const {
    std::vector<std::string> out = {RegistryServer::kPassword, kWrongPassword};
    for (const char* pw : {RegistryServer::kPassword, kWrongPassword}) {
      std::string userpass = std::string(RegistryServer::kUser) + ":" + pw;
      out.push_back(Base64(userpass));
    }
    for (const auto& v : proxy_.AuthSeen()) {
      out.push_back(v);
      if (auto space = v.find(' '); space != std::string::npos && v.size() - space > 8) {
        out.push_back(v.substr(space + 1));
      }
    }
    return out;
  }

  static std::string Base64(const std::string& in) {
    static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
      uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
      for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
    }
    if (i + 1 == in.size()) {
      uint32_t v = uint8_t(in[i]) << 16;
      out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
      uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
      out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
    }
    return out;
  }

  void WriteAuthFile(const std::string& password) {
    std::string auth = Base64(std::string(RegistryServer::kUser) + ":" + password);
    ASSERT_TRUE(WriteFileAtomic(auth_file_, "{\"auths\": {\"" + proxy_.host() + "\": {\"auth\": \"" + auth + "\"}}}\n")
                    .ok());
  }

  // Every verb with these credential flags (empty: the auth file).
  void EveryVerb(const std::vector<std::string>& creds, bool want_ok, const std::string& tag) {
    std::string name = proxy_.host() + "/sec/disk:v1";
    auto with = [&](std::vector<std::string> args) {
      args.insert(args.end(), creds.begin(), creds.end());
      args.insert(args.end(), {"--retry-times", "0"});
      return args;
    };
    Run(with({"--store", store_, "push", name, "docker://" + proxy_.host() + "/sec/disk:" + tag}), want_ok);
    Run(with({"--store", store_, "-q", "push", name, "docker://" + proxy_.host() + "/sec/disk:" + tag}), want_ok);
    Run(with({"--store", work_.path() + "/pulled", "pull", "docker://" + proxy_.host() + "/sec/disk:v1"}), want_ok);
    Run(with({"inspect", "docker://" + proxy_.host() + "/sec/disk:v1"}), want_ok);
    Run(with({"prepare", "--root", work_.path() + "/node-" + tag, "--vm", "vm" + std::to_string(++vms_),
              "--pull-policy", "Always", proxy_.host() + "/sec/disk:v1"}),
        want_ok);
  }

  // No file regdisk wrote (stores, node cache) holds a secret either; only
  // the auth file may.
  void ExpectNoSecretInFiles() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(work_.path(), ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file() || it->path() == auth_file_ || it->path().filename().string().starts_with("proxy.") ||
          it->file_size() > (1 << 20)) {
        continue;
      }
      auto text = ReadFile(it->path());
      if (text.ok()) ExpectNoSecret(*text, it->path().string());
    }
  }

  TempDir work_{"regdisk-secrets"};
  RegistryServer registry_{GetParam()};
  FaultProxy proxy_{registry_.host(), work_.path()};
  std::string auth_file_ = work_.path() + "/auth.json", store_ = work_.path() + "/store";
  std::string disk_ = work_.path() + "/disk.raw";
  int vms_ = 0, runs_ = 0;
};

TEST_P(SecretsTest, NoPasswordOrTokenInAnyOutput) {
  std::string creds = std::string(RegistryServer::kUser) + ":" + RegistryServer::kPassword;
  std::string wrong = std::string(RegistryServer::kUser) + ":" + kWrongPassword;
  std::string host = proxy_.host();

  // Working: --creds, then the auth file (written by login, then by hand).
  EveryVerb({"--creds", creds}, true, "v2");
  Run({"login", "-u", RegistryServer::kUser, "--password-stdin", host}, true, RegistryServer::kPassword);
  Run({"login", "-u", RegistryServer::kUser, "-p", RegistryServer::kPassword, host}, true);
  EveryVerb({}, true, "v3");
  WriteAuthFile(RegistryServer::kPassword);
  EveryVerb({}, true, "v4");

  // Refused: a wrong password by flag, by auth file, and at login.
  EveryVerb({"--creds", wrong}, false, "v5");
  WriteAuthFile(kWrongPassword);
  EveryVerb({}, false, "v6");
  Run({"login", "-u", RegistryServer::kUser, "--password-stdin", host, "--retry-times", "0"}, false, kWrongPassword);
  Run({"login", "-u", RegistryServer::kUser, "-p", kWrongPassword, host, "--retry-times", "0"}, false);

  // Malformed credentials, each holding the password: --creds without the
  // user, an auth file cut short, an "auth" that is not base64.
  std::string pull_v1 = "docker://" + host + "/sec/disk:v1";
  Run({"inspect", pull_v1, "--creds", RegistryServer::kPassword}, false);
  ASSERT_TRUE(WriteFileAtomic(auth_file_, "{\"auths\": {\"" + host + "\": {\"auth\": \"" +
                                              Base64(std::string("alice:") + RegistryServer::kPassword) + "\"")
                  .ok());
  Run({"inspect", pull_v1}, false);
  ASSERT_TRUE(WriteFileAtomic(auth_file_, "{\"auths\": {\"" + host + "\": {\"auth\": \"alice:" +
                                              RegistryServer::kPassword + "\"}}}")
                  .ok());
  Run({"inspect", pull_v1}, false);

  // A registry that answers 500 with the Authorization header in its error
  // message, to every request but the ping (so a login, which only pings,
  // works and is not run here).
  WriteAuthFile(RegistryServer::kPassword);
  proxy_.SetRules({"* ~^/v2/. times=0 status=500 echo-auth"});
  EveryVerb({"--creds", creds}, false, "v7");
  EveryVerb({}, false, "v8");

  // Connections that break on every request but the ping.
  proxy_.SetRules({"* ~^/v2/. times=0 reset-request after=0"});
  EveryVerb({"--creds", creds}, false, "v9");

  // A registry that is gone.
  proxy_.Stop();
  EveryVerb({}, false, "v10");
  Run({"login", "-u", RegistryServer::kUser, "--password-stdin", host, "--retry-times", "0"}, false, RegistryServer::kPassword);

  EXPECT_FALSE(proxy_.AuthSeen().empty()) << "no credentials were ever sent: the test tests nothing";
  ExpectNoSecretInFiles();
  std::cerr << runs_ << " commands, each piped" << (HaveTerminal() ? " and in a terminal" : "") << "; "
            << Secrets().size() << " secrets checked\n";
}

INSTANTIATE_TEST_SUITE_P(Flavours, SecretsTest, ::testing::Values(Flavour::kBasic, Flavour::kToken),
                         [](const auto& info) { return info.param == Flavour::kBasic ? "Basic" : "Token"; });

}  // namespace
}  // namespace regdisk::testing
