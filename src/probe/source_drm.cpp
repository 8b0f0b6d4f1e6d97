#include "probe/source_drm.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "probe/properties.h"

namespace probe {

namespace {

constexpr std::uint16_t amd_vendor_id = 0x1002;

std::optional<std::uint64_t> read_number(const SysfsTree& tree, const std::filesystem::path& file,
                                         std::vector<std::string>& notes) {
    const auto read = tree.read(file);
    if (read.status == ReadStatus::absent) return std::nullopt;
    if (read.status != ReadStatus::ok) {
        notes.push_back(tree.display(file) + ": " + read.reason + "; value ignored");
        return std::nullopt;
    }
    auto value = parse_attribute(read.text, tree.display(file));
    if (!value) {
        notes.push_back(value.error().message + "; value ignored");
        return std::nullopt;
    }
    return *value;
}

std::optional<PciAddress> read_slot(const SysfsTree& tree, const std::filesystem::path& device_dir) {
    // uevent survives copying a capture; the symlink's target name is the fallback on a live system.
    const auto uevent = tree.read(device_dir / "uevent");
    if (uevent.status == ReadStatus::ok) {
        const std::string key = "PCI_SLOT_NAME=";
        const auto pos = uevent.text.find(key);
        if (pos != std::string::npos) {
            const auto start = pos + key.size();
            const auto end = uevent.text.find('\n', start);
            return parse_pci_address(std::string_view(uevent.text).substr(start, end - start));
        }
    }
    return parse_pci_address(tree.link_target_name(device_dir));
}

}  // namespace

std::optional<PciAddress> parse_pci_address(std::string_view text) {
    unsigned domain = 0, bus = 0, device = 0, function = 0;
    char tail = 0;
    const std::string s(text);
    if (std::sscanf(s.c_str(), "%x:%x:%x.%x%c", &domain, &bus, &device, &function, &tail) != 4) return std::nullopt;
    if (bus > 0xff || device > 0x1f || function > 7) return std::nullopt;
    return PciAddress{domain, bus, device, function};
}

std::optional<DrmDevice> read_drm_device(const SysfsTree& tree, int render_minor, std::vector<std::string>& notes) {
    const std::filesystem::path dir = "/sys/class/drm/renderD" + std::to_string(render_minor) + "/device";
    if (!tree.exists(dir)) return std::nullopt;
    DrmDevice dev;
    dev.render_minor = render_minor;
    dev.vendor_id = static_cast<std::uint16_t>(read_number(tree, dir / "vendor", notes).value_or(0));
    dev.device_id = static_cast<std::uint16_t>(read_number(tree, dir / "device", notes).value_or(0));
    if (const auto rev = read_number(tree, dir / "revision", notes); rev && *rev <= 0xff)
        dev.revision = static_cast<std::uint8_t>(*rev);
    dev.address = read_slot(tree, dir);
    dev.driver = tree.link_target_name(dir / "driver");
    // DRM prints unique_id as bare hex without the 0x prefix.
    if (const auto read = tree.read(dir / "unique_id"); read.status == ReadStatus::ok) {
        if (auto uid = parse_attribute("0x" + read.text, tree.display(dir / "unique_id")); uid && *uid != 0)
            dev.unique_id = *uid;
    }
    dev.vram_total = read_number(tree, dir / "mem_info_vram_total", notes);
    dev.vram_used = read_number(tree, dir / "mem_info_vram_used", notes);
    dev.gtt_total = read_number(tree, dir / "mem_info_gtt_total", notes);
    dev.has_board_files = tree.exists(dir / "mem_info_vram_vendor") || tree.exists(dir / "board_info");
    return dev;
}

std::vector<DrmDevice> scan_drm(const SysfsTree& tree, std::vector<std::string>& notes) {
    std::vector<int> minors;
    for (const auto& name : tree.list("/sys/class/drm")) {
        const std::string prefix = "renderD";
        if (name.rfind(prefix, 0) != 0) continue;
        int minor = 0;
        const auto [end, ec] = std::from_chars(name.data() + prefix.size(), name.data() + name.size(), minor);
        if (ec == std::errc() && end == name.data() + name.size()) minors.push_back(minor);
    }
    std::sort(minors.begin(), minors.end());
    std::vector<DrmDevice> devices;
    for (const int minor : minors) {
        auto dev = read_drm_device(tree, minor, notes);
        if (dev && dev->vendor_id == amd_vendor_id) devices.push_back(std::move(*dev));
    }
    return devices;
}

}  // namespace probe
