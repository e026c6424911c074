// Fused elementwise expressions (autograd/fuse.hpp): one pass, one record, the derivative from
// the expression itself. Values by hand and against the unfused ops; gradients by gradcheck.
#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::mentions;
using xg::test::rnd;

BOOST_AUTO_TEST_SUITE(fused)

BOOST_AUTO_TEST_CASE(hand_worked_value_and_gradient) {
  // y = a b + 2 - c / a at a = (1, 2), b = (3, 4), c = (4, 8): (3 + 2 - 4, 8 + 2 - 4) = (1, 6)
  Var<double> a(Array<double>{1, 2}, true), b(Array<double>{3, 4}, true), c(Array<double>{4, 8}, true);
  Var<double> y = fuse("test", [](auto a, auto b, auto c) { return a * b + 2 - c / a; }, a, b, c);
  BOOST_TEST(test::close(y.value(), Array<double>{1, 6}));
  BOOST_TEST(std::string(y.op()) == "test");
  BOOST_TEST(Tape<double>::current().size() == 1u);  // one record for five ops
  sum(y).backward();
  // dy/da = b + c / a^2 = (7, 6); dy/db = a = (1, 2); dy/dc = -1 / a = (-1, -0.5)
  BOOST_TEST(test::close(a.grad(), Array<double>{7, 6}));
  BOOST_TEST(test::close(b.grad(), Array<double>{1, 2}));
  BOOST_TEST(test::close(c.grad(), Array<double>{-1, -0.5}));
}

BOOST_AUTO_TEST_CASE(every_function_matches_the_unfused_ops) {
  // Shape [3, 5]: 15 elements, so both full SIMD batches and a padded tail are exercised.
  Var<double> x(rnd({3, 5}, 1, 0.2, 2.0)), z(rnd({3, 5}, 2, -2, 2));
  auto check = [](const Var<double>& fused, const Var<double>& plain) {
    BOOST_TEST(test::close(fused.value(), plain.value(), 1e-13, 1e-13));
  };
  check(fuse("f", [](auto v) { return sigmoid(v); }, z), sigmoid(z));
  check(fuse("f", [](auto v) { return tanh(v); }, z), tanh(z));
  check(fuse("f", [](auto v) { return exp(v); }, z), exp(z));
  check(fuse("f", [](auto v) { return log(v); }, x), log(x));
  check(fuse("f", [](auto v) { return sqrt(v); }, x), sqrt(x));
  check(fuse("f", [](auto v) { return relu(v); }, z), relu(z));
  check(fuse("f", [](auto v) { return abs(v); }, z), abs(z));
  check(fuse("f", [](auto v) { return square(v); }, z), z * z);
  check(fuse("f", [](auto v) { return pow(v, 1.5); }, x), pow(x, 1.5));
  check(fuse("f", [](auto v, auto w) { return 1 - v / w + 3 * -v; }, z, x), 1.0 - z / x + (-z) * 3.0);
}

BOOST_AUTO_TEST_CASE(gradcheck_every_function) {
  const Array<double> pos = rnd({3, 5}, 3, 0.3, 2.0), any = rnd({3, 5}, 4, -2, 2);
  expect_gradcheck([](const std::vector<Var<double>>& v) {
    return fuse("chain", [](auto p, auto a) {
      return sigmoid(a) * tanh(p) + exp(a) / p - log(p) * sqrt(p) + square(a) - pow(p, 2.5) + relu(a) * abs(a);
    }, v[0], v[1]);
  }, {pos, any});
  // Each function on its own, so one wrong derivative cannot hide behind another.
  expect_gradcheck([](const std::vector<Var<double>>& v) { return fuse("s", [](auto a) { return sigmoid(a); }, v[0]); }, {any});
  expect_gradcheck([](const std::vector<Var<double>>& v) { return fuse("t", [](auto a) { return tanh(a); }, v[0]); }, {any});
  expect_gradcheck([](const std::vector<Var<double>>& v) { return fuse("l", [](auto a) { return log(a); }, v[0]); }, {pos});
  expect_gradcheck([](const std::vector<Var<double>>& v) { return fuse("q", [](auto a) { return sqrt(a); }, v[0]); }, {pos});
  expect_gradcheck([](const std::vector<Var<double>>& v) { return fuse("p", [](auto a) { return pow(a, -0.7); }, v[0]); }, {pos});
  expect_gradcheck([](const std::vector<Var<double>>& v) {
    return fuse("d", [](auto a, auto b) { return 2 / a - b / a + (a - 1.5) * b; }, v[0], v[1]);
  }, {pos, any});
}

BOOST_AUTO_TEST_CASE(views_broadcast_operands_and_repeats) {
  // Gate slices of one matrix (views read in place), a bias over the rows, a one-element scale
  // and the same operand twice: the LSTM-like update h = sigmoid(zo + b) * tanh(s * zc + zc).
  const Array<double> z0 = rnd({4, 6}, 5), b0 = rnd({3}, 6), s0 = rnd({1}, 7);
  auto f = [](const std::vector<Var<double>>& v) {
    Var<double> z = v[0] * 1.0;  // a recorded result, so its slices are views
    Var<double> zo = slice(z, 1, 0, 3), zc = slice(z, 1, 3, 3);
    return fuse("h", [](auto zo, auto b, auto s, auto zc, auto zc2) { return sigmoid(zo + b) * tanh(s * zc + zc2); },
                zo, v[1], v[2], zc, zc);
  };
  expect_gradcheck(f, {z0, b0, s0});
  // And the value against the unfused ops, with the slices as views of a recorded result.
  Var<double> z = Var<double>(z0, true) * 1.0, b(b0), s(s0);
  Var<double> zo = slice(z, 1, 0, 3), zc = slice(z, 1, 3, 3);
  BOOST_TEST(zo.is_view());
  Var<double> want = sigmoid(zo + b) * tanh(s * zc + zc);
  Var<double> got = fuse("h", [](auto zo, auto b, auto s, auto zc) { return sigmoid(zo + b) * tanh(s * zc + zc); },
                         zo, b, s, zc);
  BOOST_TEST(test::close(got.value(), want.value(), 1e-13, 1e-13));
}

