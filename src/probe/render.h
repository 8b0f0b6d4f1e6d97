// The four output forms of rocm-probe. Each is a pure function of the report.
#pragma once

#include <string>

#include "probe/gpu_info.h"

namespace probe {

// Human table, then what the build and service need, then notes. `verbose` adds sources and bases.
std::string render_table(const ProbeReport& report, bool verbose);

// Stable schema, documented in docs/rocm-probe-json.md; bump schema_version on any breaking change.
std::string render_json(const ProbeReport& report);
inline constexpr int json_schema_version = 1;

// Lines for /etc/default/ollama.
std::string render_env(const ProbeReport& report);

// The ';'-separated CMake target list, one line.
std::string render_targets(const ProbeReport& report);

// "24.0 GiB", "512 MiB".
std::string format_bytes(std::uint64_t bytes);

}  // namespace probe
