// Installs a built package into a scratch root with the real pacman and checks the result through
// libalpm and pacman itself: the local database, file types and modes, `pacman -Qkk`, an upgrade
// over an edited etc/default/ollama, and removal (models and state under var/lib/ollama survive).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace pkg {

struct VerifyOptions {
    std::filesystem::path package;
    std::optional<std::filesystem::path> keep_root;  // install here and keep it (must be absent or empty)
    std::string pacman = "pacman";                   // $PACMAN: a name looked up in PATH, or a path
    std::string fakeroot = "fakeroot";               // $FAKEROOT
    bool use_fakeroot = false;                       // run pacman under fakeroot (set when not root)
    std::chrono::seconds timeout{300};               // per pacman run
};

enum class StepStatus { ok, failed, skipped };

struct VerifyStep {
    std::string name;  // "install", "local database", "pacman -Qkk", ...
    StepStatus status = StepStatus::ok;
    std::string detail;                 // one line: what was checked or what went wrong
    std::vector<std::string> problems;  // every problem found, each naming the path
};

struct VerifyReport {
    std::string package_name;
    std::string package_version;
    std::filesystem::path root;  // the scratch root (gone unless kept)
    std::vector<VerifyStep> steps;

    bool passed() const;
};

// Each step is handed to `on_step` as soon as it ends. An error means verify could not run at all:
// unreadable package, pacman or fakeroot missing, unsupported libalpm, no scratch root. The scratch
// root is removed before returning unless options.keep_root is set.
common::Result<VerifyReport> verify_package(const VerifyOptions& options,
                                            const std::function<void(const VerifyStep&)>& on_step);

}  // namespace pkg
