#include "probe/pci_ids.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace probe {

namespace {

struct IdRow {
    std::uint16_t first;
    std::uint16_t last;
    GfxVersion gfx;
    std::string_view chip;
    bool apu;
};

// From shared/reference/gpu-detection.md §9 (rocm_agent_enumerator ISA_TO_ID, libhsakmt
// gfxip_lookup_table, libdrm amdgpu.ids and kernel tables). Revision never changes the ISA.
constexpr std::array id_rows = {
    IdRow{0x6860, 0x686F, {9, 0, 0}, "Vega10 (RX Vega 56/64, MI25)", false},
    IdRow{0x687F, 0x687F, {9, 0, 0}, "Vega10 (RX Vega 56/64, MI25)", false},
    IdRow{0x66A0, 0x66A4, {9, 0, 6}, "Vega20 (MI50/60, Radeon VII)", false},
    IdRow{0x66A7, 0x66A7, {9, 0, 6}, "Vega20 (MI50/60, Radeon VII)", false},
    IdRow{0x66AF, 0x66AF, {9, 0, 6}, "Vega20 (MI50/60, Radeon VII)", false},
    IdRow{0x7388, 0x7388, {9, 0, 8}, "Arcturus (MI100)", false},
    IdRow{0x738C, 0x738C, {9, 0, 8}, "Arcturus (MI100)", false},
    IdRow{0x738E, 0x738E, {9, 0, 8}, "Arcturus (MI100)", false},
    IdRow{0x7390, 0x7390, {9, 0, 8}, "Arcturus (MI100)", false},
    IdRow{0x7408, 0x7408, {9, 0, 10}, "Aldebaran (MI210/250)", false},
    IdRow{0x740C, 0x740C, {9, 0, 10}, "Aldebaran (MI210/250)", false},
    IdRow{0x740F, 0x7410, {9, 0, 10}, "Aldebaran (MI210/250)", false},
    IdRow{0x15E7, 0x15E7, {9, 0, 12}, "Renoir/Cezanne/Lucienne", true},
    IdRow{0x1636, 0x1636, {9, 0, 12}, "Renoir/Cezanne/Lucienne", true},
    IdRow{0x1638, 0x1638, {9, 0, 12}, "Renoir/Cezanne/Lucienne", true},
    IdRow{0x164C, 0x164C, {9, 0, 12}, "Renoir/Cezanne/Lucienne", true},
    IdRow{0x74A0, 0x74A2, {9, 4, 2}, "MI300A/X, MI308X, MI325X", false},
    IdRow{0x74A5, 0x74A5, {9, 4, 2}, "MI300A/X, MI308X, MI325X", false},
    IdRow{0x74A9, 0x74A9, {9, 4, 2}, "MI300A/X, MI308X, MI325X", false},
    IdRow{0x74B5, 0x74B6, {9, 4, 2}, "MI300A/X, MI308X, MI325X", false},
    IdRow{0x74BD, 0x74BD, {9, 4, 2}, "MI300A/X, MI308X, MI325X", false},
    IdRow{0x75A0, 0x75A0, {9, 5, 0}, "MI350X/355X", false},
    IdRow{0x75A3, 0x75A3, {9, 5, 0}, "MI350X/355X", false},
    IdRow{0x7310, 0x7310, {10, 1, 0}, "Navi10", false},
    IdRow{0x7312, 0x7312, {10, 1, 0}, "Navi10", false},
    IdRow{0x7318, 0x731B, {10, 1, 0}, "Navi10", false},
    IdRow{0x731E, 0x731F, {10, 1, 0}, "Navi10", false},
    IdRow{0x7360, 0x7360, {10, 1, 1}, "Navi12", false},
    IdRow{0x7362, 0x7362, {10, 1, 1}, "Navi12", false},
    IdRow{0x7340, 0x7341, {10, 1, 2}, "Navi14", false},
    IdRow{0x7347, 0x7347, {10, 1, 2}, "Navi14", false},
    IdRow{0x734F, 0x734F, {10, 1, 2}, "Navi14", false},
    IdRow{0x73A0, 0x73A3, {10, 3, 0}, "Navi21 (RX 6800/6900/6950)", false},
    IdRow{0x73A5, 0x73A5, {10, 3, 0}, "Navi21 (RX 6800/6900/6950)", false},
    IdRow{0x73A8, 0x73A9, {10, 3, 0}, "Navi21 (RX 6800/6900/6950)", false},
    IdRow{0x73AB, 0x73AF, {10, 3, 0}, "Navi21 (RX 6800/6900/6950)", false},
    IdRow{0x73BF, 0x73BF, {10, 3, 0}, "Navi21 (RX 6800/6900/6950)", false},
    IdRow{0x73C0, 0x73C1, {10, 3, 1}, "Navi22 (RX 6700/6750 XT)", false},
    IdRow{0x73C3, 0x73C3, {10, 3, 1}, "Navi22 (RX 6700/6750 XT)", false},
    IdRow{0x73DA, 0x73DF, {10, 3, 1}, "Navi22 (RX 6700/6750 XT)", false},
    IdRow{0x73E0, 0x73E3, {10, 3, 2}, "Navi23 (RX 6600/6650 XT)", false},
    IdRow{0x73E8, 0x73ED, {10, 3, 2}, "Navi23 (RX 6600/6650 XT)", false},
    IdRow{0x73EF, 0x73EF, {10, 3, 2}, "Navi23 (RX 6600/6650 XT)", false},
    IdRow{0x73FF, 0x73FF, {10, 3, 2}, "Navi23 (RX 6600/6650 XT)", false},
    IdRow{0x163F, 0x163F, {10, 3, 3}, "Van Gogh (Steam Deck)", true},
    IdRow{0x7420, 0x7423, {10, 3, 4}, "Navi24 (RX 6400/6500 XT)", false},
    IdRow{0x743F, 0x743F, {10, 3, 4}, "Navi24 (RX 6400/6500 XT)", false},
    IdRow{0x164D, 0x164D, {10, 3, 5}, "Rembrandt (680M/660M)", true},
    IdRow{0x1681, 0x1681, {10, 3, 5}, "Rembrandt (680M/660M)", true},
    IdRow{0x164E, 0x164E, {10, 3, 6}, "Raphael/Mendocino (610M)", true},
    IdRow{0x1506, 0x1506, {10, 3, 6}, "Raphael/Mendocino (610M)", true},
    IdRow{0x7448, 0x744A, {11, 0, 0}, "Navi31 (RX 7900 XTX/XT/GRE, Pro W7800/W7900)", false},
    IdRow{0x744C, 0x744C, {11, 0, 0}, "Navi31 (RX 7900 XTX/XT/GRE, Pro W7800/W7900)", false},
    IdRow{0x745E, 0x745E, {11, 0, 0}, "Navi31 (RX 7900 XTX/XT/GRE, Pro W7800/W7900)", false},
    IdRow{0x7470, 0x7470, {11, 0, 1}, "Navi32 (RX 7700/7800 XT, Pro W7700)", false},
    IdRow{0x747E, 0x747E, {11, 0, 1}, "Navi32 (RX 7700/7800 XT, Pro W7700)", false},
    IdRow{0x7480, 0x7480, {11, 0, 2}, "Navi33 (RX 7600/7600 XT, Pro W7400-W7600)", false},
    IdRow{0x7483, 0x7483, {11, 0, 2}, "Navi33 (RX 7600/7600 XT, Pro W7400-W7600)", false},
    IdRow{0x7489, 0x7489, {11, 0, 2}, "Navi33 (RX 7600/7600 XT, Pro W7400-W7600)", false},
    IdRow{0x7499, 0x7499, {11, 0, 2}, "Navi33 (RX 7600/7600 XT, Pro W7400-W7600)", false},
    IdRow{0x15BF, 0x15BF, {11, 0, 3}, "Phoenix/Hawk Point (780M/760M/740M)", true},
    IdRow{0x15C8, 0x15C8, {11, 0, 3}, "Phoenix/Hawk Point (780M/760M/740M)", true},
    IdRow{0x1900, 0x1901, {11, 0, 3}, "Phoenix/Hawk Point (780M/760M/740M)", true},
    IdRow{0x150E, 0x150E, {11, 5, 0}, "Strix Point (890M/880M)", true},
    IdRow{0x1586, 0x1586, {11, 5, 1}, "Strix Halo (8060S/8050S/8040S)", true},
    IdRow{0x1114, 0x1114, {11, 5, 2}, "Krackan (860M/840M)", true},
    IdRow{0x7590, 0x7590, {12, 0, 0}, "Navi44 (RX 9060/9060 XT)", false},
    IdRow{0x7550, 0x7551, {12, 0, 1}, "Navi48 (RX 9070/9070 XT/9070 GRE, AI PRO R9700)", false},
};

// Targets that only exist inside APUs (gpu-detection.md §9). MI300A (gfx942) is an APU too, but
// shares its target with the discrete MI300X, so the target alone cannot say.
constexpr std::array apu_targets = {
    GfxVersion{9, 0, 2},  GfxVersion{9, 0, 12}, GfxVersion{10, 3, 3}, GfxVersion{10, 3, 5}, GfxVersion{10, 3, 6},
    GfxVersion{11, 0, 3}, GfxVersion{11, 5, 0}, GfxVersion{11, 5, 1}, GfxVersion{11, 5, 2}, GfxVersion{11, 5, 3},
};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

template <class T>
bool parse_hex(std::string_view s, T& out) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, 16);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value > T(~T(0))) return false;
    out = static_cast<T>(value);
    return true;
}

}  // namespace

