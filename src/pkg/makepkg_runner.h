// Runs makepkg as a child and turns its own step lines ("==> Starting build()...") into a progress
// display with the time each step took. Every line goes to a log file; the last ones are kept for the
// failure report. Ctrl-C (SIGINT/SIGTERM to us) is passed to makepkg's process group, which cleans up.
#pragma once

#include <deque>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.h"

namespace pkg {

struct StepTiming {
    std::string name;  // makepkg's text after "==> "
    double seconds = 0;
};

struct MakepkgRun {
    int exit_code = -1;
    bool interrupted = false;
    std::vector<StepTiming> steps;
    std::deque<std::string> last_lines;  // up to `tail_lines`
};

struct MakepkgRunOptions {
    std::vector<std::string> argv;  // argv[0] is makepkg (or a stand-in)
    std::filesystem::path cwd;
    std::filesystem::path log;
    std::size_t tail_lines = 25;
    bool echo = false;  // also copy every line to `progress` (--verbose)
};

common::Result<MakepkgRun> run_makepkg_with_progress(const MakepkgRunOptions& options, std::ostream& progress);

}  // namespace pkg
