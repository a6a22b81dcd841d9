// The regdisk CLI against real registries (registry_server.h): build → push
// → pull/prepare round trips for every registry flavour and compression,
// interop with skopeo, umoci and buildah both ways, no re-upload on a second
// push (counted in the registry's access log), login/logout, and one-line
// errors that name the registry and the cause.
#include <gtest/gtest.h>

#include "harness.h"
#include "registry_server.h"

namespace regdisk::testing {
namespace {

using Flavour = RegistryServer::Flavour;

const std::string kCreds = std::string(RegistryServer::kUser) + ":" + RegistryServer::kPassword;

class RegistryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The machine's own auth files must not leak in, and login must write here.
    setenv("HOME", work_.path().c_str(), 1);
    unsetenv("XDG_RUNTIME_DIR");
    setenv("REGISTRY_AUTH_FILE", (work_.path() + "/auth.json").c_str(), 1);
    MakeSparseFile(disk_, 64 << 20, {0, 5 << 20, 40 << 20}, std::string(300000, 'd') + "disk-data");
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const auto& s : servers_) std::cerr << "=== registry log\n" << s->Log();
    }
  }
  RegistryServer* Start(Flavour f) {
    servers_.push_back(std::make_unique<RegistryServer>(f));
    EXPECT_EQ(servers_.back()->error(), "");
    return servers_.back().get();
  }
  // The flags a user of this registry passes: credentials, the CA.
  static std::vector<std::string> Flags(const RegistryServer& s) {
    if (s.flavour() == Flavour::kTls) return {"--cert-dir", s.ca_dir()};
    if (s.flavour() == Flavour::kOpen) return {};
    return {"--creds", kCreds};
  }
  // regdisk with --store STORE and, after the verb's arguments, `extra`.
  ProcessResult Cli(const std::string& store, std::vector<std::string> args,
                    const std::vector<std::string>& extra = {}) {
    args.insert(args.begin(), {"--store", work_.path() + "/" + store});
    args.insert(args.end(), extra.begin(), extra.end());
    return Regdisk(args);
  }
  // The error line of a failed command: one line, no secret, names `host`.
  static std::string ErrorLine(const ProcessResult& r, const std::string& host) {
    EXPECT_NE(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_EQ(r.err.find(RegistryServer::kPassword), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(host), std::string::npos) << "does not name the registry: " << r.err;
    return r.err;
  }
  // The sha256 of the disk `regdisk prepare` extracts from `image`.
  std::string PreparedDisk(std::string image, const std::vector<std::string>& flags,
                           const std::string& path = "") {
    if (image.starts_with("docker://")) image = image.substr(9);  // prepare takes what VM specs name
    std::vector<std::string> args = {"prepare", "--root", work_.path() + "/node", "--vm",
                                     "vm" + std::to_string(++vms_), "--json", image};
    if (!path.empty()) args.insert(args.end(), {"--path", path});
    auto r = Cli("unused", args, flags);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    auto base = r.out.find("\"base\": \"");
    if (base == std::string::npos) return "no base in: " + r.out;
    base += 9;
    return Sha256File(r.out.substr(base, r.out.find('"', base) - base));
  }

  TempDir work_{"regdisk-cli"};
  std::string disk_ = work_.path() + "/disk.img";
  std::vector<std::unique_ptr<RegistryServer>> servers_;
  int vms_ = 0;
};

std::string FlavourName(Flavour f) {
  switch (f) {
    case Flavour::kOpen: return "Open";
    case Flavour::kBasic: return "Basic";
    case Flavour::kToken: return "Token";
    case Flavour::kTls: return "Tls";
  }
  return "?";
}

class RoundTrip : public RegistryCliTest, public ::testing::WithParamInterface<Flavour> {};

