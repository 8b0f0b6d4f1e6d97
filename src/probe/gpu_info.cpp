#include "probe/gpu_info.h"

#include <cstdio>

namespace probe {

std::string PciAddress::str() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", domain, bus, device, function);
    return buf;
}

std::string GpuInfo::uuid() const {
    if (!unique_id) return {};
    char buf[32];
    std::snprintf(buf, sizeof buf, "GPU-%016llx", static_cast<unsigned long long>(*unique_id));
    return buf;
}

}  // namespace probe
