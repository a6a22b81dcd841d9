// VMs booted under TCG from registry disks, end to end: the regdisk binary,
// a real Distribution registry, a private libvirtd (scripts/libvirt-start),
// qemu, and the demo disks of scripts/make-demo-disks, whose guest prints
//   REGDISK-BOOTED
//   REGDISK-FIRMWARE: efi | bios
//   REGDISK-CLOUDINIT: <label> <user-data's "# regdisk-marker: " value> | none
//   REGDISK-MARKER: <marker.txt of the data disk, or none>
//   REGDISK-EMPTYDISK: /dev/<disk> <bytes> previous=<...> wrote-and-read=ok
//   REGDISK-PREVIOUS-WRITE: none | written-by-a-previous-boot
//   REGDISK-WROTE: /dev/vda sector 64
//   REGDISK-DONE
// on its serial console, writes to sector 64 of its root disk and to its
// empty disks, and powers off. The boot disk boots under BIOS and UEFI.
//
// One registry, one libvirtd and one set of pushed images serve the whole
// file (ctest runs it as one test). A machine that cannot run them fails
// every test: nothing here is skipped.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cache/nbd_server.h"
#include "forge.h"
#include "harness.h"
#include "layout/layout.h"
#include "registry_server.h"

namespace regdisk::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

constexpr int kBootTimeout = 300;  // seconds for one boot under TCG, on a loaded machine
constexpr char kWritten[] = "written-by-a-previous-boot";
// No virt-launcher exists here; the Pod tests only render it (see pod_podman_test.cc).
constexpr char kLauncher[] = "example.com/virt-launcher:v1";

std::string Src(const std::string& rel) { return std::string(REGDISK_SOURCE_DIR) + "/" + rel; }

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Tail(const std::string& path, size_t bytes = 6000) {
  auto text = ReadFile(path, 64 << 20);
  if (!text.ok()) return "(" + path + ": " + text.status().message() + ")\n";
  return text->size() > bytes ? "...\n" + text->substr(text->size() - bytes) : *text;
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Everything the tests share, made once.
struct Shared {
  std::string error;  // why the environment could not be made
  std::unique_ptr<TempDir> work;
  std::unique_ptr<RegistryServer> registry;
  std::string state, uri, store, marker;
  std::string boot_qcow2, data_img;
  std::string boot_image, boot_digest;  // FROM scratch (regdisk build DISK)
  std::string seed_image, seed_digest;  // FROM the base (regdisk build -f Dockerfile)
  std::string bad_format_image, backing_file_image, missing_image, unreadable_image;
  bool libvirt_started = false;
};

Shared& S() {
  static Shared s;
  return s;
}

bool Step(const ProcessResult& r, const std::string& what) {
  if (r.exit_code == 0) return true;
  S().error = what + " failed: " + Describe(r);
  return false;
}

// `regdisk push`, returning the pushed manifest digest.
bool Push(const std::string& from, const std::string& to, std::string* digest) {
  ProcessResult r = Regdisk({"--store", S().store, "-q", "push", from, "docker://" + to});
  if (!Step(r, "regdisk push " + from)) return false;
  if (digest) *digest = Trim(r.out);
  return true;
}

// An image whose one layer holds disk/NAME with `data`, annotated with the
// declared `format`, put into the registry through an OCI layout and
// `regdisk push` (which does not judge disks: the node must).
bool PutForged(const std::string& name, const std::string& data, const std::string& format,
               const std::string& to, int uid = 107) {
  std::string dir = S().work->path() + "/forged";
  auto layout = layout::Layout::Open(dir, true);
  if (!layout.ok()) return S().error = layout.status().message(), false;
  forge::Layer l{forge::MakeTar({{"disk", forge::TarEntry::Type::kDir},
                                 {"disk/" + name, forge::TarEntry::Type::kFile, data, "", 0440, uid, uid}}),
                 forge::Compression::kGzip, forge::DiskAnnotations(name, format, data.size())};
  std::string tag = name + "-" + format + "-" + std::to_string(uid);
  auto m = forge::PutImage(**layout, {l}, tag);
  if (!m.ok()) return S().error = m.status().message(), false;
  return Push("oci:" + dir + ":" + tag, to, nullptr);
}

bool MakeShared() {
  Shared& s = S();
  for (const char* p : {"libvirtd", "virsh", "qemu-system-x86_64", "qemu-img", "umoci", "chroot", "node"}) {
    if (!HaveProgram(p)) return s.error = std::string(p) + " is not installed (run scripts/setup)", false;
  }
  s.work = std::make_unique<TempDir>("regdisk-vm");
  s.state = s.work->path() + "/libvirt";
  s.store = s.work->path() + "/store";
  s.registry = std::make_unique<RegistryServer>(RegistryServer::Flavour::kOpen);
  if (!s.registry->error().empty()) return s.error = "registry: " + s.registry->error(), false;

  auto t0 = std::chrono::steady_clock::now();
  ProcessResult lv = RunCmd({"bash", Src("scripts/libvirt-start"), s.state});
  s.libvirt_started = true;
  if (!Step(lv, "scripts/libvirt-start")) return false;
  s.uri = Trim(lv.out);
  std::printf("[ env      ] private libvirtd up in %.1f s: %s\n", Since(t0), s.uri.c_str());

  // A marker nobody could have baked into the disk image beforehand.
  s.marker = "marker-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  std::string disks = s.work->path() + "/disks";
  if (!Step(RunCmd({"bash", Src("scripts/make-demo-disks"), disks, s.marker}), "scripts/make-demo-disks")) {
    return false;
  }
  s.boot_qcow2 = disks + "/boot.qcow2";
  s.data_img = disks + "/data.img";

  std::string host = s.registry->host();
  s.boot_image = host + "/vm/boot:v1";
  s.seed_image = host + "/vm/data:v1";
  s.bad_format_image = host + "/vm/raw-declared-qcow2:v1";
  s.backing_file_image = host + "/vm/backing-file:v1";
  s.missing_image = host + "/vm/missing:v1";
  s.unreadable_image = host + "/vm/root-owned:v1";

  // The boot disk FROM scratch; the data disk by the seed's workflow: the
  // base image (build-base), then a Dockerfile FROM it.
  if (!Step(Regdisk({"--store", s.store, "build", s.boot_qcow2, "-t", "vm/boot:v1"}), "regdisk build boot")) {
    return false;
  }
  if (!Push("vm/boot:v1", s.boot_image, &s.boot_digest)) return false;
  if (!Step(Regdisk({"--store", s.store, "build-base", "-t", "kubevirt.io/registry-disk-v1alpha"}),
            "regdisk build-base")) {
    return false;
  }
  std::string ctx = s.work->path() + "/ctx";
  if (!MakeDirs(ctx).ok() ||
      !Step(RunCmd({"cp", "--sparse=always", s.data_img, ctx + "/data.img"}), "cp") ||
      !WriteFileAtomic(ctx + "/Dockerfile",
                       "FROM kubevirt.io/registry-disk-v1alpha\n"
                       "ADD --chown=107:107 data.img /disk/\n"
                       "LABEL purpose=marker\n")
           .ok()) {
    return s.error = "writing the build context", false;
  }
  if (!Step(Regdisk({"--store", s.store, "build", "-f", ctx + "/Dockerfile", ctx, "-t", "vm/data:v1"}),
            "regdisk build -f Dockerfile")) {
    return false;
  }
  if (!Push("vm/data:v1", s.seed_image, &s.seed_digest)) return false;
  if (!Push("kubevirt.io/registry-disk-v1alpha", host + "/vm/registry-disk-v1alpha:v1", nullptr)) return false;

  // What the node must refuse: 1 MiB of raw bytes declared qcow2, and a
  // qcow2 whose backing file is the host's /etc/shadow.
  if (!PutForged("disk.img", std::string(1 << 20, 'r'), "qcow2", s.bad_format_image)) return false;
  // A disk added with the wrong owner: root's, mode 0440.
  if (!PutForged("data.img", std::string(1 << 20, 'd'), "raw", s.unreadable_image, 0)) return false;
  std::string backing = s.work->path() + "/backing.qcow2";
  if (!Step(RunCmd({"qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw", backing, "16M"}),
            "qemu-img create")) {
    return false;
  }
  auto q = ReadFile(backing);
  if (!q.ok()) return s.error = q.status().message(), false;
  if (!PutForged("disk.qcow2", *q, "qcow2", s.backing_file_image)) return false;
  std::printf("[ env      ] registry %s, disks built and pushed in %.1f s\n", host.c_str(), Since(t0));
  return true;
}

class VmEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!MakeShared() && S().error.empty()) S().error = "environment setup failed";
  }
  void TearDown() override {
    Shared& s = S();
    if (s.libvirt_started) {
      ProcessResult r = RunCmd({"bash", Src("scripts/libvirt-stop"), s.state});
      if (r.exit_code != 0) std::fprintf(stderr, "scripts/libvirt-stop: %s\n", Describe(r).c_str());
    }
    s.registry.reset();
    s.work.reset();
  }
};