// build → push → pull and prepare, byte-identical, for each compression.
TEST_P(RoundTrip, EveryCompression) {
  RegistryServer* s = Start(GetParam());
  auto flags = Flags(*s);
  for (const std::string compress : {"gzip", "zstd", "none"}) {
    SCOPED_TRACE(compress);
    std::string name = s->host() + "/vm/disk:" + compress;
    auto r = Cli("a", {"build", disk_, "--compress", compress, "-t", name});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    r = Cli("a", {"push", name, "--json"}, flags);
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    std::string pushed = r.out.substr(r.out.find("sha256:"), 71);

    r = Cli("b", {"pull", "docker://" + name, "--json"}, flags);
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_NE(r.out.find(pushed), std::string::npos) << r.out;
    r = Cli("b", {"inspect", name, "--json"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_NE(r.out.find(pushed), std::string::npos);
    EXPECT_NE(r.out.find("\"path\": \"/disk/disk.img\""), std::string::npos) << r.out;

    EXPECT_EQ(PreparedDisk("docker://" + name, flags), Sha256File(disk_));
  }
}

INSTANTIATE_TEST_SUITE_P(Flavours, RoundTrip,
                         ::testing::Values(Flavour::kOpen, Flavour::kBasic, Flavour::kToken, Flavour::kTls),
                         [](const auto& info) { return FlavourName(info.param); });

TEST_F(RegistryCliTest, SecondPushUploadsNoBlobAndCopiesMount) {
  RegistryServer* s = Start(Flavour::kOpen);
  std::string name = s->host() + "/vm/disk:v1";
  ASSERT_EQ(Cli("a", {"build", disk_, "-t", name}).exit_code, 0);
  auto r = Cli("a", {"push", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("\"blobsSent\": 2"), std::string::npos) << r.out;  // layer + config
  int uploads = s->CountRequests("POST", "/blobs/uploads/");
  int puts = s->CountRequests("PUT", "/blobs/uploads/");
  int patches = s->CountRequests("PATCH", "/blobs/uploads/");
  ASSERT_GE(puts, 2);

  r = Cli("a", {"push", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("\"blobsSent\": 0"), std::string::npos) << r.out;
  EXPECT_EQ(s->CountRequests("POST", "/blobs/uploads/"), uploads) << "a second push started an upload";
  EXPECT_EQ(s->CountRequests("PUT", "/blobs/uploads/"), puts);
  EXPECT_EQ(s->CountRequests("PATCH", "/blobs/uploads/"), patches);

  // Another repository on the same registry: blobs are mounted, not sent.
  r = Cli("a", {"copy", "docker://" + name, "docker://" + s->host() + "/other/disk:v1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(s->CountRequests("POST", "mount=", 201), 2);
  EXPECT_EQ(s->CountRequests("PUT", "/blobs/uploads/"), puts) << "copy uploaded instead of mounting";
  EXPECT_EQ(PreparedDisk("docker://" + s->host() + "/other/disk:v1", {}), Sha256File(disk_));
}

// skopeo and umoci read what regdisk pushed; regdisk reads what skopeo and
// buildah pushed, including the seed's Dockerfile built by buildah.
TEST_F(RegistryCliTest, InteropWithSkopeoUmociAndBuildah) {
  RegistryServer* s = Start(Flavour::kOpen);
  std::string ours = s->host() + "/interop/ours:v1";
  ASSERT_EQ(Cli("a", {"build", disk_, "-t", ours}).exit_code, 0);
  ASSERT_EQ(Cli("a", {"push", ours}).exit_code, 0);
  std::string layout = work_.path() + "/skopeo-layout";
  auto r = RunCmd({"skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + ours, "oci:" + layout + ":v1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = RunCmd({"umoci", "unpack", "--image", layout + ":v1", work_.path() + "/bundle"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(Sha256File(work_.path() + "/bundle/rootfs/disk/disk.img"), Sha256File(disk_));

  // skopeo pushes regdisk's layout; regdisk pulls it back.
  std::string theirs = s->host() + "/interop/skopeo:v1";
  r = RunCmd({"skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + layout + ":v1", "docker://" + theirs});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Cli("b", {"pull", "docker://" + theirs});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(PreparedDisk("docker://" + theirs, {}), Sha256File(disk_));

  // The seed's workflow with buildah: FROM scratch + ADD disk.qcow2 /disk/.
  std::string ctx = work_.path() + "/ctx";
  ASSERT_TRUE(MakeDirs(ctx).ok());
  r = RunCmd({"qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk_, ctx + "/disk.qcow2"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  ASSERT_TRUE(WriteFileAtomic(ctx + "/Dockerfile", "FROM scratch\nADD disk.qcow2 /disk/\n").ok());
  // buildah refuses a REGISTRY_AUTH_FILE that does not exist.
  std::vector<std::string> buildah = {"env", "-u", "REGISTRY_AUTH_FILE", "buildah", "--root", work_.path() + "/buildah", "--runroot",
                                      work_.path() + "/buildah-run", "--storage-driver", "vfs"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), buildah.begin(), buildah.end());
    return RunCmd(args);
  };
  r = with({"build", "--isolation", "chroot", "-q", "-t", "localhost/seed:v1", "-f", ctx + "/Dockerfile", ctx});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::string seed = s->host() + "/interop/buildah:v1";
  r = with({"push", "--tls-verify=false", "localhost/seed:v1", "docker://" + seed});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Cli("b", {"pull", "docker://" + seed});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Cli("b", {"inspect", seed});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(PreparedDisk("docker://" + seed, {}), Sha256File(ctx + "/disk.qcow2"));
}

TEST_F(RegistryCliTest, BuildStraightIntoTheRegistry) {
  RegistryServer* s = Start(Flavour::kBasic);
  std::string name = "docker://" + s->host() + "/direct/disk:v1";
  auto r = Cli("a", {"build", disk_, "--compress", "zstd", "-t", name}, {"--creds", kCreds});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(PreparedDisk(name, {"--creds", kCreds}), Sha256File(disk_));
}

TEST_F(RegistryCliTest, LoginLogout) {
  RegistryServer* s = Start(Flavour::kToken);
  std::string name = s->host() + "/private/disk:v1";
  ASSERT_EQ(Cli("a", {"build", disk_, "-t", name}).exit_code, 0);
  ErrorLine(Cli("a", {"push", name}), s->host());  // anonymous: refused

  auto bad = RunCmd({"sh", "-c", "echo wrong-password | " REGDISK_BIN " login -u alice --password-stdin " + s->host()});
  ErrorLine(bad, s->host());
  EXPECT_FALSE(PathExists(work_.path() + "/auth.json")) << "a refused login was saved";
  auto good = RunCmd({"sh", "-c", std::string("echo '") + RegistryServer::kPassword + "' | " REGDISK_BIN +
                                      " login -u alice --password-stdin " + s->host()});
  ASSERT_EQ(good.exit_code, 0) << Describe(good);
  EXPECT_EQ(good.out.find(RegistryServer::kPassword), std::string::npos);
  ASSERT_EQ(Cli("a", {"push", name}).exit_code, 0);

  auto out = Regdisk({"logout", s->host()});
  ASSERT_EQ(out.exit_code, 0) << Describe(out);
  ErrorLine(Cli("b", {"pull", "docker://" + name}), s->host());
}

TEST_F(RegistryCliTest, OneLineErrorsNameTheRegistryAndCause) {
  RegistryServer* basic = Start(Flavour::kBasic);
  RegistryServer* tls = Start(Flavour::kTls);
  std::string name = basic->host() + "/vm/disk:v1";
  ASSERT_EQ(Cli("a", {"build", disk_, "-t", name}).exit_code, 0);
  ASSERT_EQ(Cli("a", {"push", name}, {"--creds", kCreds}).exit_code, 0);

  std::string e = ErrorLine(Cli("a", {"push", name}, {"--creds", "alice:not-the-password"}), basic->host());
  EXPECT_NE(e.find("credentials of user \"alice\" were refused"), std::string::npos) << e;
  EXPECT_EQ(e.find("not-the-password"), std::string::npos) << e;

  e = ErrorLine(Cli("b", {"pull", "docker://" + basic->host() + "/no/such:v1"}, {"--creds", kCreds}), basic->host());
  EXPECT_NE(e.find("no/such"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown"), std::string::npos) << e;

  e = ErrorLine(Cli("b", {"pull", "docker://" + basic->host() + "/vm/disk:nope"}, {"--creds", kCreds}), basic->host());
  EXPECT_NE(e.find("nope"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown"), std::string::npos) << e;

  std::string down = "127.0.0.1:" + std::to_string(FreePort());
  e = ErrorLine(Cli("b", {"pull", "docker://" + down + "/vm/disk:v1"}, {"--retry-times", "0"}), down);
  EXPECT_NE(e.find("refused"), std::string::npos) << e;

  // A registry with a certificate we do not trust: refused, never downgraded.
  e = ErrorLine(Cli("b", {"pull", "docker://" + tls->host() + "/vm/disk:v1"}), tls->host());
  EXPECT_NE(e.find("certificate"), std::string::npos) << e;
  EXPECT_EQ(CountEntries(work_.path() + "/b/blobs/sha256"), 0) << "a failed pull left blobs behind";
}

// render domain names the files run would use (the lease overlay, the VM's
// cloud-init ISO, emptyDisk and NVRAM) and pins the image it resolves; the
// XML is valid for libvirt. With --no-resolve it needs no registry.
TEST_F(RegistryCliTest, RenderDomainNamesRunsFilesAndPins) {
  RegistryServer* s = Start(Flavour::kOpen);
  std::string image = s->host() + "/vm/boot:v1";
  ASSERT_EQ(Cli("a", {"build", disk_, "--standard", "v1alpha", "-t", "docker://" + image}).exit_code, 0);
  std::string spec = work_.path() + "/vm.yaml", root = work_.path() + "/root";
  ASSERT_TRUE(WriteFileAtomic(spec, "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\n"
                                    "metadata: {name: web}\nspec:\n  domain:\n"
                                    "    firmware: {bootloader: {efi: {secureBoot: false}}}\n"
                                    "    devices: {}\n  volumes:\n"
                                    "  - {name: root, containerDisk: {image: " + image + "}}\n"
                                    "  - {name: init, cloudInitNoCloud: {userData: \"#cloud-config\"}}\n"
                                    "  - {name: scratch, emptyDisk: {capacity: 1Gi}}\n").ok());
  auto offline = Regdisk({"render", "domain", "--no-resolve", "--root", root, spec});
  ASSERT_EQ(offline.exit_code, 0) << Describe(offline);
  for (const std::string& want : {root + "/vms/web.root/overlay.qcow2", root + "/run/web/init.iso",
                                  root + "/run/web/scratch.qcow2", root + "/run/web/nvram.fd",
                                  std::string("/usr/share/OVMF/OVMF_CODE_4M.fd")}) {
    EXPECT_NE(offline.out.find(want), std::string::npos) << want << " not in\n" << offline.out;
  }
  std::string xml = work_.path() + "/domain.xml";
  ASSERT_TRUE(WriteFileAtomic(xml, offline.out).ok());
  if (HaveProgram("virt-xml-validate")) {
    auto valid = RunCmd({"virt-xml-validate", xml, "domain"});
    EXPECT_EQ(valid.exit_code, 0) << Describe(valid);
  }
  auto pinned = Regdisk({"render", "domain", "--root", root, spec});
  ASSERT_EQ(pinned.exit_code, 0) << Describe(pinned);
  EXPECT_NE(pinned.out.find(root + "/disks/(sha256:"), std::string::npos) << pinned.out;
}

}  // namespace
}  // namespace regdisk::testing
