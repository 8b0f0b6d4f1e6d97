#include "common/rocblas_library.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <system_error>

namespace common {

// rocBLAS's entry points, typed as its header declares them (handles and streams are pointers, enums int),
// and the library that holds them open.
struct RocblasLibrary::Api {
    SharedLibrary library;
    int (*create_handle)(void**) = nullptr;
    int (*destroy_handle)(void*) = nullptr;
    int (*set_stream)(void*, void*) = nullptr;
    int (*get_version_string_size)(std::size_t*) = nullptr;
    int (*get_version_string)(char*, std::size_t) = nullptr;
    int (*gemm_ex)(void* handle, int trans_a, int trans_b, int m, int n, int k, const void* alpha, const void* a,
                   int a_type, int lda, const void* b, int b_type, int ldb, const void* beta, const void* c, int c_type,
                   int ldc, void* d, int d_type, int ldd, int compute_type, int algo, std::int32_t solution_index,
                   std::uint32_t flags) = nullptr;
    const char* (*status_to_string)(int) = nullptr;  // optional: older releases lack it
};

namespace {

bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

std::vector<std::string> RocblasLibrary::candidates(const std::string& explicit_path, const std::string& rocm_path) {
    if (!explicit_path.empty()) return {explicit_path};
    std::vector<std::string> names;
    for (const char* soname : {"librocblas.so.5", "librocblas.so.4"}) {
        names.emplace_back(soname);
        if (!rocm_path.empty()) names.push_back(rocm_path + "/lib/" + soname);
        names.push_back(std::string("/opt/rocm/lib/") + soname);
    }
    return names;
}

Result<RocblasLibrary> RocblasLibrary::open(const std::vector<std::string>& candidates) {
    std::string tried;
    for (const auto& candidate : candidates) {
        auto opened = SharedLibrary::open(candidate);
        if (!opened) {
            tried += (tried.empty() ? "" : "; ") + opened.error().message;
            continue;
        }
        RocblasLibrary lib;
        auto api = std::make_shared<Api>(Api{std::move(opened).value()});
        const SharedLibrary& l = api->library;
        const bool complete =
            l.bind("rocblas_create_handle", api->create_handle) &&
            l.bind("rocblas_destroy_handle", api->destroy_handle) && l.bind("rocblas_set_stream", api->set_stream) &&
            l.bind("rocblas_get_version_string_size", api->get_version_string_size) &&
            l.bind("rocblas_get_version_string", api->get_version_string) && l.bind("rocblas_gemm_ex", api->gemm_ex);
        l.bind("rocblas_status_to_string", api->status_to_string);
        if (!complete) {
            tried += (tried.empty() ? "" : "; ") + candidate +
                     ": loads, but lacks a rocblas_* entry point we call; not a rocBLAS";
            continue;
        }
        std::size_t size = 0;
        if (api->get_version_string_size(&size) == rocblas_abi::status_success && size > 0 && size < 4096) {
            std::string version(size, '\0');
            if (api->get_version_string(version.data(), size) == rocblas_abi::status_success)
                lib.version_ = version.c_str();
        }
        Dl_info info{};
        lib.path_ =
            ::dladdr(reinterpret_cast<void*>(api->gemm_ex), &info) && info.dli_fname ? info.dli_fname : candidate;
        lib.api_ = std::move(api);
        return lib;
    }
    return make_error("rocBLAS did not load: " + tried);
}

std::filesystem::path RocblasLibrary::kernel_dir() const {
    if (const char* env = std::getenv("ROCBLAS_TENSILE_LIBPATH"); env && *env) return env;
    std::error_code ec;
    const auto real = std::filesystem::canonical(path_, ec);
    return (ec ? std::filesystem::path(path_) : real).parent_path() / "rocblas" / "library";
}

int RocblasLibrary::create_handle(void** handle) const { return api_->create_handle(handle); }
int RocblasLibrary::destroy_handle(void* handle) const { return api_->destroy_handle(handle); }
int RocblasLibrary::set_stream(void* handle, void* stream) const { return api_->set_stream(handle, stream); }

int RocblasLibrary::gemm(void* handle, const RocblasGemm& g, const void* a, const void* b, float* c) const {
    return api_->gemm_ex(handle, g.op_a, g.op_b, g.m, g.n, g.k, &g.alpha, a, g.ab_type, g.lda, b, g.ab_type, g.ldb,
                         &g.beta, c, rocblas_abi::f32_r, g.ldc, c, rocblas_abi::f32_r, g.ldc, rocblas_abi::f32_r,
                         rocblas_abi::gemm_algo_standard, 0, 0);
}

std::string RocblasLibrary::status_text(int status) const {
    if (api_->status_to_string)
        if (const char* text = api_->status_to_string(status)) return text;
    return "rocblas_status " + std::to_string(status);
}

std::vector<std::string> rocblas_kernel_targets(const std::filesystem::path& dir) {
    std::vector<std::string> targets;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const auto name = it->path().filename().string();
        if (name.rfind("TensileLibrary", 0) != 0) continue;
        for (auto& target : targets_in_file_name(name)) targets.push_back(std::move(target));
    }
    return targets;
}

std::vector<std::string> targets_in_file_name(const std::string& name) {
    std::vector<std::string> targets;
    for (std::size_t pos = name.find("gfx"); pos != std::string::npos; pos = name.find("gfx", pos + 3)) {
        std::size_t end = pos + 3;
        while (end < name.size() && is_hex_lower(name[end])) ++end;
        // A real target has 3 or more characters after "gfx" and ends at a separator, not in a word.
        if (end - pos < 6) continue;
        if (end < name.size() && name[end] != '.' && name[end] != '_' && name[end] != '-' && name[end] != ':') continue;
        targets.push_back(name.substr(pos, end - pos));
    }
    return targets;
}

}  // namespace common