[[maybe_unused]] ::testing::Environment* const kEnv = ::testing::AddGlobalTestEnvironment(new VmEnvironment);

class VmTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(S().error, "") << "the VM test environment could not be made"; }

  // On failure: what libvirtd, qemu, the registry and the guests said.
  // Always: the NBD servers of lazy entries stopped (gc stops those nobody
  // leases; a failed test may leave leases).
  void TearDown() override {
    Regdisk({"cache", "gc", "--root", Root()});
    std::error_code sec;
    for (const auto& e : std::filesystem::directory_iterator(Root() + "/disks", sec)) {
      (void)cache::StopServer(e.path().string());
    }
    if (!HasFailure() || !S().error.empty()) return;
    std::string out = "==== libvirtd log\n" + Tail(S().state + "/log/libvirtd.log") + "==== libvirtd stdout\n" +
                      Tail(S().state + "/log/stdout.log");
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(S().state + "/log/qemu", ec)) {
      out += "==== qemu " + e.path().string() + "\n" + Tail(e.path().string(), 1500);
    }
    for (const auto& e : std::filesystem::directory_iterator(root_.path() + "/run", ec)) {
      out += "==== console of " + e.path().filename().string() + "\n" + Tail(e.path().string() + "/console.log");
      out += "==== domain.xml\n" + Tail(e.path().string() + "/domain.xml");
    }
    std::string reg = S().registry->Log();
    out += "==== registry log (tail)\n" + (reg.size() > 6000 ? "...\n" + reg.substr(reg.size() - 6000) : reg);
    std::fprintf(stderr, "%s\n", out.c_str());
  }

  std::string Root() const { return root_.path(); }

  std::string WriteSpec(const std::string& name, const std::string& yaml) {
    std::string path = root_.path() + "/" + name + ".yaml";
    EXPECT_TRUE(WriteFileAtomic(path, yaml).ok());
    return path;
  }

  // regdisk VERB ARGS --root ROOT -c URI
  ProcessResult Vm(std::vector<std::string> args) {
    args.insert(args.end(), {"--root", Root(), "-c", S().uri});
    return Regdisk(args);
  }

  // `run` serves v2 images lazily by default; lazy=false pulls them whole.
  ProcessResult RunVm(const std::string& spec, bool console, bool lazy = true) {
    std::vector<std::string> a = {"run", spec};
    if (!lazy) a.push_back("--lazy=false");
    if (console) a.insert(a.end(), {"--console", "--console-timeout", std::to_string(kBootTimeout)});
    return Vm(a);
  }

  // Domains libvirt knows (running or not).
  std::set<std::string> Domains(bool all = true) {
    std::vector<std::string> argv = {"virsh", "-c", S().uri, "list", "--name"};
    if (all) argv.push_back("--all");
    ProcessResult r = RunCmd(argv);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    std::set<std::string> names;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (!Trim(line).empty()) names.insert(Trim(line));
    }
    return names;
  }

  json CacheLs() {
    ProcessResult r = Regdisk({"cache", "ls", "--json", "--root", Root()});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    try {
      return json::parse(r.out);
    } catch (const json::exception& e) {
      ADD_FAILURE() << e.what() << "\n" << r.out;
      return json::array();
    }
  }

  // The 512 bytes at sector 64 of a qcow2, through its backing chain
  // (qemu-img dd counts the skipped blocks in count=).
  std::string Sector64(const std::string& qcow2) {
    std::string out = root_.path() + "/sector64";
    ProcessResult r = RunCmd({"qemu-img", "dd", "-f", "qcow2", "-O", "raw", "bs=512", "skip=64", "count=65",
                              "if=" + qcow2, "of=" + out});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    auto data = ReadFile(out);
    return data.ok() ? *data : "";
  }

  // The VM's console log once it holds `text` `times` times, or when
  // kBootTimeout passed.
  std::string WaitForConsole(const std::string& vm, const std::string& text, int times) {
    auto t0 = std::chrono::steady_clock::now();
    std::string log;
    while (Since(t0) < kBootTimeout) {
      auto got = ReadFile(Root() + "/run/" + vm + "/console.log", 64 << 20);
      log = got.ok() ? *got : "";
      int found = 0;
      for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++found;
      if (found >= times) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return log;
  }

  TempDir root_{"regdisk-vm-root"};
};

