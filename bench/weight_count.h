// The weights each token multiplies with (the output head and every layer tensor): two flops each
// in a prompt's bound.
#pragma once

#include "runner/model/model_weights.h"

namespace bench {

inline double weights_per_token(const runner::ModelWeights& w) {
    double n = static_cast<double>(w.output->numel());
    for (const auto& l : w.layers)
        for (const auto* t : runner::layer_tensors(l))
            if (t) n += static_cast<double>(t->numel());
    return n;
}

}  // namespace bench
