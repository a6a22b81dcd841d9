#include "runtime/runner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/libvirt_conn.h"
#include "runtime/plan.h"
#include "util/fs.h"
#include "vm/domain_xml.h"

namespace regdisk::runtime {
namespace {

using nlohmann::json;

// "none" (O_DIRECT) when the file system under `dir` supports it, as
// KubeVirt decides; tmpfs does not.
std::string CacheMode(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return "writethrough";
  ::close(fd);
  return "none";
}

}  // namespace

StatusOr<std::unique_ptr<Runner>> Runner::Open(RunnerOptions options) {
  std::unique_ptr<Runner> r(new Runner(std::move(options)));
  ASSIGN_OR_RETURN(r->cache_, cache::NodeCache::Open(r->options_.cache));
  RETURN_IF_ERROR(MakeDirs(r->options_.cache.root + "/run"));
  return r;
}

StatusOr<VmState> Runner::Load(const std::string& name) {
  RETURN_IF_ERROR(cache::CheckVmName(name));
  std::string path = Dir(name) + "/vm.json";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  VmState s;
  s.name = name;
  s.console_log = Dir(name) + "/console.log";
  try {
    auto j = json::parse(text);
    for (const auto& [disk, digest] : j.at("pins").items()) s.pins[disk] = digest.get<std::string>();
    s.run_strategy = j.value("runStrategy", "Once");
    for (const auto& f : j.value("files", json::array())) {
      std::string file = f.get<std::string>();
      // Names inside the VM's directory only: vm.json is ours, but a
      // damaged one must not make stop delete anything else.
      if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
        return Corrupt(path + ": bad file name " + Quote(file));
      }
      s.files.push_back(file);
    }
    for (const auto& lease_name : j.at("leases")) {
      ASSIGN_OR_RETURN(auto lease, cache_->GetLease(lease_name.get<std::string>()));
      if (lease) s.leases.push_back(*lease);
    }
  } catch (const json::exception& e) {
    return Corrupt(path + ": " + e.what());
  }
  return s;
}

Status Runner::Save(const VmState& s) {
  json leases = json::array();
  for (const auto& l : s.leases) leases.push_back(l.vm);
  json j = {{"name", s.name}, {"leases", leases}, {"pins", s.pins}, {"runStrategy", s.run_strategy},
            {"files", s.files}};
  return WriteFileAtomic(Dir(s.name) + "/vm.json", j.dump(2) + "\n");
}

StatusOr<std::vector<RunResult>> Runner::Run(const vm::VmSet& set) {
  std::vector<RunResult> done;
  std::vector<bool> fresh;
  for (int i = 0; i < set.replicas; ++i) {
    std::string name = vm::ReplicaName(set, i);
    bool existed = PathExists(Dir(name) + "/vm.json");
    auto started = StartOne(name, set.vm);
    if (!started.ok()) {
      // All or nothing: replicas this call started are stopped again (and
      // forgotten when this call created them).
      for (size_t k = 0; k < done.size(); ++k) (void)Stop(done[k].name, fresh[k]);
      return started.status();
    }
    done.push_back({name, *started});
    fresh.push_back(!existed);
  }
  return done;
}