// The containerDisk form: boot from the first disk (virtio), the data disk second.
std::string TwoDiskSpec(const std::string& name, const std::string& boot, const std::string& data) {
  return "apiVersion: kubevirt.io/v1\n"
         "kind: VirtualMachine\n"
         "metadata:\n  name: " + name + "\n"
         "spec:\n"
         "  runStrategy: Once\n"  // running: true would be Always: restarted at every poweroff
         "  template:\n"
         "    spec:\n"
         "      domain:\n"
         "        resources: {requests: {memory: 256Mi}}\n"
         "        devices:\n"
         "          disks:\n"
         "          - {name: root, bootOrder: 1, disk: {bus: virtio}}\n"
         "          - {name: data, disk: {bus: virtio}}\n"
         "      volumes:\n"
         "      - {name: root, containerDisk: {image: \"" + boot + "\"}}\n"
         "      - {name: data, containerDisk: {image: \"" + data + "\", path: /disk/data.img}}\n";
}

// TwoDiskSpec plus a cloudInitNoCloud volume (a virtio disk; the guest finds
// it by its label) and a 64 MiB emptyDisk left out of devices.disks (so
// attached as a virtio disk, as KubeVirt does).
std::string FullSpec(const std::string& name, const std::string& boot, const std::string& data,
                     const std::string& user_marker) {
  std::string spec = TwoDiskSpec(name, boot, data);
  spec.replace(spec.find("      volumes:\n"), 0, "          - {name: cloudinit, disk: {bus: virtio}}\n");
  return spec +
         "      - name: cloudinit\n"
         "        cloudInitNoCloud:\n"
         "          userData: |\n"
         "            #cloud-config\n"
         "            # regdisk-marker: " + user_marker + "\n"
         "      - {name: scratch, emptyDisk: {capacity: 64Mi}}\n";
}

