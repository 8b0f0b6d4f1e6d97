#include "runner/engine/job_thread.h"

#include <utility>

namespace runner {

JobThread::JobThread() : thread_([this] { run(); }) {}

JobThread::~JobThread() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    given_.notify_one();
    thread_.join();
}

void JobThread::submit(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
    }
    given_.notify_one();
}

void JobThread::wait() {
    while (!wait_for(std::chrono::hours(1))) {
    }
}

bool JobThread::wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!idle_.wait_for(lock, timeout, [this] { return jobs_.empty() && !running_; })) return false;
    if (auto error = std::exchange(error_, nullptr)) std::rethrow_exception(error);
    return true;
}

void JobThread::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        given_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopped, and every job given has run
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        running_ = true;
        lock.unlock();
        std::exception_ptr error;
        try {
            job();
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        running_ = false;
        if (error && !error_) error_ = error;
        if (jobs_.empty()) idle_.notify_all();
    }
}

}  // namespace runner
