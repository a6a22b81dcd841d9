// Test helpers for the vm tests: test data and golden files under
// src/vm/testdata. REGDISK_UPDATE_GOLDEN=1 rewrites goldens instead of
// comparing (review the diff before committing).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::vm {

inline std::string TestDataPath(const std::string& name) {
  return std::string(REGDISK_SOURCE_DIR) + "/src/vm/testdata/" + name;
}

inline std::string ReadTestData(const std::string& name) {
  auto text = ReadFile(TestDataPath(name));
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

inline void ExpectGolden(const std::string& name, const std::string& actual) {
  if (const char* u = std::getenv("REGDISK_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    ASSERT_TRUE(WriteFileAtomic(TestDataPath(name), actual).ok());
    return;
  }
  EXPECT_EQ(actual, ReadTestData(name)) << "golden " << name << " differs";
}

// A kubevirt.io/v1 VirtualMachine named "vm" with the given spec lines
// (2-space indented) before its one-disk template.
inline std::string VmWith(const std::string& lines) {
  return "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: vm}\nspec:\n" + lines +
         "  template:\n    spec: {domain: {devices: {disks: [{name: root}]}}, volumes: [{name: root, "
         "containerDisk: {image: img}}]}\n";
}

// Runs tests/tools/validate_k8s.mjs (npm kubernetes-models) on a file whose
// documents must be `kinds`; NotFound when kubernetes-models is not
// installed.
inline StatusOr<ProcessResult> ValidateManifests(const std::string& file, const std::vector<std::string>& kinds) {
  std::string tools = std::string(REGDISK_SOURCE_DIR) + "/tests/tools";
  if (!PathExists(tools + "/node_modules")) return NotFound("no node_modules");
  std::vector<std::string> argv = {"node", tools + "/validate_k8s.mjs", file};
  argv.insert(argv.end(), kinds.begin(), kinds.end());
  return RunProcess(argv);
}

// `auto result = ValidateManifests(file, {kinds...})`, or skips the test.
#define VALIDATE_OR_SKIP(result, file, ...)                                      \
  auto result = ValidateManifests(file, {__VA_ARGS__});                          \
  if (!result.ok()) GTEST_SKIP() << "kubernetes-models is not installed: run "   \
                                    "`npm ci --prefix tests/tools` (node 20)"

}  // namespace regdisk::vm
