// The runner's paths that never reach libvirt: a Halted VM, and refusals
// (which must leave nothing). The runner is pointed at a libvirt socket that
// does not exist, so a test that reached libvirt would fail with its error.
#include "runtime/runner.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "util/fs.h"
#include "vm/cloud_init.h"

namespace regdisk::runtime {
namespace {

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RunnerOptions o;
    o.cache.root = dir_.path() + "/root";
    o.libvirt_uri = "qemu:///system?socket=" + dir_.path() + "/no-such-libvirt-sock";
    o.open = [](const oci::Reference& ref, const std::string&) -> StatusOr<std::unique_ptr<oci::Store>> {
      return NotFound("no registry in this test: " + ref.str());
    };
    auto r = Runner::Open(std::move(o));
    ASSERT_TRUE(r.ok()) << r.status().message();
    runner_ = std::move(*r);
  }
  std::string Run(const std::string& name) const { return dir_.path() + "/root/run/" + name; }

  static vm::VmDisk Disk(const std::string& name, vm::VolumeKind kind) {
    vm::VmDisk d;
    d.name = name;
    d.target = "vd" + std::string(1, static_cast<char>('a' + name.size() % 20));
    d.volume.name = name;
    d.volume.kind = kind;
    d.volume.capacity = 1 << 20;
    d.volume.container.image = "127.0.0.1:1/never/pulled:v1";
    return d;
  }

  TempDir dir_{"regdisk-runner"};
  std::unique_ptr<Runner> runner_;
};

TEST_F(RunnerTest, HaltedIsRecordedAndNothingElse) {
  vm::VmSet set;
  set.vm.name = "h";
  set.vm.run_strategy = vm::RunStrategy::kHalted;
  set.vm.disks = {Disk("root", vm::VolumeKind::kContainerDisk), Disk("scratch", vm::VolumeKind::kEmptyDisk)};
  auto r = runner_->Run(set);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "h");
  EXPECT_FALSE((*r)[0].started);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(Run("h"))) files.push_back(e.path().filename());
  EXPECT_EQ(files, std::vector<std::string>{"vm.json"});
  auto list = runner_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].run_strategy, "Halted");
  EXPECT_TRUE((*list)[0].leases.empty());
}

// Cloud-init data over the limit (the parser's 2048 bytes is KubeVirt's for
// inline data; a Secret's can be larger) is refused after an emptyDisk was
// made: the refusal removes it and the VM's directory.
TEST_F(RunnerTest, RefusedStartLeavesNothing) {
  vm::VmSet set;
  set.vm.name = "big";
  vm::VmDisk ci = Disk("ci", vm::VolumeKind::kCloudInitNoCloud);
  ci.volume.cloud_init.user_data.assign(vm::kMaxCloudInitDataBytes + 1, 'x');
  set.vm.disks = {Disk("scratch", vm::VolumeKind::kEmptyDisk), ci};
  auto r = runner_->Run(set);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "VM big, volume ci: cloud-init user data: 1048577 bytes, more than the limit of 1048576");
  EXPECT_FALSE(PathExists(Run("big")));

  // A volume name that is not one safe path component: refused first.
  set.vm.disks = {Disk("scratch", vm::VolumeKind::kEmptyDisk), Disk("../x", vm::VolumeKind::kEmptyDisk)};
  r = runner_->Run(set);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "volume \"../x\": not usable as a file name");
  EXPECT_FALSE(PathExists(Run("big")));
  EXPECT_FALSE(PathExists(dir_.path() + "/root/x"));

  // A container disk that cannot be pulled, after the per-VM files.
  set.vm.disks = {Disk("scratch", vm::VolumeKind::kEmptyDisk), Disk("root", vm::VolumeKind::kContainerDisk)};
  r = runner_->Run(set);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no registry in this test"), std::string::npos) << r.status().message();
  EXPECT_FALSE(PathExists(Run("big")));
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/root/vms"));
}

}  // namespace
}  // namespace regdisk::runtime
