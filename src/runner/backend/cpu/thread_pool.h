// A fixed set of worker threads for the CPU kernels: parallel_for splits [0, n) into one contiguous
// range per worker and returns when all are done. Created once per model, not per kernel call.
// A decode step is many short passes (a layer is about ten), so between passes the workers and the
// caller spin for a short while before they block: waking a sleeping thread costs tens of
// microseconds, which across 16 threads and ten passes a layer was a tenth of a layer's time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace runner::cpu {

class ThreadPool {
  public:
    explicit ThreadPool(unsigned threads);  // 0: one per hardware thread
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;
    ~ThreadPool();

    unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
    // fn(begin, end) over disjoint ranges covering [0, n); the calling thread takes a share.
    void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn);

  private:
    void work(unsigned index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;  // guards the sleeps only; a pass is published through generation_
    std::condition_variable start_, done_;
    const std::function<void(std::size_t, std::size_t)>* job_ = nullptr;
    std::size_t n_ = 0;
    std::atomic<unsigned> generation_ = 0;  // bumped (release) once job_ and n_ are set
    std::atomic<unsigned> pending_ = 0;     // workers still on the current pass
    std::atomic<bool> stop_ = false;
};

}  // namespace runner::cpu
