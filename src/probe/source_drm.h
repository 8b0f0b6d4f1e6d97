// Source: DRM sysfs (/sys/class/drm/renderD<minor>/device). Reads: vendor, device, revision, uevent
// (PCI_SLOT_NAME), driver link, unique_id, mem_info_vram_total, mem_info_vram_used, mem_info_gtt_total,
// and whether mem_info_vram_vendor or board_info exist (both only on discrete boards).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probe/gpu_info.h"
#include "probe/sysfs.h"

namespace probe {

struct DrmDevice {
    int render_minor = 0;
    std::uint16_t vendor_id = 0;
    std::uint16_t device_id = 0;
    std::optional<std::uint8_t> revision;
    std::optional<PciAddress> address;
    std::string driver;  // empty when the capture has no driver link
    std::optional<std::uint64_t> unique_id;
    std::optional<std::uint64_t> vram_total;
    std::optional<std::uint64_t> vram_used;
    std::optional<std::uint64_t> gtt_total;
    bool has_board_files = false;  // mem_info_vram_vendor or board_info present
};

// The device behind renderD<minor>; nullopt when it does not exist. Malformed attributes are noted
// and left unset, since the KFD facts still stand.
std::optional<DrmDevice> read_drm_device(const SysfsTree& tree, int render_minor, std::vector<std::string>& notes);

// Every renderD* node whose PCI vendor is AMD, by render minor: the GPU list when KFD is missing.
std::vector<DrmDevice> scan_drm(const SysfsTree& tree, std::vector<std::string>& notes);

// "0000:03:00.0" -> address; nullopt if malformed.
std::optional<PciAddress> parse_pci_address(std::string_view text);

}  // namespace probe
