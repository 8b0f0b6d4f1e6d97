// Runs a program to completion and captures what it printed, for CLI tests.
#pragma once

#include <string>
#include <vector>

namespace test_support {

struct ProcessResult {
    int exit_code = -1;  // 128 + signal when killed by a signal
    std::string out;
    std::string err;
};

// `env` entries ("KEY=VALUE") replace the whole environment when `replace_env` is set, else are added.
ProcessResult run_process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                          bool replace_env = false);

}  // namespace test_support
