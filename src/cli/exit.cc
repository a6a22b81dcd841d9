#include "cli/exit.h"

namespace regdisk::cli {

int ExitCodeFor(Code code) {
  for (const ExitCode& e : kExitCodes) {
    if (e.code == code) return e.exit;
  }
  return 1;
}

std::string ErrorLine(const Status& s) {
  const std::string prefix = "regdisk: ";
  return prefix + OneLine(s.message(), kMaxErrorLineBytes - prefix.size());
}

int Exit(const Status& s, std::FILE* err) {
  if (!s.ok()) std::fprintf(err, "%s\n", ErrorLine(s).c_str());
  return ExitCodeFor(s.code());
}

std::string ExitCodeHelp() {
  std::string out = "Exit codes:\n";
  auto row = [&](int code, const std::string& meaning) {
    out += (code < 10 ? "   " : "  ") + std::to_string(code) + "  " + meaning + "\n";
  };
  for (const ExitCode& e : kExitCodes) {
    row(e.exit, e.meaning);
    if (e.exit == 1) row(kUsageExit, "usage: the command line is wrong");
  }
  return out;
}

}  // namespace regdisk::cli
