// Runs a program to completion without a shell: argv vector, optional working folder, extra
// environment entries, stdout and stderr captured, a time limit. The child gets /dev/null as stdin
// and its own process group, so a timeout ends it and anything it started (fakeroot's faked).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace common {

struct SubprocessOptions {
    std::filesystem::path cwd;             // empty: the caller's working folder
    std::vector<std::string> extra_env;    // "KEY=VALUE"; replaces KEY from the caller's environment
    std::chrono::milliseconds timeout{0};  // 0: no limit
};

struct SubprocessResult {
    int exit_code = -1;      // 128 + signal when killed by a signal
    bool timed_out = false;  // killed (SIGKILL to its process group) after SubprocessOptions::timeout
    std::string out;
    std::string err;

    bool ok() const { return exit_code == 0 && !timed_out; }
};

// Resolves `program` as execvp would: a name with '/' must be an executable file, a bare name is
// looked up in `path_list` (":"-separated, as $PATH). The error names the program and what was searched.
Result<std::filesystem::path> find_program(std::string_view program, std::string_view path_list);

// argv[0] is resolved with find_program against the caller's $PATH. An error means the child never
// ran (program missing, not executable, exec failed, no pipes); a child that ran and failed is a
// value with its exit code.
Result<SubprocessResult> run_subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options = {});

// "pacman -U --root /x" for messages; arguments with spaces or quotes are single-quoted.
std::string describe_command(const std::vector<std::string>& argv);

}  // namespace common
