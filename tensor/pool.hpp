// The memory pool behind every Array, tape node and large backward closure.
//
// A training step allocates and frees the same blocks over and over: each op's result, each
// gradient, each node. The pool keeps freed blocks in per-thread free lists, one list per size
// class, and hands them out again, so after the first step a step makes no call to malloc.
//
// Size classes: multiples of 64 bytes up to 1 KiB, then 16 classes per power of two (a block is
// at most 1/16 larger than asked). Every block is 64-byte aligned (xsimd loads, cache lines).
// A block freed on another thread joins that thread's lists. Cached blocks are returned to the
// system when a thread ends, by `pool_trim()`, or when a thread's cache passes its limit.
//
// Under AddressSanitizer the cached blocks are poisoned, so a use after free is still reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

namespace xg {

/// Counters of this thread's pool (for tests and benchmarks).
struct PoolStats {
  std::uint64_t system_allocs = 0;  // blocks obtained from the system (a cache miss)
  std::uint64_t reuses = 0;         // blocks served from the cache
  std::size_t cached_bytes = 0;     // bytes held in the cache now
};

/// This thread's pool counters.
PoolStats pool_stats();

/// Returns this thread's cached blocks to the system.
void pool_trim();

/// The most bytes a thread's cache holds before frees go straight to the system
/// (default 1 GiB; XGRAD_POOL_LIMIT_MB overrides it at start-up, and XGRAD_POOL=0 turns the
/// pool off: every block then comes from the system and goes back to it, for memory tools).
std::size_t pool_limit();

namespace detail {
/// A 64-byte aligned block of at least `bytes` bytes (never null; throws std::bad_alloc).
void* pool_allocate(std::size_t bytes);
/// Gives back a block from pool_allocate with the same `bytes`.
void pool_deallocate(void* p, std::size_t bytes) noexcept;
}  // namespace detail

// The allocator lives in a namespace of its own: it is an associated namespace of every Array
// (argument-dependent lookup), and xtensor's unqualified calls inside (sum, mean) must not find
// xgrad's ops there.
namespace mem {

/// A standard allocator over the pool: `xg::Array<T>` stores its elements with it.
template <class T>
struct PoolAllocator {
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_move_assignment = std::true_type;
  using is_always_equal = std::true_type;
  template <class U>
  struct rebind {
    using other = PoolAllocator<U>;
  };

  PoolAllocator() noexcept = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}  // NOLINT: converting, as allocators are

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(detail::pool_allocate(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { detail::pool_deallocate(p, n * sizeof(T)); }

  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const PoolAllocator<U>&) const noexcept {
    return false;
  }
};

}  // namespace mem

using mem::PoolAllocator;

/// A std::vector whose storage comes from the pool (recurrent states, per-step lists).
template <class T>
using PoolVector = std::vector<T, PoolAllocator<T>>;

}  // namespace xg