// 1. Boots from a registry disk, reads the data disk and its cloud-init
//    volume (found by label), writes to its root disk and its empty disk;
//    stopped and started again, both writes are gone.
TEST_F(VmTest, BootsFromRegistryDiskReadsDataDiskAndForgetsItsWrites) {
  std::string user_marker = "user-data-" + S().marker;
  std::string spec = WriteSpec("eph", FullSpec("eph", S().boot_image, S().seed_image, user_marker));
  const std::string empty_line = "REGDISK-EMPTYDISK: /dev/vdd 67108864 previous=";

  auto t0 = std::chrono::steady_clock::now();
  ProcessResult first = RunVm(spec, true, /*lazy=*/false);  // the cached disk is hashed below
  double boot1 = Since(t0);
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  EXPECT_THAT(first.out, HasSubstr("started eph"));
  EXPECT_THAT(first.out, HasSubstr("REGDISK-BOOTED"));
  EXPECT_THAT(first.out, HasSubstr("REGDISK-MARKER: " + S().marker));
  EXPECT_THAT(first.out, HasSubstr("REGDISK-PREVIOUS-WRITE: none"));
  EXPECT_THAT(first.out, HasSubstr("REGDISK-WROTE: /dev/vda"));
  EXPECT_THAT(first.out, HasSubstr("REGDISK-FIRMWARE: bios"));
  EXPECT_THAT(first.out, HasSubstr("REGDISK-CLOUDINIT: cidata " + user_marker + "\r\n"));
  EXPECT_THAT(first.out, HasSubstr("REGDISK-INSTANCE-ID: eph.default\r\n"));
  EXPECT_THAT(first.out, HasSubstr(empty_line + "none wrote-and-read=ok"));
  EXPECT_THAT(first.out, HasSubstr("REGDISK-DONE"));
  EXPECT_THAT(first.out, Not(HasSubstr("REGDISK-ERROR")));
  std::printf("[ measure  ] first run (pull + boot + poweroff): %.1f s\n", boot1);
  std::string iso = Root() + "/run/eph/cloudinit.iso", scratch = Root() + "/run/eph/scratch.qcow2";
  struct stat st;
  ASSERT_EQ(::stat(iso.c_str(), &st), 0) << iso;
  std::printf("[ measure  ] cloud-init ISO: %lld bytes\n", static_cast<long long>(st.st_size));
  ProcessResult check = RunCmd({"qemu-img", "check", "-U", "-f", "qcow2", scratch});
  EXPECT_EQ(check.exit_code, 0) << Describe(check);

  // The guest powered off: the transient domain is gone, the VM is stopped.
  EXPECT_EQ(Domains().count("eph"), 0u);
  ProcessResult ls = Vm({"ls"});
  EXPECT_THAT(ls.out, HasSubstr("stopped")) << Describe(ls);

  // Its write landed in its overlay, not in the cached disk.
  std::string overlay = Root() + "/vms/eph.root/overlay.qcow2";
  ASSERT_TRUE(PathExists(overlay));
  EXPECT_THAT(Sector64(overlay), HasSubstr(kWritten)) << "the guest did not write to its root disk";
  json cache = CacheLs();
  ASSERT_EQ(cache.size(), 2u) << cache.dump(2);
  for (const auto& e : cache) {
    if (e["digest"] == S().boot_digest) {
      EXPECT_EQ(Sha256File(Root() + "/disks/" + e["key"].get<std::string>() + "/disk"), Sha256File(S().boot_qcow2))
          << "the cached disk changed";
    } else {
      EXPECT_EQ(e["digest"], S().seed_digest);
    }
  }
  int blob_gets = S().registry->CountRequests("GET", "/blobs/");

  // Control: the same overlay booted again (the domain XML regdisk wrote,
  // given to libvirt by hand) shows the write, so the guest does see one.
  ProcessResult again = RunCmd({"virsh", "-c", S().uri, "create", Root() + "/run/eph/domain.xml"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  ProcessResult control = Vm({"console", "eph", "--timeout", std::to_string(kBootTimeout)});
  EXPECT_EQ(control.exit_code, 0) << Describe(control);
  EXPECT_THAT(control.out, HasSubstr(std::string("REGDISK-PREVIOUS-WRITE: ") + kWritten)) << control.out;
  EXPECT_THAT(control.out, HasSubstr(empty_line + "regdisk-emptydisk-written")) << control.out;

  ProcessResult stop = Vm({"stop", "eph"});
  ASSERT_EQ(stop.exit_code, 0) << Describe(stop);
  EXPECT_FALSE(PathExists(overlay)) << "stop keeps the overlay";
  EXPECT_FALSE(PathExists(iso)) << "stop keeps the cloud-init volume";
  EXPECT_FALSE(PathExists(scratch)) << "stop keeps the empty disk";
  EXPECT_EQ(CountEntries(Root() + "/vms"), 0);

  t0 = std::chrono::steady_clock::now();
  ProcessResult second = RunVm(spec, true, /*lazy=*/false);
  double boot2 = Since(t0);
  ASSERT_EQ(second.exit_code, 0) << Describe(second);
  EXPECT_THAT(second.out, HasSubstr("REGDISK-MARKER: " + S().marker));
  EXPECT_THAT(second.out, HasSubstr("REGDISK-PREVIOUS-WRITE: none")) << "the first boot's write survived";
  EXPECT_THAT(second.out, Not(HasSubstr(kWritten)));
  EXPECT_THAT(second.out, HasSubstr(empty_line + "none wrote-and-read=ok")) << "the empty disk kept a write";
  EXPECT_THAT(second.out, HasSubstr("REGDISK-CLOUDINIT: cidata " + user_marker + "\r\n"));
  EXPECT_THAT(second.out, HasSubstr("REGDISK-DONE"));
  // Same pinned digests, disks from the node cache: no layer pulled again.
  EXPECT_EQ(S().registry->CountRequests("GET", "/blobs/"), blob_gets);
  std::printf("[ measure  ] second run (cached disks, boot + poweroff): %.1f s\n", boot2);

  ProcessResult forget = Vm({"stop", "eph", "--forget"});
  EXPECT_EQ(forget.exit_code, 0) << Describe(forget);
  EXPECT_EQ(CountEntries(Root() + "/vms"), 0);
  EXPECT_FALSE(PathExists(Root() + "/run/eph"));
}

// 2. Three replicas of one image run at once on one cache entry.
TEST_F(VmTest, ThreeReplicasRunAtOnceOnOneCacheEntry) {
  std::string spec = WriteSpec("web", "apiVersion: kubevirt.io/v1\n"
                                      "kind: VirtualMachineInstanceReplicaSet\n"
                                      "metadata: {name: web}\n"
                                      "spec:\n"
                                      "  replicas: 3\n"
                                      "  selector: {matchLabels: {app: web}}\n"
                                      "  template:\n"
                                      "    metadata: {labels: {app: web}}\n"
                                      "    spec:\n"
                                      "      domain:\n"
                                      "        resources: {requests: {memory: 192Mi}}\n"
                                      "        devices: {disks: [{name: root, disk: {bus: virtio}}]}\n"
                                      "      volumes:\n"
                                      "      - {name: root, containerDisk: {image: \"" + S().boot_image + "\"}}\n");
  auto t0 = std::chrono::steady_clock::now();
  ProcessResult run = RunVm(spec, false, /*lazy=*/false);  // overlays on the cached file, checked below
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  std::set<std::string> running = Domains(false);
  for (const char* n : {"web-0", "web-1", "web-2"}) {
    EXPECT_THAT(run.out, HasSubstr(std::string("started ") + n));
    EXPECT_EQ(running.count(n), 1u) << n << " is not running right after regdisk run";
  }

  // One cache entry (one copy of the disk), leased by the three.
  json cache = CacheLs();
  ASSERT_EQ(cache.size(), 1u) << cache.dump(2);
  EXPECT_EQ(cache[0]["digest"], S().boot_digest);
  auto leased = cache[0]["leasedBy"].get<std::vector<std::string>>();
  std::sort(leased.begin(), leased.end());
  EXPECT_EQ(leased, (std::vector<std::string>{"web-0.root", "web-1.root", "web-2.root"}));
  EXPECT_EQ(CountEntries(Root() + "/disks"), 1);
  // Three overlays on that one file.
  std::string base = Root() + "/disks/" + cache[0]["key"].get<std::string>() + "/disk";
  for (int i = 0; i < 3; ++i) {
    std::string overlay = Root() + "/vms/web-" + std::to_string(i) + ".root/overlay.qcow2";
    ProcessResult info = RunCmd({"qemu-img", "info", "-U", "--output=json", overlay});
    ASSERT_EQ(info.exit_code, 0) << Describe(info);
    EXPECT_EQ(json::parse(info.out).value("backing-filename", ""), base);
  }

  // All three boot, each on its own writable overlay. A replica set runs
  // its VMs Always: libvirt restarts each in place when it powers off (the
  // boot loader's banner appears a second time; the domain stays up).
  for (const char* n : {"web-0", "web-1", "web-2"}) {
    std::string console = WaitForConsole(n, "SYSLINUX", 2);
    EXPECT_THAT(console, HasSubstr("REGDISK-BOOTED")) << n;
    EXPECT_THAT(console, HasSubstr("REGDISK-PREVIOUS-WRITE: none")) << n;
    EXPECT_THAT(console, HasSubstr("REGDISK-WROTE: /dev/vda")) << n;
    EXPECT_THAT(console, HasSubstr("REGDISK-DONE")) << n;
  }
  std::printf("[ measure  ] three replicas at once, start to all restarted after poweroff: %.1f s\n", Since(t0));
  running = Domains(false);
  for (const char* n : {"web-0", "web-1", "web-2"}) EXPECT_EQ(running.count(n), 1u) << n << " did not stay up";

  for (const char* n : {"web-0", "web-1", "web-2"}) {
    ProcessResult stop = Vm({"stop", n, "--forget"});
    EXPECT_EQ(stop.exit_code, 0) << Describe(stop);
  }
  cache = CacheLs();
  ASSERT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache[0]["leasedBy"].empty()) << cache.dump(2);
  EXPECT_EQ(CountEntries(Root() + "/vms"), 0);
}

// 2b. UEFI: OVMF boots the disk's EFI system partition, with the VM's own
//     NVRAM copied from the vars template; a ConfigDrive volume on a sata
//     cdrom is found by its label config-2. stop removes the VM's files.
TEST_F(VmTest, EfiBootWithConfigDriveOnSataCdrom) {
  std::string user_marker = "configdrive-" + S().marker;
  std::string spec = WriteSpec("efi", "apiVersion: kubevirt.io/v1\n"
                                      "kind: VirtualMachineInstance\n"
                                      "metadata: {name: efi, namespace: lab}\n"
                                      "spec:\n"
                                      "  domain:\n"
                                      "    firmware: {bootloader: {efi: {secureBoot: false}}}\n"
                                      "    resources: {requests: {memory: 256Mi}}\n"
                                      "    devices:\n"
                                      "      disks:\n"
                                      "      - {name: root, bootOrder: 1, disk: {bus: virtio}}\n"
                                      "      - {name: cfg, cdrom: {bus: sata}}\n"
                                      "  volumes:\n"
                                      "  - {name: root, containerDisk: {image: \"" + S().boot_image + "\"}}\n"
                                      "  - name: cfg\n"
                                      "    cloudInitConfigDrive:\n"
                                      "      userData: |\n"
                                      "        #!/bin/sh\n"
                                      "        # regdisk-marker: " + user_marker + "\n");
  auto t0 = std::chrono::steady_clock::now();
  ProcessResult run = RunVm(spec, true);
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  std::printf("[ measure  ] EFI run (OVMF + boot + poweroff): %.1f s\n", Since(t0));
  EXPECT_THAT(run.out, HasSubstr("REGDISK-FIRMWARE: efi"));
  EXPECT_THAT(run.out, HasSubstr("REGDISK-CLOUDINIT: config-2 " + user_marker + "\r\n"));
  EXPECT_THAT(run.out, HasSubstr("REGDISK-INSTANCE-ID: efi.lab\r\n"));
  EXPECT_THAT(run.out, HasSubstr("REGDISK-WROTE: /dev/vda"));
  EXPECT_THAT(run.out, HasSubstr("REGDISK-DONE"));
  std::string dir = Root() + "/run/efi";
  auto xml = ReadFile(dir + "/domain.xml");
  ASSERT_TRUE(xml.ok());
  EXPECT_THAT(*xml, HasSubstr("/usr/share/OVMF/OVMF_CODE_4M.fd"));
  EXPECT_THAT(*xml, HasSubstr(dir + "/nvram.fd"));
  EXPECT_THAT(*xml, HasSubstr("device='cdrom'"));
  EXPECT_TRUE(PathExists(dir + "/nvram.fd"));
  EXPECT_TRUE(PathExists(dir + "/cfg.iso"));
  ProcessResult stop = Vm({"stop", "efi"});
  ASSERT_EQ(stop.exit_code, 0) << Describe(stop);
  EXPECT_FALSE(PathExists(dir + "/nvram.fd"));
  EXPECT_FALSE(PathExists(dir + "/cfg.iso"));
  EXPECT_EQ(CountEntries(Root() + "/vms"), 0);
  EXPECT_EQ(Vm({"stop", "efi", "--forget"}).exit_code, 0);
}

// The boot disk padded to 1 GiB with data the guest never reads (a 1 MiB
// random block repeated: data, not holes, that zstd makes small so the
// push stays quick), as a raw v2 image: 1 GiB to serve, a few MiB of it
// read at boot.
std::string PaddedBootImage() {
  static std::string image;
  if (!image.empty()) return image;
  std::string raw = S().work->path() + "/boot-1g.raw";
  ProcessResult conv = RunCmd({"qemu-img", "convert", "-f", "qcow2", "-O", "raw", S().boot_qcow2, raw});
  if (conv.exit_code != 0) return ADD_FAILURE() << Describe(conv), "";
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(raw, ec);
  std::ofstream out(raw, std::ios::binary | std::ios::app);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> block(1 << 17);  // 1 MiB
  for (auto& w : block) w = rng();
  for (uint64_t at = size; at < (1ull << 30); at += 1 << 20) {
    out.write(reinterpret_cast<const char*>(block.data()),
              static_cast<std::streamsize>(std::min<uint64_t>(1 << 20, (1ull << 30) - at)));
  }
  out.close();
  if (!out) return ADD_FAILURE() << "writing " << raw, "";
  if (!Step(Regdisk({"--store", S().store, "-q", "build", raw, "--compress", "zstd", "-t", "vm/boot-1g:v2"}),
            "regdisk build boot-1g") ||
      !Push("vm/boot-1g:v2", S().registry->host() + "/vm/boot-1g:v2", nullptr)) {
    return ADD_FAILURE() << S().error, "";
  }
  image = S().registry->host() + "/vm/boot-1g:v2";
  return image;
}

std::string OneDiskSpec(const std::string& name, const std::string& image) {
  return "apiVersion: kubevirt.io/v1\n"
         "kind: VirtualMachineInstance\n"
         "metadata: {name: " + name + "}\n"
         "spec:\n"
         "  domain:\n"
         "    resources: {requests: {memory: 256Mi}}\n"
         "    devices: {disks: [{name: root, disk: {bus: virtio}}]}\n"
         "  volumes:\n"
         "  - {name: root, containerDisk: {image: \"" + image + "\"}}\n";
}

// 2d. Lazy: run starts the VM once the index is verified, the disk served
//     over NBD from the registry; the guest boots from the 1 GiB image,
//     writes to its overlay and powers off; gc then stops the server and
//     removes the entry. (Lazy against full boot times: bench/.)
TEST_F(VmTest, BootsLazilyFromA1GiBV2Image) {
  std::string image = PaddedBootImage();
  ASSERT_NE(image, "");
  std::string spec = WriteSpec("lazy1g", OneDiskSpec("lazy1g", image));
  auto t0 = std::chrono::steady_clock::now();
  ProcessResult run = RunVm(spec, false);
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  double started = Since(t0);
  std::string console = WaitForConsole("lazy1g", "REGDISK-BOOTED", 1);
  std::printf("[ measure  ] lazy 1 GiB v2: run returned after %.1f s, boot marker after %.1f s\n", started,
              Since(t0));
  EXPECT_THAT(console, HasSubstr("REGDISK-BOOTED"));
  // Until the guest has powered off (stop right after its last line could
  // race libvirt tearing the domain down).
  ProcessResult follow = Vm({"console", "lazy1g", "--timeout", std::to_string(kBootTimeout)});
  EXPECT_EQ(follow.exit_code, 0) << Describe(follow);
  const std::string& done = follow.out;
  EXPECT_THAT(done, HasSubstr("REGDISK-DONE"));
  EXPECT_THAT(done, HasSubstr("REGDISK-WROTE: /dev/vda"));
  EXPECT_THAT(done, Not(HasSubstr("REGDISK-ERROR")));
  auto domain = ReadFile(Root() + "/run/lazy1g/domain.xml");
  ASSERT_TRUE(domain.ok());
  const std::string& xml = *domain;
  EXPECT_THAT(xml, HasSubstr("<source protocol='nbd'>"));
  EXPECT_THAT(xml, HasSubstr("rerror_policy='stop'"));
  auto lease = ReadFile(Root() + "/vms/lazy1g.root/lease.json");
  ASSERT_TRUE(lease.ok());
  std::string socket = json::parse(*lease)["nbdSocket"];
  EXPECT_THAT(xml, HasSubstr("socket='" + socket + "'"));
  // The guest's write is in its overlay; stop drops it, gc the entry.
  EXPECT_THAT(Sector64(Root() + "/vms/lazy1g.root/overlay.qcow2"), HasSubstr(kWritten));
  ProcessResult stop = Vm({"stop", "lazy1g", "--forget"});
  ASSERT_EQ(stop.exit_code, 0) << Describe(stop);
  ProcessResult gc = Regdisk({"cache", "gc", "--root", Root()});
  EXPECT_EQ(gc.exit_code, 0) << Describe(gc);
  EXPECT_FALSE(PathExists(socket)) << "gc left the server of an entry nobody leases";
  EXPECT_EQ(CountEntries(Root() + "/disks"), 0);
}

// 2c. runStrategy Halted: nothing pulled, prepared, defined or started (its
//     image does not even exist), and run says so; ls shows it halted.
TEST_F(VmTest, HaltedStartsNothing) {
  std::string spec = WriteSpec("halted", "apiVersion: kubevirt.io/v1\n"
                                         "kind: VirtualMachine\n"
                                         "metadata: {name: halted}\n"
                                         "spec:\n"
                                         "  runStrategy: Halted\n"
                                         "  template:\n"
                                         "    spec:\n"
                                         "      domain: {devices: {}}\n"
                                         "      volumes:\n"
                                         "      - {name: root, containerDisk: {image: \"" + S().missing_image + "\"}}\n"
                                         "      - {name: ci, cloudInitNoCloud: {userData: \"#cloud-config\"}}\n");
  int gets = S().registry->CountRequests("GET", "/vm/missing/");
  ProcessResult run = RunVm(spec, true);
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  EXPECT_THAT(run.out, HasSubstr("halted is Halted (runStrategy: Halted): recorded, not started"));
  EXPECT_THAT(run.out, Not(HasSubstr("started halted")));
  EXPECT_EQ(Domains().count("halted"), 0u);
  EXPECT_EQ(CountEntries(Root() + "/vms"), 0) << "a Halted VM holds a lease";
  EXPECT_FALSE(PathExists(Root() + "/run/halted/ci.iso"));
  EXPECT_FALSE(PathExists(Root() + "/run/halted/domain.xml"));
  EXPECT_EQ(S().registry->CountRequests("GET", "/vm/missing/"), gets) << "a Halted VM pulled its image";
  ProcessResult ls = Vm({"ls"});
  EXPECT_THAT(ls.out, ::testing::ContainsRegex("halted +halted")) << Describe(ls);
  EXPECT_EQ(Vm({"stop", "halted", "--forget"}).exit_code, 0);
  EXPECT_FALSE(PathExists(Root() + "/run/halted"));
}

// 3. Refused before libvirt is called, with the cause, leaving nothing.
class RefusedVmTest : public VmTest {
 protected:
  // Runs `spec` (whose VM is `name`) and checks the refusal and that nothing
  // is left: no domain, no lease, no overlay, no VM state, no cached disk
  // but the good one, no temp files.
  void ExpectRefused(const std::string& name, const std::string& spec, const std::string& cause) {
    ProcessResult r = RunVm(spec, true);
    std::printf("[ refused  ] %s", r.err.c_str());
    EXPECT_NE(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr(cause)) << Describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("started"))) << Describe(r);
    EXPECT_EQ(Domains().count(name), 0u) << "libvirt has a domain " << name;
    EXPECT_EQ(CountEntries(Root() + "/vms"), 0) << "a lease or overlay was left";
    EXPECT_FALSE(PathExists(Root() + "/run/" + name)) << "VM state was left";
    EXPECT_EQ(CountEntries(Root() + "/tmp"), 0) << "temp files were left";
    for (const auto& e : CacheLs()) {
      EXPECT_EQ(e["digest"], S().boot_digest) << "a refused disk is in the cache: " << e.dump();
      EXPECT_TRUE(e["leasedBy"].empty()) << e.dump();
    }
    ProcessResult ls = Vm({"ls"});
    EXPECT_THAT(ls.out, Not(HasSubstr(name))) << Describe(ls);

    // Against a libvirt that does not exist the cause is the same: libvirt
    // is never reached for a refused spec.
    ProcessResult nolv = Regdisk({"run", spec, "--root", Root(), "-c",
                                  "qemu:///system?socket=" + Root() + "/no-such-libvirt-sock"});
    EXPECT_NE(nolv.exit_code, 0);
    EXPECT_THAT(nolv.err, HasSubstr(cause)) << Describe(nolv);
    EXPECT_THAT(nolv.err, Not(HasSubstr("libvirt"))) << Describe(nolv);
    EXPECT_EQ(CountEntries(Root() + "/vms"), 0);
  }
};