StatusOr<bool> Runner::StartOne(const std::string& name, const vm::VmSpec& spec) {
  RETURN_IF_ERROR(cache::CheckVmName(name));
  bool existed = PathExists(Dir(name) + "/vm.json");
  VmState state;
  state.name = name;
  state.console_log = Dir(name) + "/console.log";
  if (existed) {
    ASSIGN_OR_RETURN(state, Load(name));
    ASSIGN_OR_RETURN(auto conn, LibvirtConn::Open(options_.libvirt_uri));
    ASSIGN_OR_RETURN(bool active, conn->IsActive(name));
    if (active) return AlreadyExists("VM " + name + " is running; stop it first (regdisk stop " + name + ")");
    // A stopped VM starts again from pristine disks: new overlays and files.
    for (const auto& l : state.leases) (void)cache_->Release(l.vm);
    state.leases.clear();
    RETURN_IF_ERROR(RemoveFiles(state));
  }
  state.run_strategy = vm::RunStrategyName(spec.run_strategy);
  RETURN_IF_ERROR(MakeDirs(Dir(name)));
  if (spec.run_strategy == vm::RunStrategy::kHalted) {
    // Recorded so that ls shows it; nothing prepared, defined or started.
    if (Status s = Save(state); !s.ok()) {
      if (!existed) (void)RemoveAll(Dir(name));
      return s;
    }
    return false;
  }
  auto undo = [&](const Status& why) {
    for (const auto& l : state.leases) (void)cache_->Release(l.vm);
    state.leases.clear();
    (void)RemoveFiles(state);
    if (!existed) (void)RemoveAll(Dir(name));
    return why;
  };

  VmPlan plan = PlanVm(options_.cache.root, name, spec);
  vm::DomainOptions dom = plan.domain;
  dom.domain_type = options_.domain_type;
  // Missing firmware is refused before any disk is pulled.
  if (spec.firmware == vm::Firmware::kEfi) {
    if (Status s = PrepareFirmware(name, dom, state); !s.ok()) return undo(s);
  }
  auto attached = Attach(name, spec, std::move(plan.disks), state);
  if (!attached.ok()) return undo(attached.status());
  dom.cache_mode = attached->empty() ? "none" : CacheMode(attached->front().file);
  vm::VmSpec named = spec;
  named.name = name;
  std::string xml = vm::RenderDomainXml(named, *attached, dom);
  if (Status s = WriteFileAtomic(Dir(name) + "/domain.xml", xml); !s.ok()) return undo(s);
  if (Status s = WriteFileAtomic(state.console_log, ""); !s.ok()) return undo(s);
  if (Status s = Save(state); !s.ok()) return undo(s);

  auto conn = LibvirtConn::Open(options_.libvirt_uri);
  if (!conn.ok()) return undo(conn.status());
  // Lazily served bases: their servers up (again, if one died) right
  // before qemu connects.
  for (const auto& l : state.leases) {
    if (Status s = cache_->EnsureServing(l); !s.ok()) return undo(s);
  }
  if (Status s = (*conn)->StartDomain(xml); !s.ok()) return undo(s.Annotate("VM " + name));
  return true;
}

Status Runner::Stop(const std::string& name, bool forget) {
  RETURN_IF_ERROR(cache::CheckVmName(name));
  if (!PathExists(Dir(name) + "/vm.json")) return NotFound("no VM named " + name + " on this node (see regdisk ls)");
  ASSIGN_OR_RETURN(VmState state, Load(name));
  ASSIGN_OR_RETURN(auto conn, LibvirtConn::Open(options_.libvirt_uri));
  RETURN_IF_ERROR(conn->Destroy(name));
  for (const auto& l : state.leases) RETURN_IF_ERROR(cache_->Release(l.vm));
  state.leases.clear();
  RETURN_IF_ERROR(RemoveFiles(state));
  if (forget) return RemoveAll(Dir(name));
  return Save(state);
}

Status Runner::RemoveFiles(VmState& state) {
  for (const auto& f : state.files) RETURN_IF_ERROR(RemoveAll(Dir(state.name) + "/" + f));
  state.files.clear();
  return OkStatus();
}

StatusOr<std::vector<VmState>> Runner::List() {
  std::vector<VmState> out;
  std::unique_ptr<LibvirtConn> conn;
  if (auto c = LibvirtConn::Open(options_.libvirt_uri); c.ok()) conn = std::move(*c);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(options_.cache.root + "/run", ec)) {
    auto s = Load(e.path().filename().string());
    if (!s.ok()) continue;
    if (conn) {
      auto active = conn->IsActive(s->name);
      s->running = active.ok() && *active;
    }
    out.push_back(*s);
  }
  std::sort(out.begin(), out.end(), [](const VmState& a, const VmState& b) { return a.name < b.name; });
  return out;
}

Status Runner::FollowConsole(const std::string& name, std::FILE* out, int timeout_seconds) {
  RETURN_IF_ERROR(cache::CheckVmName(name));
  if (!PathExists(Dir(name) + "/vm.json")) return NotFound("no VM named " + name + " on this node (see regdisk ls)");
  ASSIGN_OR_RETURN(VmState state, Load(name));
  ASSIGN_OR_RETURN(auto conn, LibvirtConn::Open(options_.libvirt_uri));
  int fd = ::open(state.console_log.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("opening " + state.console_log, errno);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  char buf[65536];
  for (bool last = false;;) {
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) std::fwrite(buf, 1, static_cast<size_t>(n), out);
    std::fflush(out);
    if (last) break;
    auto active = conn->IsActive(name);
    last = !active.ok() || !*active;  // one more read after it stops
    if (timeout_seconds > 0 && std::chrono::steady_clock::now() > deadline) {
      ::close(fd);
      return Unavailable("VM " + name + " still running after " + std::to_string(timeout_seconds) + " s");
    }
    if (!last) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ::close(fd);
  return OkStatus();
}

}  // namespace regdisk::runtime
