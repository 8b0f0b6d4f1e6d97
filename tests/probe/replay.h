// Runs the probe library on a machine tree, with rocm-smi off and the fixture amdgpu.ids.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>

#include "probe/probe.h"

namespace test_probe {

inline std::filesystem::path fixtures() { return OAR_FIXTURES; }
inline std::filesystem::path machine(const std::string& name) { return fixtures() / "probe" / name; }
inline std::filesystem::path capture(const std::string& name) { return fixtures() / "kfd" / name; }

inline probe::ProbeOptions replay_options(const std::filesystem::path& root) {
    probe::ProbeOptions options;
    options.root = root;
    options.use_smi = false;
    options.load_rocblas = false;
    options.amdgpu_ids = (fixtures() / "amdgpu.ids").string();
    return options;
}

inline probe::ProbeReport replay(const std::filesystem::path& root) { return probe::run_probe(replay_options(root)); }

inline bool any_note_contains(const probe::ProbeReport& report, const std::string& text) {
    return std::any_of(report.notes.begin(), report.notes.end(),
                       [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

}  // namespace test_probe