// The design form, a good boot disk and a missing image: the boot disk's
// lease taken first is released again.
TEST_F(RefusedVmTest, MissingImage) {
  std::string spec = WriteSpec("missing", "kind: VirtualMachine\n"
                                          "spec:\n"
                                          "  domain:\n"
                                          "    devices:\n"
                                          "      disks:\n"
                                          "      - type: RegistryDisk:v1alpha\n"
                                          "        name: root\n"
                                          "        source: {name: \"" + S().boot_image + "\"}\n"
                                          "        target: {device: vda}\n"
                                          "      - type: RegistryDisk:v1alpha\n"
                                          "        name: data\n"
                                          "        source: {name: \"" + S().missing_image + "\"}\n"
                                          "        target: {device: vdb}\n");
  // The design form names the VM after its first image: "boot".
  ExpectRefused("boot", spec, "vm/missing");
  ProcessResult r = RunVm(spec, false);
  EXPECT_THAT(r.err, HasSubstr("disk data")) << Describe(r);
  EXPECT_THAT(r.err, ::testing::AnyOf(HasSubstr("not found"), HasSubstr("unknown"))) << Describe(r);
}

// The user guide's form: raw bytes in an image that declares qcow2.
TEST_F(RefusedVmTest, DeclaredFormatDoesNotMatchTheDisk) {
  std::string spec = WriteSpec("badfmt", "apiVersion: kubevirt.io/v1alpha1\n"
                                         "kind: VirtualMachine\n"
                                         "metadata: {name: badfmt}\n"
                                         "spec:\n"
                                         "  domain:\n"
                                         "    devices:\n"
                                         "      disks:\n"
                                         "      - {name: root, volumeName: rootvol, disk: {dev: vda}}\n"
                                         "      - {name: data, volumeName: datavol, disk: {dev: vdb}}\n"
                                         "  volumes:\n"
                                         "  - {name: rootvol, registryDisk: {image: \"" + S().boot_image + "\"}}\n"
                                         "  - {name: datavol, registryDisk: {image: \"" + S().bad_format_image + "\"}}\n");
  ExpectRefused("badfmt", spec, "declared qcow2");
}

