#include "podman.h"

#include <gtest/gtest.h>

namespace regdisk::testing {

PodmanEnv::PodmanEnv(const std::string& dir) : dir_(dir) {
  for (const char* p : {"podman", "buildah", "runc", "catatonit", "node"}) {
    if (!HaveProgram(p) && !PathExists(std::string("/usr/libexec/podman/") + p)) {
      error_ = std::string(p) + " is not installed (run scripts/setup)";
      return;
    }
  }
  if (!WriteFileAtomic(dir_ + "/containers.conf",
                       "[containers]\n"
                       "default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n"
                       "[engine]\n"
                       "runtime = \"runc\"\n")
           .ok() ||
      !WriteFileAtomic(dir_ + "/storage.conf", "[storage]\ndriver = \"vfs\"\nrunroot = \"" + dir_ +
                                                   "/runroot\"\ngraphroot = \"" + dir_ + "/graph\"\n")
           .ok()) {
    error_ = "writing podman's configuration";
  }
}

ProcessResult PodmanEnv::Run(std::vector<std::string> argv) const {
  argv.insert(argv.begin(), {"env", "CONTAINERS_CONF=" + dir_ + "/containers.conf",
                             "CONTAINERS_STORAGE_CONF=" + dir_ + "/storage.conf"});
  return RunCmd(argv);
}

void PodmanEnv::RemoveAll() const {
  (void)Run({"podman", "pod", "rm", "-af"});
  (void)Run({"podman", "volume", "prune", "-f"});
  (void)Run({"podman", "rmi", "-af"});
}

std::string PodmanEnv::Version() const { return Trim(Run({"podman", "version", "--format", "{{.Client.Version}}"}).out); }

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

nlohmann::json YamlDocuments(const std::string& file) {
  ProcessResult j = RunCmd({"node", "-e",
                            "const {parseAllDocuments} = require(process.argv[1]);"
                            "const docs = parseAllDocuments(require('fs').readFileSync(process.argv[2], 'utf8'));"
                            "console.log(JSON.stringify(docs.map((d) => d.toJS())))",
                            std::string(REGDISK_SOURCE_DIR) + "/tests/tools/node_modules/yaml", file});
  EXPECT_EQ(j.exit_code, 0) << Describe(j);
  return j.exit_code == 0 ? nlohmann::json::parse(j.out) : nlohmann::json::array();
}

}  // namespace regdisk::testing
