// spec.domain: resources, cpu, memory, firmware, features, machine, clock
// and the devices other than disks and interfaces.
#include <cctype>

#include "vm/spec_internal.h"

namespace regdisk::vm::internal {
namespace {

constexpr const char* kNoHost = "regdisk does not pass devices of the host to a VM";

// A UUID as KubeVirt writes firmware.uuid: 8-4-4-4-12 hex digits.
bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// requests / limits: cpu and memory, kept as written for the Pod.
Status ParseAmounts(const Field& f, std::string* cpu, std::string* memory) {
  RETURN_IF_ERROR(f.NeedMap());
  RETURN_IF_ERROR(CheckKeys(f, {Use("cpu"), Use("memory")}));  // others: GPUs, hugepages, devices
  for (auto [key, out] : {std::pair{"cpu", cpu}, std::pair{"memory", memory}}) {
    if (!f[key].present()) continue;
    ASSIGN_OR_RETURN(*out, f[key].Str(true));
    if (auto q = ParseQuantity(*out); !q.ok()) return f[key].Error(q.status().message());
  }
  return OkStatus();
}

Status ParseResources(const Field& domain, const Context& ctx, VmSpec* vm) {
  Field res = domain["resources"];
  RETURN_IF_ERROR(res.NeedMap());
  RETURN_IF_ERROR(CheckKeys(res, {Use("requests"), Use("limits"), Accept("overcommitGuestOverhead")}));
  RETURN_IF_ERROR(ParseAmounts(res["requests"], &vm->cpu_request, &vm->memory_request));
  RETURN_IF_ERROR(ParseAmounts(res["limits"], &vm->cpu_limit, &vm->memory_limit));
  RETURN_IF_ERROR(res["overcommitGuestOverhead"].Bool().status());

  Field mem = domain["memory"];
  RETURN_IF_ERROR(mem.NeedMap());
  RETURN_IF_ERROR(CheckKeys(mem, {Use("guest"), Refuse("hugepages", kNoTuning),
                                  Refuse("maxGuest", "memory hotplug is not supported")}));
  // The guest's memory: memory.guest, else the request, else the limit (a
  // missing request defaults to the limit in Kubernetes).
  Field guest = mem["guest"];
  Field from = guest.present() ? guest
               : res["requests"]["memory"].present() ? res["requests"]["memory"]
                                                     : res["limits"]["memory"];
  if (ctx.instancetype && guest.present()) {
    return guest.Error("conflicts with instancetype " + ctx.instancetype->ref + ", which sets memory.guest");
  }
  if (ctx.instancetype) {
    vm->memory_bytes = ctx.instancetype->memory;
  } else if (from.present()) {
    ASSIGN_OR_RETURN(vm->memory_bytes, Bytes(from, kMinMemory, kMaxMemory, "1Mi to 16Ti"));
  }
  return OkStatus();
}

// cpu.guest of an instancetype laid out as the preference says.
void InstancetypeTopology(int cpus, const std::string& how, VmSpec* vm) {
  vm->cores = vm->sockets = vm->threads = 1;
  if (how == "preferCores" || how == "cores") {
    vm->cores = cpus;
  } else if (how == "preferThreads" || how == "threads") {
    vm->threads = cpus;
  } else {
    vm->sockets = cpus;  // preferSockets, sockets, preferAny, any
  }
}

Status ParseCpu(const Field& domain, const Context& ctx, VmSpec* vm) {
  Field cpu = domain["cpu"];
  RETURN_IF_ERROR(cpu.NeedMap());
  RETURN_IF_ERROR(CheckKeys(cpu, {
      Use("cores"), Use("sockets"), Use("threads"),
      Refuse("model", kDefaultCpuModel),
      Refuse("features", kDefaultCpuModel),
      Refuse("dedicatedCpuPlacement", kNoTuning), Refuse("isolateEmulatorThread", kNoTuning),
      Refuse("numa", kNoTuning), Refuse("realtime", kNoTuning),
      Refuse("maxSockets", "CPU hotplug is not supported")}));
  bool topology = false;
  for (const char* key : {"cores", "sockets", "threads"}) topology |= cpu[key].present();
  if (ctx.instancetype) {
    if (topology) return cpu.Error("conflicts with instancetype " + ctx.instancetype->ref + ", which sets cpu.guest");
    InstancetypeTopology(ctx.instancetype->cpus, ctx.prefs.cpu_topology, vm);
    return OkStatus();
  }
  ASSIGN_OR_RETURN(vm->cores, cpu["cores"].Int(1, kMaxCpus, 1));
  ASSIGN_OR_RETURN(vm->sockets, cpu["sockets"].Int(1, kMaxCpus, 1));
  ASSIGN_OR_RETURN(vm->threads, cpu["threads"].Int(1, kMaxCpus, 1));
  if (vm->cpus() > kMaxCpus) return cpu.Error("more than 256 vCPUs");
  if (!topology) {
    // As KubeVirt: without a topology, the CPU limit (else the request),
    // rounded up, gives the sockets.
    std::string amount = vm->cpu_limit.empty() ? vm->cpu_request : vm->cpu_limit;
    Field f = domain["resources"][vm->cpu_limit.empty() ? "requests" : "limits"]["cpu"];
    if (!amount.empty()) {
      ASSIGN_OR_RETURN(uint64_t n, ParseQuantity(amount));
      if (n > kMaxCpus) return f.Error("more than 256 vCPUs");
      vm->sockets = static_cast<int>(std::max<uint64_t>(n, 1));
    }
  }
  return OkStatus();
}

Status ParseFirmware(const Field& domain, const Context& ctx, VmSpec* vm) {
  Field fw = domain["firmware"];
  RETURN_IF_ERROR(fw.NeedMap());
  RETURN_IF_ERROR(CheckKeys(fw, {Use("uuid"), Use("serial"), Use("bootloader"),
                                 Refuse("kernelBoot", "regdisk boots from disks only"),
                                 Refuse("acpi", "ACPI tables from volumes are not supported")}));
  ASSIGN_OR_RETURN(vm->uuid, fw["uuid"].Str(false));
  if (!vm->uuid.empty() && !IsUuid(vm->uuid)) return fw["uuid"].Error(Quoted(vm->uuid) + " is not a UUID");
  ASSIGN_OR_RETURN(vm->serial, fw["serial"].Str(false));
  for (char c : vm->serial) {
    if (c < 0x20 || c > 0x7e || vm->serial.size() > kMaxStr) {
      return fw["serial"].Error("must be printable ASCII, at most 256 characters");
    }
  }
  Field boot = fw["bootloader"];
  RETURN_IF_ERROR(boot.NeedMap());
  RETURN_IF_ERROR(CheckKeys(boot, {Use("bios"), Use("efi")}));
  if (boot["bios"].exists && boot["efi"].exists) return boot.Error("both bios and efi");
  Field efi = boot["efi"], bios = boot["bios"];
  RETURN_IF_ERROR(efi.NeedMap());
  RETURN_IF_ERROR(bios.NeedMap());
  // useSerial: the serial port is always the console here.
  RETURN_IF_ERROR(CheckKeys(bios, {Accept("useSerial")}));
  RETURN_IF_ERROR(bios["useSerial"].Bool().status());
  RETURN_IF_ERROR(CheckKeys(efi, {Use("secureBoot"), Use("persistent")}));
  if (efi.exists) {
    vm->firmware = Firmware::kEfi;
    // KubeVirt: secureBoot defaults to true.
    ASSIGN_OR_RETURN(vm->secure_boot, efi["secureBoot"].Bool(true));
    ASSIGN_OR_RETURN(bool persistent, efi["persistent"].Bool());
    if (persistent) {
      return efi["persistent"].Error("not supported: the NVRAM is per run, removed with the VM's overlays");
    }
  } else if (!bios.exists && ctx.prefs.efi.value_or(false)) {
    vm->firmware = Firmware::kEfi;
    vm->secure_boot = ctx.prefs.secure_boot.value_or(true);
  }
  return OkStatus();
}

Status ParseFeatures(const Field& domain, const Context& ctx, VmSpec* vm) {
  Field feat = domain["features"];
  RETURN_IF_ERROR(feat.NeedMap());
  RETURN_IF_ERROR(CheckKeys(feat, {
      Use("acpi"), Use("apic"), Use("smm"),
      Refuse("hyperv", "Hyper-V enlightenments are not supported"),
      Refuse("hypervPassthrough", "Hyper-V enlightenments are not supported"),
      Refuse("kvm", "hiding KVM is not supported"), Refuse("pvspinlock", "not supported")}));
  std::optional<bool> smm;
  for (const char* key : {"acpi", "apic", "smm"}) {
    Field f = feat[key];
    RETURN_IF_ERROR(f.NeedMap());
    if (std::string(key) == "apic") {
      RETURN_IF_ERROR(CheckKeys(f, {Use("enabled"), Refuse("endOfInterrupt", "not supported")}));
    } else {
      RETURN_IF_ERROR(CheckKeys(f, {Use("enabled")}));
    }
    // A feature that is given is on unless enabled: false.
    ASSIGN_OR_RETURN(bool on, f["enabled"].Bool(true));
    on = on && f.exists;
    if (std::string(key) == "acpi") vm->acpi = !f.exists || on;
    if (std::string(key) == "apic") vm->apic = on;
    if (std::string(key) == "smm" && f.exists) smm = on;
  }
  if (vm->firmware == Firmware::kEfi && !vm->acpi) {
    return feat["acpi"].Error("EFI needs ACPI on x86 (libvirt refuses it off)");
  }
  if (!smm) smm = ctx.prefs.smm;
  if (vm->secure_boot) {
    // KubeVirt refuses secure boot with SMM turned off, and turns it on.
    if (smm == false) return feat["smm"].Error("secure boot needs SMM (features.smm.enabled: true)");
    smm = true;
  }
  vm->smm = smm.value_or(false);
  return OkStatus();
}

Status ParseMachine(const Field& domain, const Context& ctx, VmSpec* vm) {
  Field m = domain["machine"];
  RETURN_IF_ERROR(m.NeedMap());
  RETURN_IF_ERROR(CheckKeys(m, {Use("type")}));
  ASSIGN_OR_RETURN(std::string type, m["type"].Str(false));
  if (type.empty() && ctx.prefs.machine) type = *ctx.prefs.machine;
  if (type == "q35" || type.starts_with("pc-q35")) {
    vm->machine = "q35";
  } else if (!type.empty()) {
    return m["type"].Error(Quoted(type) + " is not a q35 machine type (KubeVirt's only one on x86)");
  }
  // SMM and OVMF's 4 MiB flash need q35, as KubeVirt always uses.
  if (vm->firmware == Firmware::kEfi || vm->smm) vm->machine = "q35";
  return OkStatus();
}

Status ParseClock(const Field& domain) {
  Field clock = domain["clock"];
  RETURN_IF_ERROR(clock.NeedMap());
  RETURN_IF_ERROR(CheckKeys(clock, {Use("utc"), Refuse("timezone", "the guest clock is UTC"),
                                    Refuse("timer", "regdisk uses the hypervisor's default timers")}));
  RETURN_IF_ERROR(clock["utc"].NeedMap());
  return CheckKeys(clock["utc"], {Refuse("offsetSeconds", "the guest clock is UTC")});
}

Status ParseOtherDevices(const Field& devices, const Context& ctx, VmSpec* vm) {
  RETURN_IF_ERROR(CheckKeys(devices, {
      Use("disks"), Use("interfaces"), Use("rng"), Use("autoattachPodInterface"),
      Accept("autoattachGraphicsDevice"), Accept("autoattachSerialConsole"), Accept("logSerialConsole"),
      Accept("autoattachMemBalloon"), Accept("autoattachInputDevice"), Accept("disableHotplug"),
      Accept("networkInterfaceMultiqueue"), Accept("blockMultiQueue"),
      Refuse("gpus", kNoHost), Refuse("hostDevices", kNoHost), Refuse("clientPassthrough", kNoHost),
      Refuse("tpm", "TPM devices are not supported"), Refuse("watchdog", "watchdog devices are not supported"),
      Refuse("sound", "sound devices are not supported"), Refuse("inputs", "input devices are not supported"),
      Refuse("filesystems", "virtiofs shares are not supported"),
      Refuse("downwardMetrics", "no metrics source on one node"),
      Refuse("autoattachVSOCK", "vsock devices are not supported"),
      Refuse("useVirtioTransitional", "not supported"), Refuse("panicDevices", "not supported")}));
  for (const char* key : {"autoattachPodInterface", "autoattachGraphicsDevice", "autoattachSerialConsole",
                          "logSerialConsole", "autoattachMemBalloon", "autoattachInputDevice", "disableHotplug",
                          "networkInterfaceMultiqueue", "blockMultiQueue"}) {
    RETURN_IF_ERROR(devices[key].Bool().status());
  }
  Field rng = devices["rng"];
  RETURN_IF_ERROR(rng.NeedMap());
  RETURN_IF_ERROR(CheckKeys(rng, {}));
  vm->rng = rng.exists || ctx.prefs.rng.value_or(false);
  return OkStatus();
}

}  // namespace

Status ParseDomain(const Field& domain, const Context& ctx, VmSpec* vm) {
  RETURN_IF_ERROR(CheckKeys(domain, {
      Use("resources"), Use("cpu"), Use("memory"), Use("firmware"), Use("features"), Use("machine"),
      Use("clock"), Use("devices"),
      Refuse("ioThreadsPolicy", "I/O threads are not supported"), Refuse("ioThreads", "I/O threads are not supported"),
      Refuse("chassis", "SMBIOS chassis data is not supported"),
      Refuse("launchSecurity", "confidential computing (SEV) is not supported")}));
  RETURN_IF_ERROR(ParseResources(domain, ctx, vm));
  RETURN_IF_ERROR(ParseCpu(domain, ctx, vm));
  RETURN_IF_ERROR(ParseFirmware(domain, ctx, vm));
  RETURN_IF_ERROR(ParseFeatures(domain, ctx, vm));
  RETURN_IF_ERROR(ParseMachine(domain, ctx, vm));
  RETURN_IF_ERROR(ParseClock(domain));
  Field devices = domain["devices"];
  RETURN_IF_ERROR(devices.NeedMap());
  return ParseOtherDevices(devices, ctx, vm);
}

}  // namespace regdisk::vm::internal
