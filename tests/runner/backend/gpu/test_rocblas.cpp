// rocBLAS opened at run time, against the stand-in library (fake_rocblas.cpp): loading and its failures,
// the choice of a device's library by its gfx target, and gemm.h's arguments proven by the product the
// stand-in computes with rocBLAS's documented semantics. The GPU tests prove the same arguments through
// cuBLAS on the GPU host.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/rocblas_library.h"
#include "runner/backend/gpu/gemm.h"
#include "runner/backend/gpu/rocblas_choice.h"
#include "support/scoped_env.h"
#include "support/temp_tree.h"

namespace gpu = runner::gpu;

namespace {

using test_support::ScopedEnv;

std::uint16_t bf16_bits(float v) {
    std::uint32_t w = 0;
    std::memcpy(&w, &v, 4);
    return static_cast<std::uint16_t>(w >> 16);
}

float from_bf16(std::uint16_t b) {
    const std::uint32_t w = static_cast<std::uint32_t>(b) << 16;
    float v = 0;
    std::memcpy(&v, &w, 4);
    return v;
}

// v's elements as the GEMM's 16-bit input type reads them.
std::vector<std::uint16_t> to_16bit(const std::vector<float>& v, gpu::GemmInput input) {
    std::vector<std::uint16_t> bits(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (input == gpu::GemmInput::bf16) {
            bits[i] = bf16_bits(v[i]);
        } else {
            const auto h = static_cast<_Float16>(v[i]);
            std::memcpy(&bits[i], &h, 2);
        }
    }
    return bits;
}

common::RocblasLibrary open_stand_in() {
    auto lib = common::RocblasLibrary::open({OAR_FAKE_ROCBLAS});
    REQUIRE_MESSAGE(lib.ok(), (lib.ok() ? "" : lib.error().message));
    return std::move(lib).value();
}

}  // namespace

TEST_CASE("rocBLAS loads from the first candidate that is a rocBLAS, and says why each other was not") {
    auto lib =
        common::RocblasLibrary::open({"/nonexistent/librocblas.so.5", OAR_FAKE_ROCBLAS_NO_GEMM, OAR_FAKE_ROCBLAS});
    REQUIRE(lib.ok());
    CHECK(lib->version() == "9.9.9.stand-in");
    CHECK(lib->path().find("fake_rocblas") != std::string::npos);

    auto none = common::RocblasLibrary::open({"/nonexistent/librocblas.so.5", OAR_FAKE_ROCBLAS_NO_GEMM});
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().message.find("/nonexistent/librocblas.so.5") != std::string::npos);
    CHECK(none.error().message.find("lacks a rocblas_* entry point") != std::string::npos);
}

TEST_CASE("rocBLAS candidates: an explicit path alone, else ROCm 7's and 6's sonames, bare and under the prefixes") {
    CHECK(common::RocblasLibrary::candidates("/x/librocblas.so", "/opt/rocm-7.1") ==
          std::vector<std::string>{"/x/librocblas.so"});
    const auto names = common::RocblasLibrary::candidates("", "/opt/rocm-7.1");
    CHECK(names.front() == "librocblas.so.5");
    CHECK(std::find(names.begin(), names.end(), "/opt/rocm-7.1/lib/librocblas.so.4") != names.end());
    CHECK(std::find(names.begin(), names.end(), "/opt/rocm/lib/librocblas.so.5") != names.end());
}

TEST_CASE("gemm.h's arguments through rocBLAS give out = x W^T, with and without accumulation, bf16 and f16") {
    const auto lib = open_stand_in();
    void* handle = nullptr;
    REQUIRE(lib.create_handle(&handle) == 0);
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> small(-8, 8);
    // Sizes that are all different, so that a swapped dimension or leading dimension cannot pass.
    const int n_tokens = 5, d_in = 12, d_out = 7;
    for (const auto input : {gpu::GemmInput::bf16, gpu::GemmInput::f16}) {
        CAPTURE(static_cast<int>(input));
        // Small integers are exact in both types, so the product is exact too.
        std::vector<float> w(d_out * d_in), x(n_tokens * d_in);
        for (auto& v : w) v = static_cast<float>(small(rng)) / 4;
        for (auto& v : x) v = static_cast<float>(small(rng)) / 2;
        const auto w16 = to_16bit(w, input), x16 = to_16bit(x, input);
        REQUIRE(from_bf16(bf16_bits(w[3])) == w[3]);
        for (const bool accumulate : {false, true}) {
            CAPTURE(accumulate);
            std::vector<float> out(n_tokens * d_out, 0.5f);
            const auto call = gpu::to_rocblas(gpu::matmul_gemm(n_tokens, d_in, d_out, input, accumulate));
            REQUIRE(lib.gemm(handle, call, w16.data(), x16.data(), out.data()) == 0);
            for (int t = 0; t < n_tokens; ++t)
                for (int j = 0; j < d_out; ++j) {
                    float expected = accumulate ? 0.5f : 0.f;
                    for (int i = 0; i < d_in; ++i) expected += x[t * d_in + i] * w[j * d_in + i];
                    CHECK(out[t * d_out + j] == expected);
                }
        }
    }
    CHECK(lib.destroy_handle(handle) == 0);
}

