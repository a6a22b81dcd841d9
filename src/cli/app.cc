#include "cli/app.h"

#include <exception>

#include "cli/exit.h"
#include "util/progress.h"

namespace regdisk::cli {
namespace {

constexpr const char* kVersion = "0.1.0";

// Runs the chosen verb; an exception that escaped a library is a bug, and
// still ends at the exit point as one line.
Status RunVerb(const Action& action) {
  try {
    return action();
  } catch (const std::exception& e) {
    return Internal(std::string("uncaught exception: ") + e.what());
  }
}

}  // namespace

int RunProgram(const Program& program, std::vector<Verb> verbs, int argc, char** argv) {
  const std::string table_name = "regdisk ";
  for (Verb& v : verbs) {
    for (std::string& e : v.examples) {
      if (e.starts_with(table_name)) e.replace(0, table_name.size(), program.name + " ");
    }
  }
  CLI::App app{program.about, program.name};
  app.require_subcommand(1);
  app.set_version_flag("--version", program.name + " " + kVersion);
  Globals g;
  if (program.store) {
    app.add_option("--store", g.store,
                   "local image store (default $REGDISK_STORE or ~/.local/share/regdisk/store)");
  }
  app.add_flag("-q,--quiet", g.quiet, "no progress output");
  Action chosen;
  AddVerbs(app, verbs, g, &chosen);
  // Set after the verbs, which would otherwise inherit it.
  app.footer("Errors are one line on stderr, \"regdisk: <what failed>\".\n" + ExitCodeHelp());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here too, with 0.
    return app.exit(e) == 0 ? 0 : kUsageExit;
  }
  if (g.quiet) Progress::SetEnabled(false);
  return Exit(RunVerb(chosen));
}

}  // namespace regdisk::cli
