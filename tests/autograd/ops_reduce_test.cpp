// Reductions and the softmax family.
#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::mentions;
using xg::test::rnd;
using V = Var<double>;
using Vs = std::vector<V>;

BOOST_AUTO_TEST_SUITE(ops_reduce)

// sum/mean over axes with keepdims
BOOST_AUTO_TEST_CASE(sum_and_mean) {
  Array<double> x = {{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}};
  BOOST_TEST(sum(V(x)).value()() == 21.0);
  BOOST_TEST((sum(V(x), {0}).value() == Array<double>{5, 7, 9}));
  BOOST_TEST(sum(V(x), {-1}, true).shape() == (Shape{2, 1}));
  BOOST_TEST(mean(V(x)).value()() == 3.5);
  BOOST_TEST((mean(V(x), {1}).value() == Array<double>{2, 5}));
  Array<double> r = rnd<double>(Shape{2, 3, 4}, 1);
  expect_gradcheck([](const Vs& v) { return sum(v[0]); }, {r});
  expect_gradcheck([](const Vs& v) { return sum(v[0], {0, 2}); }, {r});
  expect_gradcheck([](const Vs& v) { return sum(v[0], {1}, true) * v[0]; }, {r});
  expect_gradcheck([](const Vs& v) { return mean(v[0]); }, {r});
  expect_gradcheck([](const Vs& v) { return mean(v[0], {-1}, true) * v[0]; }, {r});
  BOOST_CHECK_EXCEPTION(sum(V(x), {2}), ShapeError, mentions({"sum", "axis 2", "rank 2"}));
  BOOST_CHECK_EXCEPTION(sum(V(x), {1, -1}), ShapeError, mentions({"sum", "repeated axis"}));
}

// max(x, axis): the gradient goes to the arg-max
BOOST_AUTO_TEST_CASE(max_and_norm) {
  Array<double> x = {{1.0, 7.0, 3.0}, {9.0, 5.0, 6.0}};
  BOOST_TEST((max(V(x), 1).value() == Array<double>{7, 9}));
  BOOST_TEST(max(V(x)).value()() == 9.0);
  V xv(x, true);
  sum(max(xv, 0)).backward();
  BOOST_TEST((xv.grad() == Array<double>{{0, 1, 0}, {1, 0, 1}}));
  BOOST_TEST(std::abs(norm(V(Array<double>{3.0, 4.0})).value()() - 5.0) < 1e-15);
  Array<double> r = rnd<double>(Shape{3, 4}, 2);
  expect_gradcheck([](const Vs& v) { return max(v[0], 0, true); }, {r});
  expect_gradcheck([](const Vs& v) { return max(v[0]); }, {r});
  expect_gradcheck([](const Vs& v) { return norm(v[0]); }, {r});
  expect_gradcheck([](const Vs& v) { return norm(v[0], {1}); }, {r});
}

// softmax, log_softmax, logsumexp along an axis
BOOST_AUTO_TEST_CASE(softmax_family) {
  Array<double> x = {{1.0, 2.0, 3.0}};
  Array<double> e = xt::exp(x);
  const double z = xt::sum(e)();
  BOOST_TEST(test::close(softmax(V(x)).value(), Array<double>(e / z)));
  BOOST_TEST(test::close(log_softmax(V(x)).value(), Array<double>(x - std::log(z))));
  BOOST_TEST(std::abs(logsumexp(V(x)).value()(0) - std::log(z)) < 1e-14);
  // stable for huge logits
  Array<double> big = {{1000.0, 1001.0}};
  BOOST_TEST(xt::all(xt::isfinite(log_softmax(V(big)).value())));
  BOOST_TEST(std::abs(logsumexp(V(big)).value()(0) - (1001.0 + std::log1p(std::exp(-1.0)))) < 1e-12);
  Array<double> r = rnd<double>(Shape{2, 3, 4}, 3, -2, 2);
  for (int axis : {0, 1, -1}) {
    expect_gradcheck([axis](const Vs& v) { return softmax(v[0], axis); }, {r});
    expect_gradcheck([axis](const Vs& v) { return log_softmax(v[0], axis); }, {r});
    expect_gradcheck([axis](const Vs& v) { return logsumexp(v[0], axis, axis == 1); }, {r});
  }
}

