// The memory pool behind Array (tensor/pool.hpp): blocks are aligned, reused by size class, and
// handed back by pool_trim().
#include <cstdint>
#include <thread>

#include "test_util.hpp"

using namespace xg;

BOOST_AUTO_TEST_SUITE(pool)

BOOST_AUTO_TEST_CASE(blocks_are_aligned_and_reused_by_size_class) {
  PoolAllocator<float> a;
  for (std::size_t n : {1u, 7u, 16u, 255u, 1000u, 4097u, 100000u}) {
    float* p = a.allocate(n);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(p) % 64 == 0u);
    for (std::size_t i = 0; i < n; ++i) p[i] = 1.f;  // the whole block is usable
    a.deallocate(p, n);
    const PoolStats before = pool_stats();
    float* q = a.allocate(n);  // same class: the freed block comes back, no system call
    BOOST_TEST(q == p);
    BOOST_TEST(pool_stats().reuses == before.reuses + 1);
    BOOST_TEST(pool_stats().system_allocs == before.system_allocs);
    a.deallocate(q, n);
  }
}

BOOST_AUTO_TEST_CASE(a_class_is_at_most_a_sixteenth_larger_than_asked) {
  // 100,000 floats (400,000 bytes) and 102,000 share a class, (393,216, 409,600] bytes: above
  // 2^18 the classes are 2^14 bytes apart. 110,000 floats do not.
  PoolAllocator<float> a;
  float* p = a.allocate(100000);
  a.deallocate(p, 100000);
  float* q = a.allocate(102000);
  BOOST_TEST(q == p);
  a.deallocate(q, 102000);
  float* r = a.allocate(110000);
  BOOST_TEST(r != p);
  a.deallocate(r, 110000);
}

BOOST_AUTO_TEST_CASE(arrays_reuse_blocks_and_trim_hands_them_back) {
  { Array<float> warm = empty<float>(Shape{64, 64}); }
  const PoolStats before = pool_stats();
  for (int i = 0; i < 10; ++i) {
    Array<float> x = empty<float>(Shape{64, 64});
    x.fill(1.f);
  }
  BOOST_TEST(pool_stats().system_allocs == before.system_allocs);
  BOOST_TEST(pool_stats().cached_bytes >= 64u * 64u * sizeof(float));
  pool_trim();
  BOOST_TEST(pool_stats().cached_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(blocks_may_be_freed_on_another_thread) {
  PoolAllocator<double> a;
  double* p = a.allocate(300);
  p[299] = 2.0;
  std::thread([&] { a.deallocate(p, 300); }).join();  // that thread's cache, freed as it ends
  double* q = a.allocate(300);
  q[0] = 1.0;
  a.deallocate(q, 300);
  BOOST_TEST(pool_limit() > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