// containerDisk: a qcow2 whose backing file is the host's /etc/shadow.
TEST_F(RefusedVmTest, QcowWithBackingFile) {
  std::string spec = WriteSpec("shadow", TwoDiskSpec("shadow", S().boot_image, S().backing_file_image));
  // TwoDiskSpec names /disk/data.img; this image holds /disk/disk.qcow2.
  std::string text = *ReadFile(spec);
  text.replace(text.find("path: /disk/data.img"), 20, "path: /disk/disk.qcow2");
  ASSERT_TRUE(WriteFileAtomic(spec, text).ok());
  ExpectRefused("shadow", spec, "backing file");
}

// A disk added with the wrong owner (0:0, 0440): qemu (UID 107) could not
// read it. run refuses it before libvirt, render pod before any Pod exists.
TEST_F(RefusedVmTest, DiskQemuCannotRead) {
  std::string spec = WriteSpec("rootowned", TwoDiskSpec("rootowned", S().boot_image, S().unreadable_image));
  const std::string cause = "/disk/data.img is owned by 0:0 with mode 0440: qemu (UID 107) cannot read it";
  ExpectRefused("rootowned", spec, cause);
  ProcessResult pod = Regdisk({"render", "pod", spec, "--launcher-image", "example.com/launcher:v1", "--serve-image",
                               S().registry->host() + "/vm/registry-disk-v1alpha:v1"});
  EXPECT_NE(pod.exit_code, 0);
  EXPECT_THAT(pod.err, HasSubstr(cause)) << Describe(pod);
  EXPECT_EQ(pod.out, "");
}

