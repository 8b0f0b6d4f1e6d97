#include "probe/source_kfd.h"

#include <algorithm>
#include <charconv>

#include "probe/properties.h"

namespace probe {

namespace {

// The class symlink first (what RAE and Ollama read), then the real path (what libhsakmt reads), so
// a capture of either works.
constexpr const char* topology_dirs[] = {"/sys/class/kfd/kfd/topology", "/sys/devices/virtual/kfd/kfd/topology"};

constexpr std::uint64_t heap_fb_public = 1;
constexpr std::uint64_t heap_fb_private = 2;

std::optional<int> parse_node_name(const std::string& name) {
    int node = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), node);
    if (ec != std::errc() || end != name.data() + name.size() || node < 0) return std::nullopt;
    return node;
}

struct BankTotals {
    std::optional<std::uint64_t> vram_total;
    std::optional<std::uint64_t> vram_used;
};

BankTotals read_mem_banks(const SysfsTree& tree, const std::filesystem::path& node_dir, KfdScan& scan) {
    BankTotals totals;
    std::uint64_t used_sum = 0;
    bool any_used = false;
    for (const auto& bank : tree.list(node_dir / "mem_banks")) {
        const auto bank_dir = node_dir / "mem_banks" / bank;
        const auto read = tree.read(bank_dir / "properties");
        if (read.status != ReadStatus::ok) continue;
        const auto props = parse_properties(read.text, tree.display(bank_dir / "properties"));
        if (!props) {
            scan.notes.push_back(props.error().message + "; memory bank ignored");
            continue;
        }
        const auto heap = props->get("heap_type");
        if (heap != heap_fb_public && heap != heap_fb_private) continue;
        totals.vram_total = totals.vram_total.value_or(0) + props->get_or("size_in_bytes", 0);
        const auto used = tree.read(bank_dir / "used_memory");
        if (used.status == ReadStatus::ok) {
            if (const auto value = parse_attribute(used.text, tree.display(bank_dir / "used_memory"))) {
                used_sum += *value;
                any_used = true;
            }
        }
    }
    if (any_used) totals.vram_used = used_sum;
    return totals;
}

}  // namespace

KfdScan scan_kfd(const SysfsTree& tree) {
    KfdScan scan;
    std::filesystem::path topology;
    for (const char* dir : topology_dirs) {
        if (tree.exists(std::filesystem::path(dir) / "nodes")) {
            topology = dir;
            break;
        }
    }
    if (topology.empty()) {
        scan.topology_dir = tree.display(topology_dirs[0]);
        return scan;
    }
    scan.present = true;
    scan.topology_dir = tree.display(topology);

    std::vector<int> nodes;
    for (const auto& name : tree.list(topology / "nodes")) {
        if (const auto node = parse_node_name(name))
            nodes.push_back(*node);
        else
            scan.notes.push_back(tree.display(topology / "nodes" / name) + ": not a numeric node folder; ignored");
    }
    // Numeric order: HIP numbers devices in this order, and "10" must come after "9".
    std::sort(nodes.begin(), nodes.end());

    for (const int node : nodes) {
        const auto node_dir = topology / "nodes" / std::to_string(node);
        const auto file = node_dir / "properties";
        const auto read = tree.read(file);
        if (read.status == ReadStatus::denied) {
            scan.notes.push_back(tree.display(file) + ": " + read.reason +
                                 " (a container's device cgroup hides this GPU); node " + std::to_string(node) +
                                 " skipped");
            continue;
        }
        if (read.status != ReadStatus::ok) {
            scan.notes.push_back(tree.display(file) + ": " + read.reason + "; node " + std::to_string(node) +
                                 " skipped");
            scan.input_error = true;
            continue;
        }
        const auto props = parse_properties(read.text, tree.display(file));
        if (!props) {
            scan.notes.push_back(props.error().message + "; node " + std::to_string(node) + " skipped");
            scan.input_error = true;
            continue;
        }
        const auto simd_count = props->get("simd_count");
        if (!simd_count) {
            scan.notes.push_back(tree.display(file) +
                                 ": no simd_count line, cannot tell CPU from GPU (truncated?); node " +
                                 std::to_string(node) + " skipped");
            scan.input_error = true;
            continue;
        }
        if (*simd_count == 0) {
            ++scan.cpu_nodes;
            continue;
        }

        KfdGpu gpu;
        gpu.node = node;
        gpu.gfx_target_version = props->get_or("gfx_target_version", 0);
        gpu.vendor_id = static_cast<std::uint16_t>(props->get_or("vendor_id", 0));
        gpu.device_id = static_cast<std::uint16_t>(props->get_or("device_id", 0));
        if (gpu.vendor_id != 0x1002) {
            scan.notes.push_back(tree.display(file) + ": vendor_id " + std::to_string(gpu.vendor_id) +
                                 " is not AMD (4098); node " + std::to_string(node) + " skipped");
            continue;
        }
        // location_id is (bus << 8) | devfn; MI300 partitions OR a partition number into the low or top
        // bits, so keep bus and device only and report function 0, which every GPU is.
        const std::uint64_t location = props->get_or("location_id", 0);
        gpu.address.domain = static_cast<std::uint32_t>(props->get_or("domain", 0));
        gpu.address.bus = static_cast<std::uint32_t>((location >> 8) & 0xff);
        gpu.address.device = static_cast<std::uint32_t>((location >> 3) & 0x1f);
        if (const auto minor = props->get("drm_render_minor"); minor && *minor != 0)
            gpu.render_minor = static_cast<int>(*minor);
        if (const auto uid = props->get("unique_id"); uid && *uid != 0) gpu.unique_id = *uid;
        if (const auto wave = props->get_or("wave_front_size", 0); wave != 0)
            gpu.wave_size = static_cast<unsigned>(wave);
        if (const auto per_cu = props->get_or("simd_per_cu", 0); per_cu != 0)
            gpu.compute_units = static_cast<unsigned>(*simd_count / per_cu);

        const auto banks = read_mem_banks(tree, node_dir, scan);
        gpu.vram_total = banks.vram_total;
        gpu.vram_used = banks.vram_used;
        // Old kernels report VRAM here; modern ones always print 0.
        if (!gpu.vram_total) {
            if (const auto local = props->get_or("local_mem_size", 0); local != 0) gpu.vram_total = local;
        }
        scan.gpus.push_back(gpu);
    }
    return scan;
}

}  // namespace probe
