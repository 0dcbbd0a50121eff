#pragma once
// A blocking FIFO of bounded capacity between one producer thread and one consumer thread (the
// decode worker and the inference loop). push() waits while the queue is full, so a producer that
// is faster than its consumer is held back and memory stays bounded; close() wakes both sides.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

namespace vidfeat {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // Waits for room; returns false (and drops `item`) once the queue is closed.
  bool push(T item) {
    std::unique_lock<std::mutex> lock(mutex_);
    notFull_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    notEmpty_.notify_one();
    return true;
  }

  // Takes the oldest item, waiting until `deadline` at most. False when none came in time.
  bool popUntil(T& out, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!notEmpty_.wait_until(lock, deadline, [&] { return closed_ || !items_.empty(); }))
      return false;
    if (items_.empty()) return false;
    out = std::move(items_.front());
    items_.pop_front();
    notFull_.notify_one();
    return true;
  }

  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    notFull_.notify_all();
    notEmpty_.notify_all();
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_.size();
  }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable notFull_, notEmpty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace vidfeat
