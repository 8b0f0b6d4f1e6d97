#include "probe/source_smi.h"

#include <fcntl.h>
#include <unistd.h>
#include <cstdio>
#include <iostream>
#include <optional>

#include <rocm_smi/rocm_smi.h>

#include "common/shared_library.h"

namespace probe {

namespace {

// Points stdout and stderr at /dev/null while alive. rocm-smi-lib writes "Failed to open drm root
// directory" and "Exception caught: rsmi_init." straight to the process's streams.
class SilencedStreams {
  public:
    SilencedStreams() {
        std::cout.flush();
        std::fflush(nullptr);
        const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null_fd < 0) return;
        saved_out_ = ::dup(STDOUT_FILENO);
        saved_err_ = ::dup(STDERR_FILENO);
        ::dup2(null_fd, STDOUT_FILENO);
        ::dup2(null_fd, STDERR_FILENO);
        ::close(null_fd);
    }
    SilencedStreams(const SilencedStreams&) = delete;
    SilencedStreams& operator=(const SilencedStreams&) = delete;
    ~SilencedStreams() {
        std::cout.flush();
        std::cerr.flush();
        std::fflush(nullptr);
        if (saved_out_ >= 0) {
            ::dup2(saved_out_, STDOUT_FILENO);
            ::close(saved_out_);
        }
        if (saved_err_ >= 0) {
            ::dup2(saved_err_, STDERR_FILENO);
            ::close(saved_err_);
        }
    }

  private:
    int saved_out_ = -1;
    int saved_err_ = -1;
};

// The entry points we call, typed from the library's own header so a signature change fails the build.
struct SmiApi {
    decltype(&::rsmi_init) init = nullptr;
    decltype(&::rsmi_shut_down) shut_down = nullptr;
    decltype(&::rsmi_num_monitor_devices) num_devices = nullptr;
    decltype(&::rsmi_dev_drm_render_minor_get) render_minor = nullptr;
    decltype(&::rsmi_dev_pci_id_get) pci_id = nullptr;
    decltype(&::rsmi_dev_name_get) name = nullptr;
    decltype(&::rsmi_dev_unique_id_get) unique_id = nullptr;
    decltype(&::rsmi_dev_memory_total_get) memory_total = nullptr;
    decltype(&::rsmi_dev_memory_usage_get) memory_usage = nullptr;
    decltype(&::rsmi_status_string) status_string = nullptr;
};

std::string status_text(const SmiApi& api, rsmi_status_t status) {
    const char* text = nullptr;
    if (api.status_string && api.status_string(status, &text) == RSMI_STATUS_SUCCESS && text) return text;
    return "status " + std::to_string(static_cast<int>(status));
}

std::optional<std::uint64_t> memory(const SmiApi& api, std::uint32_t dev, rsmi_memory_type_t type, bool total) {
    std::uint64_t value = 0;
    const auto status = total ? api.memory_total(dev, type, &value) : api.memory_usage(dev, type, &value);
    if (status != RSMI_STATUS_SUCCESS) return std::nullopt;
    return value;
}

SmiDevice read_device(const SmiApi& api, std::uint32_t dev) {
    SmiDevice d;
    std::uint32_t minor = 0;
    if (api.render_minor(dev, &minor) == RSMI_STATUS_SUCCESS && minor != 0) d.render_minor = static_cast<int>(minor);
    std::uint64_t bdf = 0;
    if (api.pci_id(dev, &bdf) == RSMI_STATUS_SUCCESS) {
        // BDFID = domain << 32 | bus << 8 | device << 3 | function
        d.address = PciAddress{static_cast<std::uint32_t>(bdf >> 32), static_cast<std::uint32_t>((bdf >> 8) & 0xff),
                               static_cast<std::uint32_t>((bdf >> 3) & 0x1f), static_cast<std::uint32_t>(bdf & 0x7)};
    }
    char name[256] = {};
    if (api.name(dev, name, sizeof name) == RSMI_STATUS_SUCCESS) d.name = name;
    std::uint64_t uid = 0;
    if (api.unique_id(dev, &uid) == RSMI_STATUS_SUCCESS && uid != 0) d.unique_id = uid;
    d.vram_total = memory(api, dev, RSMI_MEM_TYPE_VRAM, true);
    d.vram_used = memory(api, dev, RSMI_MEM_TYPE_VRAM, false);
    d.gtt_total = memory(api, dev, RSMI_MEM_TYPE_GTT, true);
    return d;
}

}  // namespace

SmiScan scan_smi(const std::string& library, const std::string& rocm_path) {
    SmiScan scan;
    scan.report.name = "rocm-smi";

    std::vector<std::string> candidates;
    if (!library.empty()) {
        candidates.push_back(library);
    } else {
        candidates.push_back("librocm_smi64.so.1");
        if (!rocm_path.empty()) candidates.push_back(rocm_path + "/lib/librocm_smi64.so.1");
        candidates.push_back("/opt/rocm/lib/librocm_smi64.so.1");
    }
    std::optional<common::SharedLibrary> handle;
    std::string loaded;
    for (const auto& candidate : candidates) {
        if (auto opened = common::SharedLibrary::open(candidate)) {
            handle = std::move(opened).value();
            loaded = candidate;
            break;
        }
    }
    if (!handle) {
        scan.report.state = SourceState::absent;
        scan.report.detail =
            "library not found (tried " + candidates.front() + (candidates.size() > 1 ? " and others)" : ")");
        return scan;
    }

    SmiApi api;
    const bool complete = handle->bind("rsmi_init", api.init) && handle->bind("rsmi_shut_down", api.shut_down) &&
                          handle->bind("rsmi_num_monitor_devices", api.num_devices) &&
                          handle->bind("rsmi_dev_drm_render_minor_get", api.render_minor) &&
                          handle->bind("rsmi_dev_pci_id_get", api.pci_id) &&
                          handle->bind("rsmi_dev_name_get", api.name) &&
                          handle->bind("rsmi_dev_unique_id_get", api.unique_id) &&
                          handle->bind("rsmi_dev_memory_total_get", api.memory_total) &&
                          handle->bind("rsmi_dev_memory_usage_get", api.memory_usage);
    handle->bind("rsmi_status_string", api.status_string);
    if (!complete) {
        scan.report.state = SourceState::error;
        scan.report.detail = loaded + ": missing an rsmi_* symbol; not a rocm-smi-lib";
        return scan;
    }

    {
        const SilencedStreams quiet;
        const auto status = api.init(0);
        if (status != RSMI_STATUS_SUCCESS) {
            scan.report.state = SourceState::absent;
            scan.report.detail = loaded + ": rsmi_init failed (" + status_text(api, status) + ")";
            return scan;
        }
        std::uint32_t count = 0;
        if (api.num_devices(&count) == RSMI_STATUS_SUCCESS) {
            for (std::uint32_t dev = 0; dev < count; ++dev) scan.devices.push_back(read_device(api, dev));
        }
        api.shut_down();
    }
    scan.report.state = SourceState::used;
    scan.report.detail = loaded + ": " + std::to_string(scan.devices.size()) + " device(s)";
    return scan;
}

}  // namespace probe
