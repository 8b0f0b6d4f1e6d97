#include "runner/selftest/cpu_checks.h"

#include <string>

#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"
#include "runner/selftest/test_data.h"

namespace runner::selftest {

namespace {

constexpr std::size_t rows = 8, n_tokens = 5;

// What a matrix's kernels give for fixed activations: each row's dot, the rows' dots two at a time,
// row 0 widened, and a prompt's product.
struct Outputs {
    std::vector<float> dot, dot2, convert, matmul;
};

Outputs run(const cpu::Matrix& m, const std::vector<float>& x, cpu::ThreadPool& pool) {
    Outputs o;
    cpu::TokenActivations a;
    m.activations(x.data(), 1, a);
    for (std::size_t r = 0; r < rows; ++r) o.dot.push_back(m.dot(r, a));
    o.dot2.resize(rows);
    for (std::size_t r = 0; r < rows; r += 2) cpu::dot2(m, r, m, r + 1, a, o.dot2.data() + r);
    o.convert.resize(m.cols());
    m.convert(0, o.convert.data());
    o.matmul.resize(n_tokens * rows);
    cpu::matmul(o.matmul.data(), x.data(), m, nullptr, n_tokens, pool);
    return o;
}

void check_matrix(std::vector<KernelCheck>& checks, const std::string& format, const cpu::Matrix& m,
                  const std::vector<float>& x, cpu::ThreadPool& pool) {
    cpu::force_portable(true);
    const auto reference = run(m, x, pool);
    cpu::force_portable(false);
    auto ours = run(m, x, pool);
    // Float rows' vector and portable paths sum in different orders: a few ulps of the sum of |w x| per
    // dot. The integer products on quantized rows, and widening, are the same operations on both: exact.
    const float sums = m.takes_int8() ? 0.f : 1e-4f;
    checks.push_back(compare("cpu.dot." + format, ours.dot, reference.dot, sums));
    checks.push_back(compare("cpu.dot2." + format, ours.dot2, reference.dot2, sums));
    checks.push_back(compare("cpu.convert." + format, ours.convert, reference.convert, 0.f));
    checks.push_back(compare("cpu.matmul." + format, ours.matmul, reference.matmul, sums));
}

}  // namespace

std::vector<KernelCheck> check_cpu_kernels() {
    std::mt19937 rng(20261205);
    cpu::ThreadPool pool(0);
    std::vector<KernelCheck> checks;
    for (const auto dtype :
         {DType::f32, DType::bf16, DType::f16, DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k}) {
        // A K-quant row is whole 256-weight blocks; the others end in a partial vector.
        const std::size_t cols = is_block_type(dtype) ? 2048 : 2056;
        const auto bytes = random_weights(rng, dtype, rows, cols);
        const auto x = random_floats(rng, n_tokens * cols);
        check_matrix(checks, format_name(dtype), cpu::Matrix(view_of(bytes, dtype, rows, cols)), x, pool);
    }
    // Our own q8 and q4, as offload/quantize writes a split layer's host rows.
    const std::size_t cols = 2048;
    for (const auto& [type, name] : {std::pair{WeightType::q8, "q8"}, std::pair{WeightType::q4, "q4"}}) {
        const auto q = random_quantized(rng, type, rows, cols);
        const auto x = random_floats(rng, n_tokens * cols);
        check_matrix(checks, name, cpu::Matrix(q.data(), type, rows, cols), x, pool);
    }
    return checks;
}

}  // namespace runner::selftest
