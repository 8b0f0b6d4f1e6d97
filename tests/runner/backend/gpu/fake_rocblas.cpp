// Test double for librocblas (no AMD GPU here): the entry points ollama-airllm calls, with the meaning
// rocBLAS documents, on host memory. rocblas_gemm_ex computes D = alpha op(A) op(B) + beta C column-major
// for f16 or bf16 inputs and f32 output and compute, and checks its sizes and leading dimensions as
// rocBLAS does, so gemm.h's arguments and RocblasLibrary's argument order are proven by the product
// itself. Every call is appended to the file named by FAKE_ROCBLAS_LOG. Built a second time with
// FAKE_ROCBLAS_NO_GEMM, it lacks rocblas_gemm_ex: a library that loads but is not a rocBLAS.
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

enum Status : int { success = 0, invalid_handle = 1, invalid_pointer = 3, invalid_size = 4, invalid_value = 11 };

struct Handle {
    void* stream = nullptr;
};

void log_call(const char* format, ...) __attribute__((format(printf, 1, 2)));
void log_call(const char* format, ...) {
    const char* path = std::getenv("FAKE_ROCBLAS_LOG");
    if (!path) return;
    std::FILE* f = std::fopen(path, "a");
    if (!f) return;
    va_list args;
    va_start(args, format);
    std::vfprintf(f, format, args);
    va_end(args);
    std::fputc('\n', f);
    std::fclose(f);
}

const char version[] = "9.9.9.stand-in";

[[maybe_unused]] float element(const void* data, int type, std::size_t i) {
    std::uint16_t bits = 0;
    std::memcpy(&bits, static_cast<const char*>(data) + 2 * i, 2);
    if (type == 168) {  // bf16_r: the top half of an f32
        const std::uint32_t word = static_cast<std::uint32_t>(bits) << 16;
        float v = 0;
        std::memcpy(&v, &word, 4);
        return v;
    }
    _Float16 h = 0;  // f16_r
    std::memcpy(&h, &bits, 2);
    return static_cast<float>(h);
}

}  // namespace

extern "C" {

int rocblas_create_handle(void** handle) {
    if (!handle) return invalid_pointer;
    *handle = new Handle;
    log_call("create_handle");
    return success;
}

int rocblas_destroy_handle(void* handle) {
    if (!handle) return invalid_handle;
    delete static_cast<Handle*>(handle);
    log_call("destroy_handle");
    return success;
}

int rocblas_set_stream(void* handle, void* stream) {
    if (!handle) return invalid_handle;
    static_cast<Handle*>(handle)->stream = stream;
    log_call("set_stream %p", stream);
    return success;
}

int rocblas_get_version_string_size(std::size_t* size) {
    *size = sizeof version;
    return success;
}

int rocblas_get_version_string(char* buf, std::size_t size) {
    if (size < sizeof version) return invalid_size;
    std::memcpy(buf, version, sizeof version);
    return success;
}

const char* rocblas_status_to_string(int status) {
    switch (status) {
        case success: return "rocblas_status_success";
        case invalid_size: return "rocblas_status_invalid_size";
        case invalid_value: return "rocblas_status_invalid_value";
        default: return "rocblas_status_other";
    }
}

#ifndef FAKE_ROCBLAS_NO_GEMM
int rocblas_gemm_ex(void* handle, int trans_a, int trans_b, int m, int n, int k, const void* alpha, const void* a,
                    int a_type, int lda, const void* b, int b_type, int ldb, const void* beta, const void* c,
                    int c_type, int ldc, void* d, int d_type, int ldd, int compute_type, int algo,
                    std::int32_t solution_index, std::uint32_t flags) {
    log_call("gemm_ex %d %d m=%d n=%d k=%d a=%d lda=%d b=%d ldb=%d c=%d ldc=%d d=%d ldd=%d compute=%d algo=%d", trans_a,
             trans_b, m, n, k, a_type, lda, b_type, ldb, c_type, ldc, d_type, ldd, compute_type, algo);
    (void)solution_index, (void)flags;
    if (!handle) return invalid_handle;
    const bool ta = trans_a == 112, tb = trans_b == 112;
    if ((trans_a != 111 && !ta) || (trans_b != 111 && !tb)) return invalid_value;
    if ((a_type != 150 && a_type != 168) || b_type != a_type || c_type != 151 || d_type != 151 || compute_type != 151)
        return invalid_value;
    if (m < 0 || n < 0 || k < 0 || lda < (ta ? k : m) || ldb < (tb ? n : k) || ldc < m || ldd < m) return invalid_size;
    if (!alpha || !beta || !a || !b || !c || !d) return invalid_pointer;
    const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
    const auto* cin = static_cast<const float*>(c);
    std::vector<float> result(static_cast<std::size_t>(m) * n);
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            float sum = 0;
            for (int p = 0; p < k; ++p) {
                const std::size_t ai =
                    ta ? static_cast<std::size_t>(i) * lda + p : static_cast<std::size_t>(p) * lda + i;
                const std::size_t bi =
                    tb ? static_cast<std::size_t>(p) * ldb + j : static_cast<std::size_t>(j) * ldb + p;
                sum += element(a, a_type, ai) * element(b, b_type, bi);
            }
            const float prior = be != 0.f ? cin[static_cast<std::size_t>(j) * ldc + i] : 0.f;
            result[static_cast<std::size_t>(j) * m + i] = al * sum + be * prior;
        }
    auto* out = static_cast<float*>(d);
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i)
            out[static_cast<std::size_t>(j) * ldd + i] = result[static_cast<std::size_t>(j) * m + i];
    return success;
}
#endif

}  // extern "C"