// The base image (regdisk build-base): FROM scratch, one small layer, the
// static /regdisk-serve as its entrypoint.
TEST_F(VmTest, BaseImageIsSmallAndStartsRegdiskServe) {
  ProcessResult inspect = Regdisk({"--store", S().store, "inspect", "kubevirt.io/registry-disk-v1alpha", "--json"});
  ASSERT_EQ(inspect.exit_code, 0) << Describe(inspect);
  json base = json::parse(inspect.out);
  uint64_t size = base.value("size", 0ull);
  ASSERT_EQ(base["manifest"]["layers"].size(), 1u) << inspect.out;
  EXPECT_EQ(base["config"]["config"]["Entrypoint"], json::array({"/regdisk-serve"})) << inspect.out;
  std::printf("[ measure  ] base image: %llu bytes (manifest + config + layer)\n",
              static_cast<unsigned long long>(size));
  EXPECT_GT(size, 0u) << inspect.out;
  EXPECT_LT(size, 4u << 20) << "the base image should be a few MiB at most";

  // The seed-built data image is the base's layer plus the disk's.
  ProcessResult seed = Regdisk({"--store", S().store, "inspect", "docker://" + S().seed_image, "--json"});
  ASSERT_EQ(seed.exit_code, 0) << Describe(seed);
  json image = json::parse(seed.out);
  ASSERT_EQ(image["manifest"]["layers"].size(), 2u) << seed.out;
  EXPECT_EQ(image["manifest"]["layers"][0]["digest"], base["manifest"]["layers"][0]["digest"]);
  EXPECT_EQ(image["config"]["config"]["Entrypoint"], json::array({"/regdisk-serve"}));
  EXPECT_EQ(image["disks"][0]["path"], "/disk/data.img") << seed.out;
}

// Shell-quotes one word.
std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string Words(const json& argv) {
  std::string out;
  for (const auto& a : argv) out += " " + Q(a.get<std::string>());
  return out;
}

