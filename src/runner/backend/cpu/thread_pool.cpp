#include "runner/backend/cpu/thread_pool.h"

namespace runner::cpu {

namespace {

std::pair<std::size_t, std::size_t> share(std::size_t n, unsigned parts, unsigned index) {
    const std::size_t begin = n * index / parts;
    const std::size_t end = n * (index + 1) / parts;
    return {begin, end};
}

}  // namespace

ThreadPool::ThreadPool(unsigned threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    start_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn) {
    if (workers_.empty() || n < 2) {
        if (n) fn(0, n);
        return;
    }
    {
        std::lock_guard lock(mutex_);
        job_ = &fn;
        n_ = n;
        pending_ = static_cast<unsigned>(workers_.size());
        ++generation_;
    }
    start_.notify_all();
    const auto [begin, end] = share(n, size(), 0);
    if (begin < end) fn(begin, end);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
}

void ThreadPool::work(unsigned index) {
    unsigned seen = 0;
    for (;;) {
        const std::function<void(std::size_t, std::size_t)>* job;
        std::size_t n;
        {
            std::unique_lock lock(mutex_);
            start_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            job = job_;
            n = n_;
        }
        const auto [begin, end] = share(n, size(), index);
        if (begin < end) (*job)(begin, end);
        {
            std::lock_guard lock(mutex_);
            --pending_;
        }
        done_.notify_one();
    }
}

}  // namespace runner::cpu
