// ollama-pkg update: follow upstream Ollama's release tags, and rebuild after ROCm upgrades.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>

namespace pkg {

// Exit codes as Arch's `pkgctl version check` uses them.
enum UpdateExit : int { update_up_to_date = 0, update_changed = 2, update_failed = 3 };

struct UpdateOptions {
    std::filesystem::path config = "ollama-airllm-rocm.yaml";
    std::filesystem::path templates, patches, output;  // beside the config when empty
    bool dry_run = false;                              // report, write nothing (exit 2 when out of date)
    bool include_rc = false;                           // release candidates count as releases
};

// Newest upstream tag -> commit, its LLAMA_CPP_VERSION and that tag's commit, every patch checked
// with `git apply --check` on a shallow fetch and, for a Go tree, the patched tree compiled with the
// Go on PATH (skipped, and said, without one); with upstream.module_sum set, the new tag's sum from
// the Go module proxy, whose origin must be the same commit. Then config edited (pkgrel 1) and the
// recipe regenerated. Nothing is written unless every step succeeded.
int update_upstream(const UpdateOptions& options, std::ostream& out, std::ostream& err);

struct RocmOptions {
    UpdateOptions update;
    std::filesystem::path package;  // the built .pkg.tar.zst; newest beside the config when empty
    std::filesystem::path root = "/";
    std::filesystem::path dbpath = "/var/lib/pacman";
};

// Compares the ROCm packages the package was built against (its .BUILDINFO) with the installed ones
// (libalpm); when they differ, bumps pkgrel and regenerates so that the next build relinks.
int update_for_rocm(const RocmOptions& options, std::ostream& out, std::ostream& err);

}  // namespace pkg