// The controller role through the CLI: `regdisk render pod` pins every disk
// to the digest its tag names now, the Kubernetes schema accepts the Pod,
// and the Pod's containers do their job when run as rendered: each image
// unpacked (umoci), the emptyDir volumes bind-mounted at their mountPaths,
// every command run in its image's root as UID 107, the init container
// first. The boot image is FROM scratch: it serves through the
// regdisk-serve that the init container installed from the base image.
TEST_F(VmTest, RenderedPodIsValidAndItsContainersServeTheDisks) {
  std::string spec = WriteSpec("podvm", TwoDiskSpec("podvm", S().boot_image, S().seed_image));
  std::string host = S().registry->host();
  std::string serve_image = host + "/vm/registry-disk-v1alpha:v1";
  ProcessResult r = Regdisk({"render", "pod", spec, "--serve-image", serve_image, "--launcher-image", kLauncher});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(host + "/vm/boot@" + S().boot_digest));
  EXPECT_THAT(r.out, HasSubstr(host + "/vm/data@" + S().seed_digest));
  std::string pod_file = Root() + "/pod.yaml";
  ASSERT_TRUE(WriteFileAtomic(pod_file, r.out).ok());
  std::string node_modules = Src("tests/tools/node_modules");
  ASSERT_TRUE(PathExists(node_modules + "/kubernetes-models")) << "run scripts/setup (npm ci --prefix tests/tools)";
  ProcessResult v = RunCmd({"node", Src("tests/tools/validate_k8s.mjs"), pod_file, "Pod"});
  EXPECT_EQ(v.exit_code, 0) << Describe(v) << r.out;

  ProcessResult as_json =
      RunCmd({"node", "-e",
              "const {parse} = require(process.argv[1]);"
              "console.log(JSON.stringify(parse(require('fs').readFileSync(process.argv[2], 'utf8'))))",
              node_modules + "/yaml", pod_file});
  ASSERT_EQ(as_json.exit_code, 0) << Describe(as_json);
  json pod = json::parse(as_json.out);
  const json& init = pod["spec"]["initContainers"];
  ASSERT_EQ(init.size(), 1u) << r.out;
  EXPECT_EQ(init[0]["image"], serve_image);
  std::vector<json> wrappers;
  for (const auto& c : pod["spec"]["containers"]) {
    if (c["name"] != "compute") wrappers.push_back(c);
  }
  ASSERT_EQ(wrappers.size(), 2u) << r.out;

  // Host directories for the Pod's emptyDir volumes, world-writable as
  // kubelet makes them.
  std::string vols = Root() + "/volumes";
  std::map<std::string, std::string> volume_dir;
  for (const auto& vol : pod["spec"]["volumes"]) {
    std::string dir = vols + "/" + vol["name"].get<std::string>();
    ASSERT_TRUE(MakeDirs(dir).ok());
    ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
    volume_dir[vol["name"]] = dir;
  }
  // Each container's image, copied out of the registry and unpacked.
  int n = 0;
  auto unpack = [&](const json& c) {
    std::string image = c["image"], oci = Root() + "/oci-" + std::to_string(n);
    std::string bundle = Root() + "/bundle-" + std::to_string(n++);
    ProcessResult copy = Regdisk({"copy", "docker://" + image, "oci:" + oci + ":v"});
    EXPECT_EQ(copy.exit_code, 0) << Describe(copy);
    ProcessResult u = RunCmd({"umoci", "unpack", "--image", oci + ":v", bundle});
    EXPECT_EQ(u.exit_code, 0) << Describe(u);
    std::string root = bundle + "/rootfs", mounts;
    for (const auto& m : c["volumeMounts"]) {
      std::string at = root + m["mountPath"].get<std::string>();
      mounts += "mkdir -p " + Q(at) + " && mount --bind " + Q(volume_dir[m["name"]]) + " " + Q(at) + "\n";
      if (m.value("readOnly", false)) mounts += "mount -o remount,bind,ro " + Q(at) + "\n";
    }
    return std::pair{root, mounts};
  };
  auto as_qemu = [](const std::string& root) { return "chroot --userspec=107:107 " + Q(root); };

  std::string script = "set -eu\n";
  auto [init_root, init_mounts] = unpack(init[0]);
  script += init_mounts + as_qemu(init_root) + Words(init[0]["command"]) + "\n";
  std::string probes;
  for (const auto& w : wrappers) {
    auto [root, mounts] = unpack(w);
    script += mounts + as_qemu(root) + Words(w["command"]) + " &\n";
    script += "pids=\"${pids:-} $!\"\n";
    probes += " && " + as_qemu(root) + Words(w["readinessProbe"]["exec"]["command"]);
  }
  ASSERT_FALSE(HasFailure());
  script += "for i in $(seq 300); do if true" + probes + "; then echo all-ready; break; fi; sleep 0.1; done\n";
  std::string disks = volume_dir["regdisk-disks"];
  script += "cmp " + Q(disks + "/root/boot.qcow2") + " " + Q(S().boot_qcow2) + " && echo boot-identical\n";
  script += "cmp " + Q(disks + "/data/data.img") + " " + Q(S().data_img) + " && echo data-identical\n";
  script += "stat -c 'copy %n %u:%g %a' " + Q(disks + "/root/boot.qcow2") + " " + Q(disks + "/data/data.img") + "\n";
  script += "kill -TERM $pids; for p in $pids; do rc=0; wait $p || rc=$?; echo \"serve exit $rc\"; done\n";
  script += "echo \"left: $(find " + Q(disks) + " -type f | wc -l) files\"\n";
  ProcessResult run = RunCmd({"unshare", "--mount", "--propagation", "private", "bash", "-c", script});
  EXPECT_EQ(run.exit_code, 0) << Describe(run) << "\n--- script\n" << script;
  EXPECT_THAT(run.out, HasSubstr("installed /var/run/regdisk/bin/regdisk-serve"));
  EXPECT_THAT(run.out, HasSubstr("all-ready"));
  EXPECT_THAT(run.out, HasSubstr("boot-identical"));
  EXPECT_THAT(run.out, HasSubstr("data-identical"));
  EXPECT_THAT(run.out, HasSubstr("boot.qcow2 107:107 440"));
  EXPECT_THAT(run.out, HasSubstr("data.img 107:107 440"));
  EXPECT_THAT(run.out, HasSubstr("serve exit 0\nserve exit 0\n"));
  EXPECT_THAT(run.out, HasSubstr("left: 0 files")) << "regdisk-serve left its copy behind\n" << run.out;

  ProcessResult missing = Regdisk({"render", "pod", WriteSpec("podmissing", TwoDiskSpec("podmissing", S().boot_image,
                                                                                      S().missing_image)),
                                   "--serve-image", serve_image, "--launcher-image", kLauncher});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("vm/missing")) << Describe(missing);
}

}  // namespace
}  // namespace regdisk::testing
