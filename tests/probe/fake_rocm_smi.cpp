// Test double for librocm_smi64 (there is no AMD GPU on CI). Devices come from the file named by
// FAKE_ROCM_SMI_DEVICES, one per line: "render_minor bdfid_hex unique_id_hex vram_total vram_used gtt name...".
// rsmi_init prints to stdout and stderr as the real library does when it fails, and fails when
// FAKE_ROCM_SMI_FAIL is set, so rocm-probe's silencing and error paths run against a real dlopen.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <rocm_smi/rocm_smi.h>

namespace {

struct Device {
    uint32_t minor = 0;
    uint64_t bdf = 0;
    uint64_t unique_id = 0;
    uint64_t vram_total = 0;
    uint64_t vram_used = 0;
    uint64_t gtt = 0;
    std::string name;
};

std::vector<Device>& devices() {
    static std::vector<Device> list;
    return list;
}

bool valid(uint32_t dv) { return dv < devices().size(); }

}  // namespace

extern "C" {

rsmi_status_t rsmi_init(uint64_t) {
    std::fprintf(stderr, "FAKE-RSMI-NOISE: Failed to open drm root directory\n");
    std::printf("FAKE-RSMI-NOISE on stdout\n");
    std::fflush(stdout);
    if (std::getenv("FAKE_ROCM_SMI_FAIL")) return RSMI_STATUS_INIT_ERROR;
    devices().clear();
    const char* file = std::getenv("FAKE_ROCM_SMI_DEVICES");
    if (!file) return RSMI_STATUS_SUCCESS;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream s(line);
        Device d;
        s >> d.minor >> std::hex >> d.bdf >> d.unique_id >> std::dec >> d.vram_total >> d.vram_used >> d.gtt;
        std::getline(s >> std::ws, d.name);
        if (s || !d.name.empty()) devices().push_back(d);
    }
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_shut_down(void) { return RSMI_STATUS_SUCCESS; }

rsmi_status_t rsmi_num_monitor_devices(uint32_t* num_devices) {
    *num_devices = static_cast<uint32_t>(devices().size());
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_drm_render_minor_get(uint32_t dv, uint32_t* minor) {
    if (!valid(dv)) return RSMI_STATUS_INVALID_ARGS;
    *minor = devices()[dv].minor;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_pci_id_get(uint32_t dv, uint64_t* bdfid) {
    if (!valid(dv)) return RSMI_STATUS_INVALID_ARGS;
    *bdfid = devices()[dv].bdf;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_name_get(uint32_t dv, char* name, size_t len) {
    if (!valid(dv) || len == 0) return RSMI_STATUS_INVALID_ARGS;
    std::snprintf(name, len, "%s", devices()[dv].name.c_str());
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_unique_id_get(uint32_t dv, uint64_t* id) {
    if (!valid(dv)) return RSMI_STATUS_INVALID_ARGS;
    if (devices()[dv].unique_id == 0) return RSMI_STATUS_NOT_SUPPORTED;
    *id = devices()[dv].unique_id;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_memory_total_get(uint32_t dv, rsmi_memory_type_t type, uint64_t* total) {
    if (!valid(dv)) return RSMI_STATUS_INVALID_ARGS;
    if (type == RSMI_MEM_TYPE_VRAM)
        *total = devices()[dv].vram_total;
    else if (type == RSMI_MEM_TYPE_GTT)
        *total = devices()[dv].gtt;
    else
        return RSMI_STATUS_NOT_SUPPORTED;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_memory_usage_get(uint32_t dv, rsmi_memory_type_t type, uint64_t* used) {
    if (!valid(dv) || type != RSMI_MEM_TYPE_VRAM) return RSMI_STATUS_NOT_SUPPORTED;
    *used = devices()[dv].vram_used;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_status_string(rsmi_status_t status, const char** text) {
    *text = status == RSMI_STATUS_INIT_ERROR ? "RSMI_STATUS_INIT_ERROR: fake init failure" : "fake status";
    return RSMI_STATUS_SUCCESS;
}

}  // extern "C"
