// regdisk push, pull, copy, tag, login, logout: moving images between the
// local store, OCI layouts and registries (all through oci::CopyImage).
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "oci/copy.h"
#include "registry/auth_file.h"
#include "registry/registry.h"
#include "registry/repository.h"
#include "util/progress.h"

namespace regdisk::cli {
namespace {

struct CopyArgs {
  std::string src, dst;
  bool json = false;
  resolve::RegistryFlags reg;
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

int RunCopy(const Globals& g, const CopyArgs& a) {
  auto src = resolve::OpenImage(g.store, a.reg, a.src, false);
  if (!src.ok()) return Fail(src.status());
  auto dst = resolve::OpenImage(g.store, a.reg, a.dst, true);
  if (!dst.ok()) return Fail(dst.status());
  BlobProgress progress;
  oci::CopyOptions options;
  options.on_blob = [&](const oci::Descriptor& d) { progress.Start(d); };
  options.on_bytes = [&](const oci::Descriptor& d, uint64_t n) { progress.Add(d, n); };
  options.parallel = 3;
  options.blob_retries = 1;  // an upload the registry lost midway is sent once more
  using T = oci::ImageLocation::Transport;
  const auto &from = src->location, &to = dst->location;
  std::string dst_tag = to.transport == T::kDocker && to.ref.digest ? "" : to.tag;
  if (from.transport == T::kDocker && to.transport == T::kDocker && from.ref.registry == to.ref.registry &&
      from.ref.repository != to.ref.repository) {
    // Same registry: blobs are mounted from the source repository, not sent.
    auto* repo = static_cast<registry::Repository*>(dst->store.get());
    options.try_mount = [repo, &from](const oci::Descriptor& d) {
      return repo->MountBlob(d.digest, from.ref.repository).ok();
    };
  }
  auto root = oci::CopyImage(*src->store, from.tag, *dst->store, dst_tag, options);
  if (!root.ok()) return Fail(root.status());
  if (a.json) {
    nlohmann::json j = {{"source", from.str()},       {"destination", to.str()},
                        {"digest", root->digest.str()}, {"mediaType", root->media_type},
                        {"blobsSent", progress.blobs()}, {"bytesSent", progress.bytes()}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s\n", root->digest.str().c_str());
  }
  return 0;
}

int RunPush(const Globals& g, CopyArgs a) {
  if (a.dst.empty()) {
    auto loc = oci::ImageLocation::Parse(a.src);
    if (!loc.ok()) return Fail(loc.status());
    if (loc->transport != oci::ImageLocation::Transport::kLocal) {
      return Fail(InvalidArgument("push " + a.src + ": name a destination (docker://REGISTRY/NAME[:TAG])"));
    }
    a.dst = "docker://" + loc->ref.str();
  } else if (!a.dst.starts_with("docker://")) {
    return Fail(InvalidArgument("push destination \"" + a.dst + "\" must be docker://REGISTRY/NAME[:TAG]"));
  }
  return RunCopy(g, a);
}

int RunPull(const Globals& g, CopyArgs a) {
  if (!a.src.starts_with("docker://")) {
    return Fail(InvalidArgument("pull source \"" + a.src + "\" must be docker://REGISTRY/NAME[:TAG]"));
  }
  if (a.dst.empty()) a.dst = a.src.substr(9);
  return RunCopy(g, a);
}

struct LoginArgs {
  std::string host, user, password;
  bool password_stdin = false;
  resolve::RegistryFlags reg;
};

int RunLogin(const LoginArgs& a) {
  std::string password = a.password;
  if (a.password_stdin) {
    if (!std::getline(std::cin, password)) return Fail(InvalidArgument("login: no password on stdin"));
    if (!password.empty() && password.back() == '\r') password.pop_back();
  }
  if (a.user.empty() || password.empty()) {
    return Fail(InvalidArgument("login " + a.host + ": needs --username and --password-stdin (or --password)"));
  }
  registry::Options o = a.reg.Options();
  o.credentials.clear();  // Login takes the user and password given here
  Status s = registry::Login(a.host, a.user, password, o);
  if (!s.ok()) return Fail(s);
  std::printf("Login Succeeded (%s, saved in %s)\n", a.host.c_str(), registry::AuthFileForWriting().c_str());
  return 0;
}

}  // namespace

void RegisterRegistry(CLI::App& app, Globals& g, int& exit_code) {
  auto push_args = std::make_shared<CopyArgs>();
  auto* push = app.add_subcommand("push", "Push an image from the local store to a registry")
                   ->footer("Examples:\n"
                            "  regdisk push localhost:5000/vmdisks/fedora:38\n"
                            "  regdisk push vmdisks/fedora:38 docker://quay.io/me/fedora:38 --creds me:secret");
  push->add_option("image", push_args->src, "NAME[:TAG] in the local store, or oci:PATH[:TAG]")->required();
  push->add_option("destination", push_args->dst, "docker://REGISTRY/NAME[:TAG] (default: the image's own name)");
  push->add_flag("--json", push_args->json, "print the result as JSON");
  AddRegistryFlags(push, push_args->reg);
  push->callback([&g, &exit_code, push_args] { exit_code = RunPush(g, *push_args); });

  auto pull_args = std::make_shared<CopyArgs>();
  auto* pull = app.add_subcommand("pull", "Pull an image from a registry into the local store")
                   ->footer("Example: regdisk pull docker://localhost:5000/vmdisks/fedora:38");
  pull->add_option("image", pull_args->src, "docker://REGISTRY/NAME[:TAG|@DIGEST]")->required();
  pull->add_option("name", pull_args->dst, "local name (default: the reference pulled)");
  pull->add_flag("--json", pull_args->json, "print the result as JSON");
  AddRegistryFlags(pull, pull_args->reg);
  pull->callback([&g, &exit_code, pull_args] { exit_code = RunPull(g, *pull_args); });

  auto copy_args = std::make_shared<CopyArgs>();
  auto* copy = app.add_subcommand("copy", "Copy an image between registries, OCI layouts and the local store")
                   ->footer("Example: regdisk copy oci:out:v1 docker://localhost:5000/vmdisks/x:v1\n"
                            "Blobs the destination has are skipped; within one registry they are mounted.");
  copy->add_option("source", copy_args->src, "NAME[:TAG], oci:PATH[:TAG] or docker://REF")->required();
  copy->add_option("destination", copy_args->dst, "NAME[:TAG], oci:PATH[:TAG] or docker://REF")->required();
  copy->add_flag("--json", copy_args->json, "print the result as JSON");
  AddRegistryFlags(copy, copy_args->reg);
  copy->callback([&g, &exit_code, copy_args] { exit_code = RunCopy(g, *copy_args); });

  auto tag_args = std::make_shared<CopyArgs>();
  auto* tag = app.add_subcommand("tag", "Give an image another name (in any store; blobs are shared)")
                  ->footer("Example: regdisk tag vmdisks/fedora:38 vmdisks/fedora:latest");
  tag->add_option("image", tag_args->src, "the image")->required();
  tag->add_option("name", tag_args->dst, "the new name")->required();
  AddRegistryFlags(tag, tag_args->reg);
  tag->callback([&g, &exit_code, tag_args] {
    exit_code = RunCopy(g, *tag_args);
  });

  auto login_args = std::make_shared<LoginArgs>();
  auto* login = app.add_subcommand("login", "Check credentials with a registry and save them in the auth file")
                    ->footer("Example: echo \"$PASS\" | regdisk login -u me --password-stdin localhost:5000\n"
                             "Saved in $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,\n"
                             "else ~/.docker/config.json (the files podman and docker use).");
  login->add_option("registry", login_args->host, "HOST[:PORT]")->required();
  login->add_option("-u,--username", login_args->user, "user name");
  login->add_option("-p,--password", login_args->password, "password (visible to other users: prefer --password-stdin)");
  login->add_flag("--password-stdin", login_args->password_stdin, "read the password from stdin");
  AddRegistryFlags(login, login_args->reg);
  login->callback([&exit_code, login_args] { exit_code = RunLogin(*login_args); });

  auto logout_host = std::make_shared<std::string>();
  auto* logout = app.add_subcommand("logout", "Remove a registry's saved credentials");
  logout->add_option("registry", *logout_host, "HOST[:PORT]")->required();
  logout->callback([&exit_code, logout_host] {
    Status s = registry::Logout(*logout_host);
    exit_code = s.ok() ? 0 : Fail(s);
    if (s.ok()) std::printf("Removed login credentials for %s\n", logout_host->c_str());
  });
}

}  // namespace regdisk::cli