// float32 reductions over 1e6 elements accumulate in double: against a float64 sum of the same
// floats, the error is within 2x of LibTorch 1.13's on the same data (its cascade sum, one
// thread; tests/fixtures/torch_sum_error.cpp printed these numbers), where the element-by-
// element float loop this replaced was 30 to 100 times worse.
BOOST_AUTO_TEST_CASE(float32_long_reductions) {
  Generator g(1);
  const std::size_t n = 1000000;
  const Array<float> x = uniform<float>(Shape{n}, 0.f, 1.f, g);  // the data of the fixture program
  double ref = 0, ref2 = 0;
  float naive = 0;
  for (float v : x) {
    ref += v;
    ref2 += static_cast<double>(v) * v;
    naive += v;
  }
  auto rel = [](double got, double want) { return std::abs(got - want) / std::abs(want); };
  const double torch_sum = 9.065e-09, torch_mean = 1.430e-08, torch_norm = 8.066e-06;
  // one float rounding of the result (2^-24 relative) is the least any float32 result can have
  const double floor = std::ldexp(1.0, -24);
  const double sum_err = rel(sum(Var<float>(x)).item(), ref);
  BOOST_TEST_MESSAGE(fmt::format("float32 sum of 1e6: rel err {:.2e} (torch {:.2e}, float loop {:.2e})", sum_err,
                                 torch_sum, rel(naive, ref)));
  BOOST_TEST(sum_err <= 2 * torch_sum);
  BOOST_TEST(rel(naive, ref) > 2 * torch_sum);  // the old loop fails this test (by 500x)
  BOOST_TEST(rel(mean(Var<float>(x)).item(), ref / n) <= 2 * torch_mean);
  BOOST_TEST(rel(norm(Var<float>(x)).item(), std::sqrt(ref2)) <= 2 * torch_norm);
  BOOST_TEST(rel(norm(Var<float>(x)).item(), std::sqrt(ref2)) <= floor);  // correctly rounded
  // over axes: sum over rows of [1000, 1000], then the column sums
  Array<float> m = x;
  m.reshape({1000, 1000});
  const Array<float> cols = sum(Var<float>(m), {0}).value();
  double cols_ref = 0;
  for (std::size_t r = 0; r < 1000; ++r) cols_ref += m(r, 7);
  BOOST_TEST(rel(cols(7), cols_ref) <= floor);
  BOOST_TEST(rel(mean(Var<float>(m), {0, 1}).value()(), ref / n) <= 2 * std::max(torch_mean, floor));
  // losses: mse against zeros is mean(x^2); cross entropy over 200,000 positions of 5 classes
  BOOST_TEST(rel(mse_loss(Var<float>(x), Var<float>(zeros<float>(Shape{n}))).item(), ref2 / n) <=
             2 * std::max(torch_mean, floor));
  const Array<float> logits = uniform<float>(Shape{200000, 5}, -3.f, 3.f, g);
  IndexArray targets = IndexArray::from_shape({200000});
  for (std::size_t i = 0; i < 200000; ++i) targets(i) = static_cast<std::int64_t>(g.below(5));
  double ce_ref = 0;
  for (std::size_t i = 0; i < 200000; ++i) {
    double mx = -1e300, s = 0;
    for (std::size_t c = 0; c < 5; ++c) mx = std::max(mx, static_cast<double>(logits(i, c)));
    for (std::size_t c = 0; c < 5; ++c) s += std::exp(logits(i, c) - mx);
    ce_ref += mx + std::log(s) - logits(i, static_cast<std::size_t>(targets(i)));
  }
  ce_ref /= 200000;
  const double ce_err = rel(cross_entropy(Var<float>(logits), targets).item(), ce_ref);
  BOOST_TEST_MESSAGE(fmt::format("float32 cross_entropy over 2e5 positions: rel err {:.2e}", ce_err));
  BOOST_TEST(ce_err <= 4 * floor);  // each position's log-probability is rounded to float once
}

BOOST_AUTO_TEST_SUITE_END()
