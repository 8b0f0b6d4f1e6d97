// Source: KFD topology (/sys/class/kfd/kfd/topology/nodes/<N>/properties and mem_banks).
// Reads: simd_count (GPU iff non-zero), gfx_target_version, vendor_id, device_id, location_id, domain,
// drm_render_minor, unique_id, simd_per_cu, local_mem_size; mem_banks heap_type/size_in_bytes/used_memory.
// Ignores: the node `name` file (empty or "ip discovery", never the chip), ROCR_VISIBLE_DEVICES.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probe/gpu_info.h"
#include "probe/sysfs.h"

namespace probe {

struct KfdGpu {
    int node = 0;
    std::uint64_t gfx_target_version = 0;  // 0 when the kernel predates the field
    std::uint16_t vendor_id = 0;
    std::uint16_t device_id = 0;
    PciAddress address;
    std::optional<int> render_minor;
    std::optional<std::uint64_t> unique_id;
    std::optional<unsigned> compute_units;
    std::optional<unsigned> wave_size;        // 32 (RDNA) or 64 (GCN, CDNA)
    std::optional<std::uint64_t> vram_total;  // sum of FB_PUBLIC and FB_PRIVATE banks
    std::optional<std::uint64_t> vram_used;   // sum of mem_banks used_memory, newer kernels only
};

struct KfdScan {
    bool present = false;      // the topology directory exists
    std::string topology_dir;  // as displayed to the user
    std::vector<KfdGpu> gpus;  // in numeric node order
    int cpu_nodes = 0;
    std::vector<std::string> notes;
    bool input_error = false;  // a node was present but malformed or unreadable for a reason other than EPERM
};

KfdScan scan_kfd(const SysfsTree& tree);

}  // namespace probe
