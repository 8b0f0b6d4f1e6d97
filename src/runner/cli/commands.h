// The subcommands of ollama-airllm. Each parses its own arguments and returns an exit code; main only
// dispatches and catches what escapes.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace runner_cli {

struct CommandIo {
    std::istream& in;
    std::ostream& out;
    std::ostream& err;
};

// 0 done; 1 the work failed (a tokenizer that cannot be found or loaded); 2 usage or bad input.
enum ExitCode : int { exit_ok = 0, exit_failed = 1, exit_usage = 2 };

int run_tokenize(const std::vector<std::string>& args, CommandIo io);
int run_detokenize(const std::vector<std::string>& args, CommandIo io);
int run_info(const std::vector<std::string>& args, CommandIo io);
int run_generate(const std::vector<std::string>& args, CommandIo io);
int run_runner(const std::vector<std::string>& args, CommandIo io);
int run_prepare(const std::vector<std::string>& args, CommandIo io);
int run_verify(const std::vector<std::string>& args, CommandIo io);
int run_selftest(const std::vector<std::string>& args, CommandIo io);

}  // namespace runner_cli
