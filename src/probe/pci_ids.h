// The last-resort source: PCI device id -> gfx target, for kernels without gfx_target_version and
// machines without KFD; and libdrm's amdgpu.ids (device, revision -> marketing name), read at run time
// from the distribution's file (/usr/share/libdrm/amdgpu.ids), never copied into this tree.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"
#include "probe/gfx_target.h"

namespace probe {

struct PciChip {
    GfxVersion gfx;
    std::string_view chip;  // family and example products, for display when amdgpu.ids has no name
    bool apu;               // integrated in a Ryzen/Steam Deck APU
};

std::optional<PciChip> lookup_pci_chip(std::uint16_t device_id);

// Whether a gfx target is only ever an integrated GPU (used when DRM memory facts are missing).
bool is_apu_target(GfxVersion gfx);

class AmdgpuIds {
  public:
    // Format: comment lines (#), one version line, then "DEVICE,\tREV,\tNAME" with hex ids.
    static common::Result<AmdgpuIds> parse(std::string_view text, const std::string& file);

    std::optional<std::string> name(std::uint16_t device_id, std::uint8_t revision) const;
    // The name when the revision is unknown (no DRM), only if every revision of the device shares it:
    // 0x744C is an RX 7900 XTX or XT depending on the revision, and a guess would mislabel it.
    std::optional<std::string> unique_name(std::uint16_t device_id) const;
    std::size_t size() const { return names_.size(); }

  private:
    std::map<std::pair<std::uint16_t, std::uint8_t>, std::string> names_;
};

}  // namespace probe