BOOST_AUTO_TEST_CASE(float32_matches_the_unfused_ops) {
  Var<float> zf(rnd<float>({7, 33}, 8)), c(rnd<float>({7, 33}, 9)), zi(rnd<float>({7, 33}, 10)), zg(rnd<float>({7, 33}, 11));
  for (Var<float>* v : {&zf, &c, &zi, &zg}) v->set_requires_grad(true);
  auto cell = [](auto zf, auto c, auto zi, auto zg) { return sigmoid(zf) * c + sigmoid(zi) * tanh(zg); };
  Var<float> got = fuse("lstm_c", cell, zf, c, zi, zg);
  Var<float> want = sigmoid(zf) * c + sigmoid(zi) * tanh(zg);
  BOOST_TEST(float(xt::amax(xt::abs(got.value() - want.value()))()) < 1e-6f);
  sum(got * got).backward(true);  // keep the graph: `want` is on the same tape
  const Array<float> g_fused = zi.grad();
  zi.zero_grad();
  sum(want * want).backward();
  BOOST_TEST(float(xt::amax(xt::abs(g_fused - zi.grad()))()) < 1e-5f);
}

BOOST_AUTO_TEST_CASE(only_operands_that_need_it_get_a_gradient) {
  Var<double> a(Array<double>{1, 2}, true), k(Array<double>{3, 4});
  sum(fuse("m", [](auto a, auto k) { return a * k; }, a, k)).backward();
  BOOST_TEST(test::close(a.grad(), Array<double>{3, 4}));
  BOOST_TEST(!k.has_grad());
}

BOOST_AUTO_TEST_CASE(nothing_is_recorded_without_grad) {
  Var<double> a(Array<double>{1, 2}, true);
  {
    NoGradGuard no_grad;
    Var<double> y = fuse("m", [](auto a) { return a * a; }, a);
    BOOST_TEST(test::close(y.value(), Array<double>{1, 4}));
    BOOST_TEST(!y.requires_grad());
  }
  BOOST_TEST(Tape<double>::current().size() == 0u);
}

BOOST_AUTO_TEST_CASE(bad_operands_are_named) {
  Var<double> a(rnd({2, 3}, 1)), b(rnd({3, 2}, 2)), c(rnd({2}, 3));
  BOOST_CHECK_EXCEPTION(fuse("my_cell", [](auto x, auto y) { return x * y; }, a, b), ShapeError,
                        mentions({"my_cell", "operand 1", "(3, 2)", "(2, 3)"}));
  BOOST_CHECK_EXCEPTION(fuse("my_cell", [](auto x, auto y) { return x * y; }, a, c), ShapeError,
                        mentions({"my_cell", "operand 1", "(2,)"}));
  BOOST_CHECK_EXCEPTION(fuse("my_cell", [](auto x, auto y) { return x * y; }, a, Var<double>()), TapeError,
                        mentions({"my_cell", "operand 1", "undefined"}));
}

BOOST_AUTO_TEST_CASE(the_lstm_cell_fused_equals_its_ops) {
  // nn::lstm_step is fused; the same step from unfused ops gives the same h, c and gradients.
  const std::size_t B = 3, H = 5;
  Var<double> xp(rnd({B, 4 * H}, 12), true), h(rnd({B, H}, 13), true), c(rnd({B, H}, 14), true);
  Var<double> w(rnd({4 * H, H}, 15), true);
  auto [h1, c1] = nn::lstm_step(xp, h, c, w);
  Var<double> g = addmm(xp, h, w, NoTrans, DoTrans);
  auto z = chunk(g, 4, -1);
  Var<double> c2 = sigmoid(z[1]) * c + sigmoid(z[0]) * tanh(z[2]);
  Var<double> h2 = sigmoid(z[3]) * tanh(c2);
  BOOST_TEST(test::close(h1.value(), h2.value(), 1e-14, 1e-14));
  BOOST_TEST(test::close(c1.value(), c2.value(), 1e-14, 1e-14));
  sum(h1 * c1).backward(true);  // keep the graph: h2 and c2 are on the same tape
  const Array<double> gw = w.grad(), gxp = xp.grad(), gc = c.grad();
  w.zero_grad(), xp.zero_grad(), c.zero_grad(), h.zero_grad();
  sum(h2 * c2).backward();
  BOOST_TEST(test::close(gw, w.grad(), 1e-12, 1e-13));
  BOOST_TEST(test::close(gxp, xp.grad(), 1e-12, 1e-13));
  BOOST_TEST(test::close(gc, c.grad(), 1e-12, 1e-13));
  expect_gradcheck([&](const std::vector<Var<double>>& v) {
    auto [hn, cn] = nn::lstm_step(v[0], v[1], v[2], v[3]);
    return hn * 2.0 + cn;
  }, {xp.value(), h.value(), c.value(), w.value()});
}

BOOST_AUTO_TEST_SUITE_END()
