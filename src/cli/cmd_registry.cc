// regdisk push, pull, copy, tag, login, logout: moving images between the
// local store, OCI layouts and registries (all through oci::CopyImage).
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/verbs.h"
#include "oci/copy.h"
#include "registry/auth_file.h"
#include "registry/registry.h"
#include "resolve/store.h"
#include "util/progress.h"

namespace regdisk::cli {
namespace {

struct CopyArgs {
  std::string src, dst;
  bool json = false;
  resolve::RegistryFlags reg;
  std::string max_disk;  // --max-disk-size, pull only
  bool for_pull = false;
};

// One progress line per blob transferred (blobs already present are not
// shown); thread-safe since blobs move in parallel.
class BlobProgress {
 public:
  void Start(const oci::Descriptor& d) {
    std::lock_guard lock(mu_);
    bars_[d.digest.str()] = std::make_unique<Progress>("blob " + d.digest.short_hex(), d.size);
    bytes_in_[d.digest.str()] = 0;  // a blob sent again starts over
    ++blobs_;
  }
  void Add(const oci::Descriptor& d, uint64_t n) {
    std::lock_guard lock(mu_);
    bytes_ += n;
    auto& bar = *bars_.at(d.digest.str());
    bar.Add(n);
    if ((bytes_in_[d.digest.str()] += n) == d.size) bar.Done();
  }
  int blobs() const { return blobs_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Progress>> bars_;
  std::map<std::string, uint64_t> bytes_in_;
  int blobs_ = 0;
  uint64_t bytes_ = 0;
};

Status RunCopy(const Globals& g, CopyArgs a) {
  auto src = resolve::OpenImage(g.store, a.reg, a.src, false);
  if (!src.ok()) return src.status();
  auto dst = resolve::OpenImage(g.store, a.reg, a.dst, true);
  if (!dst.ok()) return dst.status();
  BlobProgress progress;
  oci::CopyOptions options;
  options.on_blob = [&](const oci::Descriptor& d) { progress.Start(d); };
  options.on_bytes = [&](const oci::Descriptor& d, uint64_t n) { progress.Add(d, n); };
  options.parallel = 3;
  options.blob_retries = 1;  // an upload the registry lost midway is sent once more
  if (a.for_pull) {  // pull keeps to the node's disk limit, as prepare does
    ASSIGN_OR_RETURN(options.max_disk_size, resolve::MaxDiskSize(a.max_disk));
  }
  using T = oci::ImageLocation::Transport;
  const auto &from = src->location, &to = dst->location;
  std::string dst_tag = to.transport == T::kDocker && to.ref.digest ? "" : to.tag;
  auto root = oci::CopyImage(*src->store, from.tag, *dst->store, dst_tag, options);
  if (!root.ok()) return root.status();
  if (a.json) {
    nlohmann::json j = {{"source", from.str()},       {"destination", to.str()},
                        {"digest", root->digest.str()}, {"mediaType", root->media_type},
                        {"blobsSent", progress.blobs()}, {"bytesSent", progress.bytes()}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s\n", root->digest.str().c_str());
  }
  return OkStatus();
}

Status RunPush(const Globals& g, CopyArgs a) {
  if (a.dst.empty()) {
    auto loc = oci::ImageLocation::Parse(a.src);
    if (!loc.ok()) return loc.status();
    if (loc->transport != oci::ImageLocation::Transport::kLocal) {
      return InvalidArgument("push " + a.src + ": name a destination (docker://REGISTRY/NAME[:TAG])");
    }
    a.dst = "docker://" + loc->ref.str();
  } else if (!a.dst.starts_with("docker://")) {
    return InvalidArgument("push destination \"" + a.dst + "\" must be docker://REGISTRY/NAME[:TAG]");
  }
  return RunCopy(g, a);
}

Status RunPull(const Globals& g, CopyArgs a) {
  if (!a.src.starts_with("docker://")) {
    return InvalidArgument("pull source \"" + a.src + "\" must be docker://REGISTRY/NAME[:TAG]");
  }
  if (a.dst.empty()) a.dst = a.src.substr(9);
  return RunCopy(g, a);
}

struct LoginArgs {
  std::string host, user, password;
  bool password_stdin = false;
  resolve::RegistryFlags reg;
};

Status RunLogin(const LoginArgs& a) {
  std::string password = a.password;
  if (a.password_stdin) {
    if (!std::getline(std::cin, password)) return InvalidArgument("login: no password on stdin");
    if (!password.empty() && password.back() == '\r') password.pop_back();
  }
  if (a.user.empty() || password.empty()) {
    return InvalidArgument("login " + a.host + ": needs --username and --password-stdin (or --password)");
  }
  registry::Options o = a.reg.Options();
  o.credentials.clear();  // Login takes the user and password given here
  Status s = registry::Login(a.host, a.user, password, o);
  if (!s.ok()) return s;
  std::printf("Login Succeeded (%s, saved in %s)\n", a.host.c_str(), registry::AuthFileForWriting().c_str());
  return OkStatus();
}

}  // namespace

std::vector<Verb> RegistryVerbs() {
  // push, pull, copy and tag: a source, a destination, the registry flags.
  struct Arg {
    const char* name;
    const char* help;
  };
  auto copy_verb = [](std::string name, std::string summary, std::vector<std::string> examples, std::string notes,
                      Arg src, Arg dst, bool dst_required, bool json, Status (*run)(const Globals&, CopyArgs)) {
    return Verb{std::move(name), std::move(summary), std::move(examples), std::move(notes),
                [=](CLI::App* cmd, const Globals& g) -> Action {
                  auto a = std::make_shared<CopyArgs>();
                  cmd->add_option(src.name, a->src, src.help)->required();
                  cmd->add_option(dst.name, a->dst, dst.help)->required(dst_required);
                  if (json) cmd->add_flag("--json", a->json, "print the result as JSON");
                  AddRegistryFlags(cmd, a->reg);
                  if (run == RunPull) {
                    a->for_pull = true;
                    AddMaxDiskSizeFlag(cmd, a->max_disk);
                  }
                  return [&g, a, run] { return run(g, *a); };
                }};
  };
  const Arg any_src{"source", "NAME[:TAG], oci:PATH[:TAG] or docker://REF"};
  const Arg any_dst{"destination", "NAME[:TAG], oci:PATH[:TAG] or docker://REF"};
  Verb push = copy_verb("push", "Push an image from the local store to a registry",
                        {"regdisk push localhost:5000/vmdisks/fedora:38",
                         "regdisk push vmdisks/fedora:38 docker://quay.io/me/fedora:38 --creds me:secret"},
                        "", {"image", "NAME[:TAG] in the local store, or oci:PATH[:TAG]"},
                        {"destination", "docker://REGISTRY/NAME[:TAG] (default: the image's own name)"}, false, true,
                        RunPush);
  Verb pull = copy_verb("pull", "Pull an image from a registry into the local store",
                        {"regdisk pull docker://localhost:5000/vmdisks/fedora:38"}, "",
                        {"image", "docker://REGISTRY/NAME[:TAG|@DIGEST]"},
                        {"name", "local name (default: the reference pulled)"}, false, true, RunPull);
  Verb copy = copy_verb("copy", "Copy an image between registries, OCI layouts and the local store",
                        {"regdisk copy oci:out:v1 docker://localhost:5000/vmdisks/x:v1"},
                        "Blobs the destination has are skipped; within one registry they are mounted.\n", any_src,
                        any_dst, true, true, RunCopy);
  Verb tag = copy_verb("tag", "Give an image another name (in any store; blobs are shared)",
                       {"regdisk tag vmdisks/fedora:38 vmdisks/fedora:latest"}, "", {"image", "the image"},
                       {"name", "the new name"}, true, false, RunCopy);

  Verb login = ArgsVerb<LoginArgs>(
      "login", "Check credentials with a registry and save them in the auth file",
      {"echo \"$PASS\" | regdisk login -u me --password-stdin localhost:5000"},
      "Saved in $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,\n"
      "else ~/.docker/config.json (the files podman and docker use).\n",
      [](CLI::App* cmd, LoginArgs& a) {
        cmd->add_option("registry", a.host, "HOST[:PORT]")->required();
        cmd->add_option("-u,--username", a.user, "user name");
        cmd->add_option("-p,--password", a.password, "password (visible to other users: prefer --password-stdin)");
        cmd->add_flag("--password-stdin", a.password_stdin, "read the password from stdin");
        AddRegistryFlags(cmd, a.reg);
      },
      RunLogin);
  Verb logout{"logout", "Remove a registry's saved credentials", {"regdisk logout localhost:5000"}, "",
              [](CLI::App* cmd, const Globals&) -> Action {
                auto host = std::make_shared<std::string>();
                cmd->add_option("registry", *host, "HOST[:PORT]")->required();
                return [host] {
                  RETURN_IF_ERROR(registry::Logout(*host));
                  std::printf("Removed login credentials for %s\n", host->c_str());
                  return OkStatus();
                };
              }};
  return {push, pull, copy, tag, login, logout};
}

}  // namespace regdisk::cli
