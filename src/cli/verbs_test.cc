#include "cli/verbs.h"

#include <set>

#include <gtest/gtest.h>

namespace regdisk::cli {
namespace {

// Every verb's --help teaches: its first example runs the verb.
TEST(Verbs, EveryVerbHasAnExample) {
  std::set<std::string> names;
  for (const Verb& v : AllVerbs()) {
    EXPECT_TRUE(names.insert(v.name).second) << v.name << " twice";
    ASSERT_FALSE(v.examples.empty()) << v.name;
    EXPECT_NE(v.examples[0].find("regdisk " + v.name), std::string::npos) << v.name << ": " << v.examples[0];
    for (const auto& e : v.examples) EXPECT_NE(e.find("regdisk "), std::string::npos) << v.name << ": " << e;
    EXPECT_FALSE(v.summary.empty()) << v.name;
  }
  EXPECT_TRUE(names.count("cache gc") && names.count("render pod") && names.count("build")) << names.size();
}

// The table is what the command line dispatches: the verb named (also one
// under a group) is the action chosen, and its help shows its examples.
TEST(Verbs, CommandLineChoosesTheVerbsAction) {
  for (const Verb& v : AllVerbs()) {
    CLI::App app{"test", "regdisk"};
    Globals g;
    std::vector<Verb> one = {v};
    Action picked;
    // The verb's own action is kept (it owns the parsed arguments) but not run.
    one[0].setup = [&](CLI::App* cmd, const Globals& globals) -> Action {
      Action real = v.setup(cmd, globals);
      return [real] {
        (void)real;
        return NotFound("the action of this verb");
      };
    };
    AddVerbs(app, one, g, &picked);
    CLI::App* cmd = &app;
    std::string rest = v.name;
    for (size_t space; (space = rest.find(' ')) != std::string::npos; rest = rest.substr(space + 1)) {
      cmd = cmd->get_subcommand(rest.substr(0, space));
    }
    cmd = cmd->get_subcommand(rest);
    EXPECT_NE(cmd->get_footer().find(v.examples[0]), std::string::npos) << v.name;
    // Parse with every required option and positional given.
    std::vector<std::string> args = {"regdisk"};
    for (size_t p = 0, space; p != std::string::npos; p = space == std::string::npos ? space : space + 1) {
      space = v.name.find(' ', p);
      args.push_back(v.name.substr(p, space == std::string::npos ? space : space - p));
    }
    for (const CLI::Option* o : cmd->get_options([](const CLI::Option* o) { return o->get_required(); })) {
      if (!o->get_lnames().empty()) args.push_back("--" + o->get_lnames()[0]);
      args.push_back("x");
    }
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    ASSERT_NO_THROW(app.parse(static_cast<int>(argv.size()), argv.data())) << v.name;
    ASSERT_TRUE(picked) << v.name;
    EXPECT_EQ(picked().code(), Code::kNotFound) << v.name;
  }
}

}  // namespace
}  // namespace regdisk::cli
