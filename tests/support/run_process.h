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

// A program left running so that a test can watch its output and signal it.
class RunningProcess {
  public:
    // `env` entries ("KEY=VALUE") are added to this process's environment.
    explicit RunningProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
    RunningProcess(const RunningProcess&) = delete;
    RunningProcess& operator=(const RunningProcess&) = delete;
    ~RunningProcess();  // kills and reaps the child if the test did not wait for it

    // Reads stdout+stderr until `text` appears; false after `seconds` or at end of output.
    bool wait_for_output(const std::string& text, int seconds);
    void send_signal(int signal);
    int pid() const { return pid_; }
    ProcessResult wait();  // rest of the output and the exit code; `out` holds everything read

  private:
    int pid_ = -1;
    int fd_ = -1;
    std::string output_;
};

}  // namespace test_support
