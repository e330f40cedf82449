// A growable array for runtime metadata of trivially copyable elements
// (timer heaps), mapped straight from the OS: runtime metadata never comes
// from malloc. Growth doubles the capacity into a fresh mapping and unmaps
// the old one, so the caller must hold whatever lock guards the array.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstring>
#include <type_traits>

namespace rt::internal {

[[noreturn]] void throw_fatal(const char* msg);

template <class T>
class MetaVector {
  static_assert(std::is_trivially_copyable_v<T>, "MetaVector holds trivially copyable elements");

 public:
  MetaVector() = default;
  MetaVector(const MetaVector&) = delete;
  MetaVector& operator=(const MetaVector&) = delete;
  ~MetaVector() {
    if (data_ != nullptr) munmap(data_, cap_ * sizeof(T));
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }

  void push_back(const T& v) {
    if (size_ == cap_) grow();
    data_[size_++] = v;
  }
  void pop_back() { size_--; }
  void clear() { size_ = 0; }

 private:
  void grow() {
    size_t cap = cap_ == 0 ? 4096 / sizeof(T) : cap_ * 2;
    void* mem = mmap(nullptr, cap * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw_fatal("out of memory growing runtime metadata array");
    if (data_ != nullptr) {
      memcpy(mem, data_, size_ * sizeof(T));
      munmap(data_, cap_ * sizeof(T));
    }
    data_ = static_cast<T*>(mem);
    cap_ = cap;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

}  // namespace rt::internal
