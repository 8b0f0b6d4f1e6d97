#include "runner/backend/gpu/rocblas_choice.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

namespace runner::gpu {

RocblasChoice choose_rocblas(const std::string& setting, const std::string& rocm_path, const std::string& gfx) {
    RocblasChoice choice;
    if (setting == "off") {
        choice.status = "rocBLAS off (AIRLLM_ROCBLAS=off): prompts run on ollama-airllm's own kernels";
        return choice;
    }
    auto lib = common::RocblasLibrary::open(common::RocblasLibrary::candidates(setting, rocm_path));
    if (!lib) {
        choice.status = lib.error().message +
                        "; prompts run on ollama-airllm's own kernels (slower): install rocblas, or set "
                        "AIRLLM_ROCBLAS to the library's path";
        return choice;
    }
    const std::string target = gfx.substr(0, gfx.find(':'));
    const auto dir = lib->kernel_dir();
    const auto targets = common::rocblas_kernel_targets(dir);
    const std::string name =
        "rocBLAS " + (lib->version().empty() ? std::string() : lib->version() + " ") + "(" + lib->path() + ")";
    if (std::find(targets.begin(), targets.end(), target) == targets.end()) {
        choice.status = name + " has no kernels for " + target + " in " + dir.string() +
                        "; prompts run on ollama-airllm's own kernels (rocm-probe says which targets it has)";
        return choice;
    }
    choice.status = name + ", kernels for " + target;
    choice.library = std::make_shared<const common::RocblasLibrary>(std::move(lib).value());
    return choice;
}

const RocblasChoice& rocblas_for(const std::string& gfx) {
    static std::mutex mutex;
    static std::map<std::string, RocblasChoice> by_target;  // never erased: references stay valid
    const std::lock_guard lock(mutex);
    auto it = by_target.find(gfx);
    if (it == by_target.end()) {
        const char* setting = std::getenv("AIRLLM_ROCBLAS");
        const char* rocm_path = std::getenv("ROCM_PATH");
        it = by_target.emplace(gfx, choose_rocblas(setting ? setting : "", rocm_path ? rocm_path : "", gfx)).first;
    }
    return it->second;
}

}  // namespace runner::gpu
