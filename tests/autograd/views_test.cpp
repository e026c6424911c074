// Views (slice, select, reshape share a recorded result's storage) and what the tape keeps alive
// (Saves: values no backward reads are freed as soon as the program drops them).
#include <malloc.h>

#include "test_util.hpp"

#if defined(__SANITIZE_ADDRESS__)
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();  // in the ASan runtime
#endif

using namespace xg;
using xg::test::mentions;

namespace {
// Bytes of heap holding live values (ASan replaces malloc, so ask its allocator under ASan):
// blocks cached in xgrad's pool are free for reuse, so they do not count.
std::size_t heap_in_use() {
#if defined(__SANITIZE_ADDRESS__)
  const std::size_t used = __sanitizer_get_current_allocated_bytes();
#else
  const std::size_t used = mallinfo2().uordblks;
#endif
  return used - pool_stats().cached_bytes;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(views)

BOOST_AUTO_TEST_CASE(windows_of_results_are_views_windows_of_leaves_are_copies) {
  Var<double> w(Array<double>{{1, 2, 3}, {4, 5, 6}}, true);
  Var<double> y = w * 2.0;  // a recorded result: immutable, so windows of it can share it
  Var<double> s = slice(y, 1, 1, 2);
  BOOST_TEST(s.is_view());
  BOOST_TEST(test::close(s.value(), Array<double>{{4, 6}, {10, 12}}));
  Var<double> r = select(y, 0, 1);
  BOOST_TEST(r.is_view());
  BOOST_TEST(test::close(r.value(), Array<double>{8, 10, 12}));
  Var<double> m = reshape(y, {3, 2});
  BOOST_TEST(m.is_view());
  BOOST_TEST(test::close(m.value(), Array<double>{{2, 4}, {6, 8}, {10, 12}}));
  Var<double> rs = select(slice(y, 1, 1, 2), 0, 1);  // a view of a strided view
  BOOST_TEST(test::close(rs.value(), Array<double>{10, 12}));

  // A leaf can be updated in place (an optimizer step), so a window of it is a copy.
  Var<double> c = select(w, 0, 0);
  BOOST_TEST(!c.is_view());
  {
    NoGradGuard ng;
    w.mutable_value()(0, 0) = 100;
  }
  BOOST_TEST(c.value()(0) == 1.0);

  // Under NoGradGuard a window of a result is a leaf view; updating it copies it first.
  NoGradGuard ng;
  Var<double> v = select(y, 0, 0);
  BOOST_TEST(v.is_view());
  v.mutable_value()(0) = -1;
  BOOST_TEST(v.value()(0) == -1.0);
  BOOST_TEST(y.value()(0, 0) == 2.0);  // the base is untouched
}

BOOST_AUTO_TEST_CASE(gradients_through_views_hand_worked) {
  // loss = sum(a^2) + sum(3 b) with [a | b] = chunk(x * 1, 2, -1): dx = [2a | 3]
  Var<double> x(Array<double>{{1, -2, 3, 4}, {0.5, 6, -7, 8}}, true);
  std::vector<Var<double>> ab = chunk(x * 1.0, 2, -1);
  BOOST_TEST(ab[0].is_view());
  Var<double> loss = sum(ab[0] * ab[0]) + sum(ab[1] * 3.0);
  loss.backward();
  BOOST_TEST(test::close(x.grad(), Array<double>{{2, -4, 3, 3}, {1, 12, 3, 3}}));
}

BOOST_AUTO_TEST_CASE(views_gradcheck) {
  // Views read in place by unary ops and by addmm's c, materialised by a broadcasting product,
  // a view of a view, a reshape of a view, and a view used twice.
  auto f = [](const std::vector<Var<double>>& in) {
    const Var<double>& x = in[0];  // [3, 8]
    const Var<double>& w = in[1];  // [2, 2]
    Var<double> y = tanh(x) * 1.5;
    std::vector<Var<double>> g = chunk(y, 4, -1);                // four [3, 2] views
    Var<double> a = sigmoid(g[0]) * tanh(g[2]);                   // read in place
    Var<double> b = addmm(g[1], reshape(g[3], {3, 2}), transpose(w) * 1.0);  // c is a view
    Var<double> row = select(slice(y, 0, 1, 2), 0, 1);           // [8], a view of a view
    Var<double> bias = reshape(row, {1, 8});
    Var<double> c = slice(bias, 1, 0, 2) * g[1];                  // broadcast: materialised
    return sum(a * b) + sum(c) + sum(g[1] * g[1]);
  };
  test::expect_gradcheck(f, {test::rnd({3, 8}, 11), test::rnd({2, 2}, 12)});
}

BOOST_AUTO_TEST_CASE(binary_ops_read_views_in_place) {
  // Strided gate slices, a contiguous select and a dense value, combined without copies.
  Var<double> y(Array<double>{{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}}, true);
  Var<double> z(Array<double>{{{0, 0}, {0, 0}}, {{1, -1}, {2, -2}}}, true);
  std::vector<Var<double>> g = chunk(y * 1.0, 3, -1);  // [2, 2] each: {1,2;7,8} {3,4;9,10} ...
  Var<double> s = select(z * 1.0, 0, 1);                // {1,-1; 2,-2}
  BOOST_TEST(g[1].is_view());
  BOOST_TEST(s.is_view());
  BOOST_TEST(test::close((g[1] * s).value(), Array<double>{{3, -4}, {18, -20}}));
  BOOST_TEST(test::close((g[0] - g[2]).value(), Array<double>{{-4, -4}, {-4, -4}}));
  BOOST_TEST(test::close(maximum(g[0], s * 4.0).value(), Array<double>{{4, 2}, {8, 8}}));

  auto f = [](const std::vector<Var<double>>& in) {
    std::vector<Var<double>> c = chunk(in[0] * 1.0, 3, -1);
    Var<double> t = select(in[1] * 1.0, 0, 1);
    Var<double> d = in[2];  // dense, same shape
    return sum(c[0] * t + c[1] / (c[2] * c[2] + 2.0) - t * d + minimum(c[0], t) +
               pow(c[1] * c[1] + 1.0, t) + (c[2] - d) * c[0]);
  };
  test::expect_gradcheck(f, {test::rnd({2, 6}, 21), test::rnd({3, 2, 2}, 22), test::rnd({2, 2}, 23)});
}

BOOST_AUTO_TEST_CASE(a_view_that_retains_its_gradient) {
  Var<double> x(Array<double>{1, 2, 3, 4}, true);
  Var<double> v = slice(x * 2.0, 0, 1, 2);  // [4, 6]
  v.retain_grad();
  sum(v * v).backward();
  BOOST_TEST(test::close(v.grad(), Array<double>{8, 12}));
  BOOST_TEST(test::close(x.grad(), Array<double>{0, 16, 24, 0}));  // d/dx of (2x)^2 = 8x
}

namespace {
// y = x, whose backward reads in(0) although it is recorded as reading nothing (a wrong Saves).
Var<double> reads_undeclared(const Var<double>& x, Saves saves) {
  return record("probe", Array<double>(x.value()), {x},
                [](Backward<double>& b) { b.add(0, b.grad() * b.in(0) / b.in(0)); }, saves);
}
}  // namespace

BOOST_AUTO_TEST_CASE(values_no_backward_reads_are_freed) {
  Var<double> w(Array<double>{1, 2, 3}, true);
  {
    // The handle to w * 2 is dropped and nothing declared that it reads it: it is freed, and a
    // backward that reads it anyway fails clearly instead of reading freed memory.
    Var<double> loss = sum(reads_undeclared(w * 2.0, saves_none));
    BOOST_CHECK_EXCEPTION(loss.backward(), TapeError,
                          mentions({"probe (backward)", "in(0)", "'mul_scalar'", "freed", "Saves"}));
    BOOST_TEST(Tape<double>::current().size() == 0u);  // a failed backward clears the tape
  }
  {
    // A handle keeps the value alive, but the read is still an error: a wrong declaration fails
    // on its first run, not only on the day a handle happens to be dropped.
    Var<double> kept = w * 2.0;
    Var<double> loss = sum(reads_undeclared(kept, saves_none));
    BOOST_CHECK_EXCEPTION(loss.backward(), TapeError, mentions({"probe (backward)", "in(0)", "Saves"}));
    BOOST_TEST(!w.has_grad());
  }
  {
    Var<double> loss = sum(reads_undeclared(w * 2.0, saves_all));  // the default keeps inputs
    loss.backward();
    BOOST_TEST(test::close(w.grad(), Array<double>{2, 2, 2}));
  }
}

BOOST_AUTO_TEST_CASE(lstm_forward_keeps_only_what_backward_reads) {
  // Per step an LSTM's backward reads the gate pre-activations (one [B, 4H] matrix, which the
  // fused cell recomputes its gates from), c and h: 6 [B, H] arrays. The input projection's
  // slices, the products and the activations are never stored.
  const std::size_t B = 32, H = 128, I = 8, T = 20;
  nn::LSTM<float> lstm(nn::LSTMOptions(I, H));
  Var<float> x(test::rnd<float>({T, B, I}, 3));
  const std::size_t step = B * H * sizeof(float);
  (void)lstm.forward(x);  // warm up (tape capacity, first-use allocations)
  Tape<float>::current().clear();
  const std::size_t before = heap_in_use();
  nn::RNNOutput<float> out = lstm.forward(x);
  const std::size_t kept = heap_in_use() - before;
  BOOST_TEST_MESSAGE("kept " << kept / double(step * T) << " [B, H] arrays per step");
  BOOST_TEST(kept < 9 * step * T);  // 6 per step, the stacked output and bookkeeping (was 21)
  BOOST_TEST(kept > 5 * step * T);  // the saved values are still there
  sum(out.output).backward();
  BOOST_TEST(lstm.parameters()[0].has_grad());
}

BOOST_AUTO_TEST_SUITE_END()
