// 64-byte aligned heap buffers (a cache line, an AVX-512 register) for packed data and scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sys/mman.h>
#include <cstring>
#include <string>
#include <utility>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

constexpr std::size_t kAlignment = 64;

inline std::size_t align_up(std::size_t bytes, std::size_t a = kAlignment) {
  return (bytes + a - 1) / a * a;
}

// Bytes of `count` elements of `elem` bytes rounded up to the alignment, or Error when that does not
// fit size_t: every buffer size in the library passes through here.
inline std::size_t aligned_bytes(std::size_t count, std::size_t elem) {
  std::size_t bytes;
  if (__builtin_mul_overflow(count, elem, &bytes) || bytes > SIZE_MAX - kAlignment)
    throw Error("buffer of " + std::to_string(count) + " elements of " + std::to_string(elem) +
                " bytes: the size overflows size_t");
  return align_up(bytes);
}

// 64-byte aligned memory, or Error "out of memory: needs N bytes" (a library error, not bad_alloc,
// so callers see which size failed). Released with std::free.
inline void* aligned_allocate(std::size_t bytes) {
  // Buffers of 2 MiB and more (packed weights of deep layers, large workspaces) on transparent huge
  // pages where the kernel gives them on request (THP "madvise", Debian's default): streamed from
  // memory, as a network's weights are at batch 1, they would cost a page walk every 4 KiB. Measured
  // 2-6% on cold 7x7 layers of 512-2048 channels (Xeon, weights rotated through 16 copies).
  constexpr std::size_t kHugePage = std::size_t(2) << 20;
  const bool huge = bytes >= kHugePage && bytes <= SIZE_MAX - kHugePage;
  const std::size_t rounded = huge ? (bytes + kHugePage - 1) / kHugePage * kHugePage : bytes;
  void* p = std::aligned_alloc(huge ? kHugePage : kAlignment, rounded);
  if (!p) throw Error("out of memory: needs " + std::to_string(bytes) + " bytes");
#ifdef MADV_HUGEPAGE
  if (huge) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
#endif
  return p;
}

template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t count) : size_(count) {
    if (count == 0) return;
    data_ = static_cast<T*>(aligned_allocate(aligned_bytes(count, sizeof(T))));
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  void zero() {
    if (data_) std::memset(static_cast<void*>(data_), 0, size_ * sizeof(T));
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// Carves aligned sub-buffers out of one workspace block, in a fixed order, so that
// workspace_bytes() and execute() agree exactly on the layout.
class WorkspaceLayout {
 public:
  // Reserves `count` elements of T and returns the offset in bytes (Error when the total overflows).
  template <class T>
  std::size_t add(std::size_t count) {
    const std::size_t offset = bytes_;
    if (__builtin_add_overflow(bytes_, aligned_bytes(count, sizeof(T)), &bytes_))
      throw Error("workspace layout: the total size overflows size_t");
    return offset;
  }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_ = 0;
};

template <class T>
T* at_offset(void* base, std::size_t offset) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

}  // namespace fastconv::detail
