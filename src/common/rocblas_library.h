// rocBLAS, opened at run time (dlopen), as rocm-probe opens rocm-smi-lib: the runner's ROCm build uses it
// for prompt products when the user's ROCm has it, and rocm-probe reports whether it loads. Nothing links
// against it, so a build needs no ROCm BLAS (Debian has none) and a missing or broken library leaves the
// runner on its own kernels instead of failing to start.
//
// rocBLAS, not hipBLAS: Arch's ollama-rocm depends on hipblas, which depends on rocblas, so both are
// installed; rocblas_gemm_ex's C signature and enum values have not changed since ROCm 3, while
// hipblasGemmEx changed its type enums between hipBLAS 2 (ROCm 6) and 3 (ROCm 7).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/shared_library.h"

namespace common {

// The values of rocBLAS's enums that we pass (its rocblas-types.h). The stand-in library in tests/
// implements the documented meaning of exactly these numbers.
namespace rocblas_abi {
enum Operation : int { op_none = 111, op_transpose = 112 };
enum Datatype : int { f16_r = 150, f32_r = 151, bf16_r = 168 };
constexpr int status_success = 0;
constexpr int gemm_algo_standard = 0;
}  // namespace rocblas_abi

// One rocblas_gemm_ex call, D = C = alpha op(A) op(B) + beta C, column-major as BLAS defines it.
struct RocblasGemm {
    rocblas_abi::Operation op_a = rocblas_abi::op_none, op_b = rocblas_abi::op_none;
    int m = 0, n = 0, k = 0;
    rocblas_abi::Datatype ab_type = rocblas_abi::f16_r;
    int lda = 0, ldb = 0, ldc = 0;
    float alpha = 1.f, beta = 0.f;  // c is f32, computed in f32
};

class RocblasLibrary {
  public:
    // The first of `candidates` that loads and has every entry point we call; the error, one line, names
    // each candidate and why it was not used.
    static Result<RocblasLibrary> open(const std::vector<std::string>& candidates);
    // `explicit_path` alone when given; else the sonames of ROCm 7 and 6, bare and under $ROCM_PATH and
    // /opt/rocm (Arch's prefix).
    static std::vector<std::string> candidates(const std::string& explicit_path, const std::string& rocm_path);

    const std::string& path() const { return path_; }        // the file that was loaded
    const std::string& version() const { return version_; }  // rocblas_get_version_string: "4.3.0.abc"
    // Where rocBLAS reads its kernels: ROCBLAS_TENSILE_LIBPATH, else rocblas/library beside the library.
    std::filesystem::path kernel_dir() const;

    // rocBLAS's status codes: 0 is success; status_text says what another one means.
    int create_handle(void** handle) const;
    int destroy_handle(void* handle) const;
    int set_stream(void* handle, void* stream) const;
    int gemm(void* handle, const RocblasGemm& call, const void* a, const void* b, float* c) const;
    std::string status_text(int status) const;

  private:
    struct Api;                       // the entry points, with the library they live in
    std::shared_ptr<const Api> api_;  // shared: a copy keeps them loaded
    std::string path_;
    std::string version_;
};

// The gfx targets rocBLAS has kernels for in `dir`, from the names of its TensileLibrary files
// (what Ollama checks before it uses a GPU): rocBLAS aborts the process on its first product for a
// target it has no kernels for, so the runner asks this first. Empty when the folder has none.
std::vector<std::string> rocblas_kernel_targets(const std::filesystem::path& dir);

// The gfx targets named by one file name: "TensileLibrary_lazy_gfx1100.dat" -> {gfx1100}.
std::vector<std::string> targets_in_file_name(const std::string& name);

}  // namespace common
