// Result<T>: a value or an error message, for operations where failure is normal (parsing files the
// user hands us, reading sysfs). g++ 12 in C++20 has no std::expected; this is the small subset we use.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace common {

// An error carries its full context already (file, line or key, expected, found), ready to print.
struct Error {
    std::string message;
};

template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    // Accessing the wrong alternative is a programming error, so it throws rather than returning junk.
    T& value() & {
        check_ok();
        return std::get<0>(state_);
    }
    const T& value() const& {
        check_ok();
        return std::get<0>(state_);
    }
    T&& value() && {
        check_ok();
        return std::get<0>(std::move(state_));
    }
    const Error& error() const {
        if (ok()) throw std::logic_error("Result::error() on a value");
        return std::get<1>(state_);
    }

    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

  private:
    void check_ok() const {
        if (!ok()) throw std::logic_error("Result::value() on an error: " + std::get<1>(state_).message);
    }
    std::variant<T, Error> state_;
};

inline Error make_error(std::string message) { return Error{std::move(message)}; }

}  // namespace common
