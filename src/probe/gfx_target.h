// GFX ISA versions: decoding KFD's gfx_target_version, parsing HSA_OVERRIDE_GFX_VERSION and gfx names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace probe {

// An AMDGPU ISA version as libhsakmt stores it: gfx1100 is {11, 0, 0}, gfx90a is {9, 0, 10}.
struct GfxVersion {
    unsigned major = 0;
    unsigned minor = 0;
    unsigned stepping = 0;

    friend bool operator==(const GfxVersion&, const GfxVersion&) = default;
};

// KFD's decimal MMmmss value (110000, 90010). Zero and parts that do not fit one hex digit are errors:
// such a value names no ISA that LLVM can target.
common::Result<GfxVersion> decode_kfd_gfx_version(std::uint64_t value);

// "gfx" + decimal major + hex minor + hex stepping: {9, 0, 10} -> "gfx90a".
std::string gfx_name(GfxVersion version);

// "gfx1100", "gfx90a", "gfx942" -> version. The major is all leading digits but the last two
// characters, as every real target name has a two-character minor+stepping tail.
common::Result<GfxVersion> parse_gfx_name(std::string_view name);

// HSA_OVERRIDE_GFX_VERSION syntax as libhsakmt accepts it: strict "M.m.s", decimal, major <= 63,
// minor and stepping <= 255. Anything else makes ROCm's GPU enumeration fail outright.
common::Result<GfxVersion> parse_override(std::string_view text);

// The override string for a version: {10, 3, 0} -> "10.3.0".
std::string override_string(GfxVersion version);

}  // namespace probe
