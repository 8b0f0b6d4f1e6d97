#include "runner/backend/cpu/thread_pool.h"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace runner::cpu {

namespace {

// Chunks per thread: enough that a slow thread's share goes to the others, few enough that taking one
// costs nothing beside it.
constexpr std::size_t chunks_per_thread = 4;

// Long enough to cover the gap between a layer's passes and, mostly, the GPU layer a decode step runs
// between two host layers; short enough that an idle server's threads are soon asleep.
constexpr auto spin_time = std::chrono::milliseconds(1);

void relax() {
#if defined(__x86_64__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

// Spins until done() or spin_time has passed; whether done() held. It yields now and then, so that on
// a machine with more runnable threads than cores the thread with work gets the core.
template <typename Done>
bool spin_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + spin_time;
    for (unsigned i = 1;; ++i) {
        if (done()) return true;
        relax();
        if (i % 64 == 0) {
            if (std::chrono::steady_clock::now() > deadline) return done();
            std::this_thread::yield();
        }
    }
}

}  // namespace

ThreadPool::ThreadPool(unsigned threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
        generation_.fetch_add(1, std::memory_order_release);
    }
    start_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn) {
    if (workers_.empty() || n < 2) {
        if (n) fn(0, n);
        return;
    }
    job_ = &fn;
    n_ = n;
    chunks_ = std::min(n, chunks_per_thread * size());
    next_chunk_.store(0, std::memory_order_relaxed);
    pending_.store(static_cast<unsigned>(workers_.size()), std::memory_order_relaxed);
    {
        // Under the lock, so that a worker deciding to sleep either sees the new pass or is woken.
        std::lock_guard lock(mutex_);
        generation_.fetch_add(1, std::memory_order_release);
    }
    start_.notify_all();
    run_chunks();
    const auto all_done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(all_done)) {
        std::unique_lock lock(mutex_);
        done_.wait(lock, all_done);
    }
    job_ = nullptr;
}

void ThreadPool::run_chunks() {
    for (;;) {
        const std::size_t chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed);
        if (chunk >= chunks_) return;
        (*job_)(n_ * chunk / chunks_, n_ * (chunk + 1) / chunks_);
    }
}

void ThreadPool::work() {
    unsigned seen = 0;
    for (;;) {
        const auto new_pass = [&] { return generation_.load(std::memory_order_acquire) != seen; };
        if (!spin_until(new_pass)) {
            std::unique_lock lock(mutex_);
            start_.wait(lock, new_pass);
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        run_chunks();
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // The last one wakes the caller if it gave up spinning; under the lock, so the wake
            // cannot fall between its check and its sleep.
            std::lock_guard lock(mutex_);
            done_.notify_one();
        }
    }
}

}  // namespace runner::cpu
