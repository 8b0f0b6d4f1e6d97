// A scope whose products with quantized rows take f32 activations, the exact path: for tests
// that compare the engine's wiring with a reference at 1e-4. The default, 8-bit activations
// (backend/cpu/int8_dot.h), is checked against its own bounds.
#pragma once

#include "runner/backend/cpu/ops.h"

namespace test_support {

class F32Products {
  public:
    F32Products() { runner::cpu::use_int8_products(false); }
    ~F32Products() { runner::cpu::use_int8_products(true); }
    F32Products(const F32Products&) = delete;
    F32Products& operator=(const F32Products&) = delete;
};

}  // namespace test_support
