#include "runner/selftest/kernel_check.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace runner::selftest {

namespace {

bool named_to_break(const std::string& kernel) {
    const char* names = std::getenv("AIRLLM_SELFTEST_BREAK");
    if (!names) return false;
    std::istringstream list(names);
    for (std::string name; std::getline(list, name, ',');)
        if (name == kernel) return true;
    return false;
}

}  // namespace

float relative_error(std::span<const float> ours, std::span<const float> reference) {
    if (ours.size() != reference.size()) return std::numeric_limits<float>::infinity();
    float worst = 0, scale = 1e-6f;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        if (!std::isfinite(ours[i])) return std::numeric_limits<float>::infinity();
        worst = std::max(worst, std::abs(ours[i] - reference[i]));
        scale = std::max(scale, std::abs(reference[i]));
    }
    return worst / scale;
}

KernelCheck compare(std::string kernel, std::span<float> ours, std::span<const float> reference, float tolerance) {
    if (named_to_break(kernel) && !ours.empty()) ours[ours.size() / 2] += 1.f + std::abs(ours[ours.size() / 2]);
    KernelCheck check;
    check.error = relative_error(ours, reference);
    check.tolerance = tolerance;
    check.kernel = std::move(kernel);
    return check;
}

const KernelCheck* first_failure(const std::vector<KernelCheck>& checks) {
    const auto it = std::find_if(checks.begin(), checks.end(), [](const KernelCheck& c) { return !c.passed(); });
    return it == checks.end() ? nullptr : &*it;
}

}  // namespace runner::selftest
