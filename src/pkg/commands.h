// The subcommands of ollama-pkg. Each parses its own arguments and returns an exit code; main only
// dispatches and catches what escapes.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace pkg {

struct CommandIo {
    std::ostream& out;
    std::ostream& err;
};

// Exit codes shared by every subcommand (update follows pkgctl's and defines its own 2 and 3).
enum ExitCode : int { exit_ok = 0, exit_failed = 1, exit_usage = 2 };

int run_generate(const std::vector<std::string>& args, CommandIo io);
int run_inspect(const std::vector<std::string>& args, CommandIo io);
int run_verify(const std::vector<std::string>& args, CommandIo io);
int run_update(const std::vector<std::string>& args, CommandIo io);
int run_build(const std::vector<std::string>& args, CommandIo io);

}  // namespace pkg
