// set_flush_denormals: products that would be denormal become 0, denormal inputs read as 0, the
// mode belongs to each thread (new threads inherit it), and the guard restores it.
#include <limits>
#include <thread>

#include "test_util.hpp"

using namespace xg;

namespace {
// volatile keeps the compiler from folding the arithmetic at compile time.
float half_of_smallest_float() {
  volatile float x = std::numeric_limits<float>::min();  // smallest normal, about 1.2e-38
  volatile float half = 0.5f;
  return x * half;
}
double half_of_smallest_double() {
  volatile double x = std::numeric_limits<double>::min();
  volatile double half = 0.5;
  return x * half;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(denormals)

BOOST_AUTO_TEST_CASE(flushing_turns_denormal_results_and_inputs_into_zero) {
  FlushDenormalsGuard off(false);
  BOOST_TEST(!flush_denormals());
  const float denormal = half_of_smallest_float();
  BOOST_TEST(denormal > 0.f);
  BOOST_TEST(denormal < std::numeric_limits<float>::min());
  BOOST_TEST(half_of_smallest_double() > 0.0);

  BOOST_TEST(!set_flush_denormals(true));  // it was off
  BOOST_TEST(flush_denormals());
  BOOST_TEST(half_of_smallest_float() == 0.f);  // FTZ: the result is flushed
  BOOST_TEST(half_of_smallest_double() == 0.0);
  volatile float in = denormal, one = 1.f;
  BOOST_TEST(in * one == 0.f);  // DAZ: the input is read as 0
  volatile float normal = 1e-30f;
  BOOST_TEST(normal * one == 1e-30f);  // normal numbers are untouched

  BOOST_TEST(set_flush_denormals(false));  // it was on
  BOOST_TEST(half_of_smallest_float() > 0.f);
}

BOOST_AUTO_TEST_CASE(the_mode_belongs_to_each_thread_and_new_threads_inherit_it) {
  // (Linux: a thread starts with the mode of the thread that created it.)
  auto in_new_thread = [] {
    bool flushes = false;
    float result = -1.f;
    std::thread t([&] {
      flushes = flush_denormals();
      result = half_of_smallest_float();
      set_flush_denormals(!flushes);  // changes that thread only
    });
    t.join();
    return std::pair{flushes, result};
  };
  {
    FlushDenormalsGuard on(true);
    const auto [flushes, result] = in_new_thread();
    BOOST_TEST(flushes);
    BOOST_TEST(result == 0.f);
    BOOST_TEST(flush_denormals());  // the other thread turned it off for itself only
  }
  FlushDenormalsGuard off(false);
  const auto [flushes, result] = in_new_thread();
  BOOST_TEST(!flushes);
  BOOST_TEST(result > 0.f);
  BOOST_TEST(!flush_denormals());
}

BOOST_AUTO_TEST_CASE(the_guard_restores_the_previous_mode) {
  set_flush_denormals(false);
  {
    FlushDenormalsGuard on(true);
    BOOST_TEST(flush_denormals());
    {
      FlushDenormalsGuard off(false);
      BOOST_TEST(!flush_denormals());
    }
    BOOST_TEST(flush_denormals());
  }
  BOOST_TEST(!flush_denormals());
}

BOOST_AUTO_TEST_SUITE_END()
