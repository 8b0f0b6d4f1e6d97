#include "runner/selftest/first_load.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "common/atomic_write.h"
#include "common/regular_file.h"

namespace runner::selftest {

namespace {

// This binary as installed: a new package is a new file (inode, size, time), so its kernels are checked again.
std::string binary_identity() {
    struct stat st {};
    if (::stat("/proc/self/exe", &st) != 0) return "unknown";
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// How a record says the BLAS failed its check: the line after the key, then the failure.
constexpr std::string_view blas_off = "blas off: ";

// The pass `record` holds for `key`, or nullopt when there is none (no file, another key).
std::optional<FirstLoad> remembered(const std::filesystem::path& record, const std::string& key) {
    const auto text = common::read_regular_file(record);
    if (!text || text->rfind(key, 0) != 0) return std::nullopt;
    FirstLoad pass;
    pass.remembered = true;
    if (const auto rest = std::string_view(*text).substr(key.size()); rest.starts_with(blas_off))
        pass.blas_failure = rest.substr(blas_off.size(), rest.find('\n') - blas_off.size());
    return pass;
}

bool is_blas(const KernelCheck& c) { return c.kernel.rfind("blas.", 0) == 0; }

}  // namespace

std::filesystem::path kernel_checks_dir(const std::filesystem::path& cache_root) {
    return cache_root / "kernel-checks";
}

std::string describe_failure(const KernelCheck& c) {
    if (!c.failure.empty()) return c.kernel + " failed: " + c.failure;
    char numbers[96];
    std::snprintf(numbers, sizeof numbers, "largest error %.3g, allowed %.3g", static_cast<double>(c.error),
                  static_cast<double>(c.tolerance));
    return c.kernel + " gives wrong results (" + numbers + ")";
}

common::Result<FirstLoad> check_at_first_load(const std::filesystem::path& dir, const CheckedDevice& device,
                                              const std::function<std::vector<KernelCheck>()>& checks) {
    const bool breaking = std::getenv("AIRLLM_SELFTEST_BREAK") != nullptr;
    std::string file = device.uuid + "-" + device.pci;
    for (auto& c : file)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
    const auto record = dir / (file + ".pass");
    const std::string key = "device " + device.identity + "\nbinary " + binary_identity() + "\n";
    FirstLoad result;
    if (!breaking)
        if (auto earlier = remembered(record, key)) return *earlier;
    const auto all = checks();
    for (const auto& c : all) {
        if (c.passed()) continue;
        if (is_blas(c)) {
            if (result.blas_failure.empty()) result.blas_failure = describe_failure(c);
            continue;
        }
        return common::make_error("GPU kernel " + describe_failure(c) + " on " + device.name +
                                  "; ollama-airllm will not run a model on it. Set AIRLLM_DEVICE=cpu to use the CPU, "
                                  "and report this with the output of `ollama-airllm selftest` and `rocm-probe "
                                  "--json`");
    }
    if (!breaking) {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        // Not remembering costs the next load a few seconds, never a wrong answer: a failed write is ignored.
        (void)common::write_file_atomically(
            record, key + (result.blas_failure.empty() ? "" : std::string(blas_off) + result.blas_failure + "\n"));
    }
    return result;
}

}  // namespace runner::selftest
