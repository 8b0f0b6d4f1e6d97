// A shared library opened at run time (dlopen) and its entry points, for the libraries a build must not
// link against: rocm-smi-lib in rocm-probe, rocBLAS in the runner's ROCm build and in rocm-probe. Closed
// when the owner goes; entry points taken from it must not outlive it.
#pragma once

#include <dlfcn.h>

#include <memory>
#include <string>
#include <utility>

#include "common/result.h"

namespace common {

class SharedLibrary {
  public:
    // The loader's reason when it cannot be loaded ("libx.so.1: cannot open shared object file: ...").
    static Result<SharedLibrary> open(const std::string& path) {
        SharedLibrary lib;
        lib.handle_.reset(::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
        if (lib.handle_) return Result<SharedLibrary>(std::move(lib));  // nvcc does not move into a Result implicitly
        const char* why = ::dlerror();
        return make_error(why ? std::string(why) : path + ": cannot be loaded");
    }

    // `out` typed as the entry point is declared; false when the library has no such symbol.
    template <class Fn>
    bool bind(const char* symbol, Fn& out) const {
        out = reinterpret_cast<Fn>(::dlsym(handle_.get(), symbol));
        return out != nullptr;
    }

  private:
    struct Closer {
        void operator()(void* handle) const { ::dlclose(handle); }
    };
    std::unique_ptr<void, Closer> handle_;
};

}  // namespace common
