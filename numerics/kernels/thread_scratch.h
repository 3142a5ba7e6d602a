#pragma once
// Per-thread scratch memory kept across calls, for the golden GEMM's packed operands and tile
// state (megabytes each). Fresh allocations of that size come from mmap, and each call then
// paid one page fault per 4 KiB page it wrote: a third of the packing time measured on this
// project's VM. A slot keeps its block until a larger request replaces it (or the thread
// ends). Blocks of 2 MiB or more are 2 MiB-aligned and ask for transparent huge pages, which
// also spares the TLB while kernels stream through them; smaller blocks stay small (a huge
// page costs 2 MiB of zeroing, more than a small GEMM takes) and are 64-byte aligned.
//
// Slots are the values of a caller's enum class whose last value is `count`; every enum type
// has blocks of its own, so two files cannot hand out the same memory by accident. The memory
// of a slot stays valid until the same thread asks for that slot again.
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

namespace gsqhw {

template <typename T, typename Slot>
class ThreadScratchArray {
 public:
  // At least `count` elements of `slot`, zero-filled if `zeroed` (otherwise whatever the last
  // user left).
  ThreadScratchArray(Slot slot, size_t count, bool zeroed) {
    static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= 64);
    const size_t bytes = std::max<size_t>(count, 1) * sizeof(T);
    Block& block = blocks()[static_cast<size_t>(slot)];
    if (block.bytes < bytes) block.reset(bytes);
    data_ = static_cast<T*>(block.data.get());
    if (zeroed) std::memset(static_cast<void*>(data_), 0, bytes);
  }
  T* data() { return data_; }
  T& operator[](size_t i) { return data_[i]; }

 private:
  static constexpr size_t kHugePage = size_t{2} << 20;
  struct Block {
    size_t bytes = 0;
    std::unique_ptr<void, decltype(&std::free)> data{nullptr, &std::free};
    void reset(size_t min_bytes) {
      data.reset();
      const bool huge = min_bytes >= kHugePage;
      const size_t alignment = huge ? kHugePage : 64;
      bytes = (min_bytes + alignment - 1) / alignment * alignment;
      data.reset(std::aligned_alloc(alignment, bytes));
      if (!data) {
        bytes = 0;
        throw std::bad_alloc();
      }
      if (huge) madvise(data.get(), bytes, MADV_HUGEPAGE);  // a hint: without THP, 4 KiB pages
    }
  };
  static std::array<Block, static_cast<size_t>(Slot::count)>& blocks() {
    thread_local std::array<Block, static_cast<size_t>(Slot::count)> per_thread;
    return per_thread;
  }
  T* data_;
};

}  // namespace gsqhw