TEST_CASE("the library's calls reach rocBLAS in order, the stream and handle passed through") {
    test_support::TempTree tree;
    const auto log = tree.root() / "calls";
    const ScopedEnv env("FAKE_ROCBLAS_LOG", log.string());
    const auto lib = open_stand_in();
    void* handle = nullptr;
    REQUIRE(lib.create_handle(&handle) == 0);
    int stream_stand_in = 0;
    REQUIRE(lib.set_stream(handle, &stream_stand_in) == 0);
    std::vector<std::uint16_t> a(8 * 6), b(8 * 4);
    std::vector<float> c(6 * 4);
    REQUIRE(lib.gemm(handle, gpu::to_rocblas(gpu::matmul_gemm(4, 8, 6, gpu::GemmInput::f16, false)), a.data(), b.data(),
                     c.data()) == 0);
    REQUIRE(lib.destroy_handle(handle) == 0);
    char stream_text[32];
    std::snprintf(stream_text, sizeof stream_text, "%p", static_cast<void*>(&stream_stand_in));
    CHECK(test_support::read_file(log) ==
          "create_handle\nset_stream " + std::string(stream_text) +
              "\ngemm_ex 112 111 m=6 n=4 k=8 a=150 lda=8 b=150 ldb=8 c=151 ldc=6 d=151 ldd=6 compute=151 algo=0\n"
              "destroy_handle\n");
}

TEST_CASE("rocBLAS errors come back as its status text") {
    const auto lib = open_stand_in();
    void* handle = nullptr;
    REQUIRE(lib.create_handle(&handle) == 0);
    auto call = gpu::to_rocblas(gpu::matmul_gemm(4, 8, 6, gpu::GemmInput::bf16, false));
    call.lda = 2;  // shorter than a column of W^T
    std::vector<std::uint16_t> a(64), b(64);
    std::vector<float> c(64);
    const int status = lib.gemm(handle, call, a.data(), b.data(), c.data());
    CHECK(status == 4);
    CHECK(lib.status_text(status) == "rocblas_status_invalid_size");
    CHECK(lib.destroy_handle(handle) == 0);
}

TEST_CASE("a device uses rocBLAS only where it loads and has kernels for the device's gfx target") {
    test_support::TempTree tree;
    tree.write("kernels/TensileLibrary_lazy_gfx1100.dat", "");
    tree.write("kernels/TensileLibrary_lazy_gfx90a.dat", "");
    const ScopedEnv kernels("ROCBLAS_TENSILE_LIBPATH", (tree.root() / "kernels").string());

    const auto chosen = gpu::choose_rocblas(OAR_FAKE_ROCBLAS, "", "gfx1100");
    REQUIRE(chosen.library != nullptr);
    CHECK(chosen.status.find("rocBLAS 9.9.9.stand-in") != std::string::npos);
    CHECK(chosen.status.find("kernels for gfx1100") != std::string::npos);

    // ROCm names CDNA targets with their features.
    CHECK(gpu::choose_rocblas(OAR_FAKE_ROCBLAS, "", "gfx90a:sramecc+:xnack-").library != nullptr);

    const auto other = gpu::choose_rocblas(OAR_FAKE_ROCBLAS, "", "gfx1030");
    CHECK(other.library == nullptr);
    CHECK(other.status.find("no kernels for gfx1030 in " + (tree.root() / "kernels").string()) != std::string::npos);
    CHECK(other.status.find("own kernels") != std::string::npos);

    const auto off = gpu::choose_rocblas("off", "", "gfx1100");
    CHECK(off.library == nullptr);
    CHECK(off.status.find("AIRLLM_ROCBLAS=off") != std::string::npos);

    const auto missing = gpu::choose_rocblas("/nonexistent/librocblas.so.5", "", "gfx1100");
    CHECK(missing.library == nullptr);
    CHECK(missing.status.find("/nonexistent/librocblas.so.5") != std::string::npos);
    CHECK(missing.status.find("AIRLLM_ROCBLAS") != std::string::npos);
}

TEST_CASE("rocBLAS's kernel folder is ROCBLAS_TENSILE_LIBPATH, else rocblas/library beside the library") {
    const auto lib = open_stand_in();
    {
        const ScopedEnv env("ROCBLAS_TENSILE_LIBPATH", "/somewhere/library");
        CHECK(lib.kernel_dir() == "/somewhere/library");
    }
    const ScopedEnv unset("ROCBLAS_TENSILE_LIBPATH", std::nullopt);
    CHECK(lib.kernel_dir().filename() == "library");
    CHECK(lib.kernel_dir().parent_path().filename() == "rocblas");
}

TEST_CASE("the gfx targets of TensileLibrary file names") {
    CHECK(common::targets_in_file_name("TensileLibrary_lazy_gfx1100.dat") == std::vector<std::string>{"gfx1100"});
    CHECK(common::targets_in_file_name("TensileLibrary_Type_HH_Contraction_l_Ailk_Bljk_Cijk_Dijk_gfx90a.co") ==
          std::vector<std::string>{"gfx90a"});
    CHECK(common::targets_in_file_name("TensileLibrary.dat").empty());
    test_support::TempTree tree;
    tree.write("TensileLibrary_lazy_gfx1030.dat", "");
    tree.write("Kernels.so-000-gfx1100.hsaco", "");
    CHECK(common::rocblas_kernel_targets(tree.root()) == std::vector<std::string>{"gfx1030"});
    CHECK(common::rocblas_kernel_targets(tree.root() / "absent").empty());
}