std::optional<PciChip> lookup_pci_chip(std::uint16_t device_id) {
    for (const auto& row : id_rows)
        if (device_id >= row.first && device_id <= row.last) return PciChip{row.gfx, row.chip, row.apu};
    return std::nullopt;
}

bool is_apu_target(GfxVersion gfx) {
    return std::find(apu_targets.begin(), apu_targets.end(), gfx) != apu_targets.end();
}

common::Result<AmdgpuIds> AmdgpuIds::parse(std::string_view text, const std::string& file) {
    AmdgpuIds ids;
    std::size_t line_no = 0;
    bool seen_version = false;
    while (!text.empty()) {
        ++line_no;
        const auto nl = text.find('\n');
        const std::string_view line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.empty() || line.front() == '#') continue;
        const auto c1 = line.find(',');
        const auto c2 = c1 == std::string_view::npos ? c1 : line.find(',', c1 + 1);
        if (c2 == std::string_view::npos) {
            // The single version line ("1.0.0") precedes the entries.
            if (!seen_version && ids.names_.empty()) {
                seen_version = true;
                continue;
            }
            return common::make_error(file + ":" + std::to_string(line_no) + ": expected 'DEVICE,\tREVISION,\tNAME'");
        }
        std::uint16_t device = 0;
        std::uint8_t revision = 0;
        if (!parse_hex(trim(line.substr(0, c1)), device) ||
            !parse_hex(trim(line.substr(c1 + 1, c2 - c1 - 1)), revision))
            return common::make_error(file + ":" + std::to_string(line_no) + ": device or revision is not hex");
        ids.names_.emplace(std::make_pair(device, revision), std::string(trim(line.substr(c2 + 1))));
    }
    return ids;
}

std::optional<std::string> AmdgpuIds::name(std::uint16_t device_id, std::uint8_t revision) const {
    const auto it = names_.find({device_id, revision});
    if (it == names_.end()) return std::nullopt;
    return it->second;
}

std::optional<std::string> AmdgpuIds::unique_name(std::uint16_t device_id) const {
    std::optional<std::string> found;
    for (auto it = names_.lower_bound({device_id, 0}); it != names_.end() && it->first.first == device_id; ++it) {
        if (found && *found != it->second) return std::nullopt;
        found = it->second;
    }
    return found;
}

}  // namespace probe
