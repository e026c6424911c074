// Losses and dropout.
#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::mentions;
using xg::test::rnd;
using V = Var<double>;
using Vs = std::vector<V>;

BOOST_AUTO_TEST_SUITE(ops_loss)

BOOST_AUTO_TEST_CASE(mse) {
  Array<double> p = {1.0, 2.0, 4.0}, t = {1.0, 0.0, 1.0};
  BOOST_TEST(std::abs(mse_loss(V(p), V(t)).item() - 13.0 / 3.0) < 1e-15);
  BOOST_TEST(mse_loss(V(p), V(t), Reduction::Sum).item() == 13.0);
  expect_gradcheck([t](const Vs& v) { return mse_loss(v[0], V(t)); }, {p});
  BOOST_CHECK_EXCEPTION(mse_loss(V(p), V(Array<double>{1.0})), ShapeError, mentions({"mse_loss", "(1,)", "(3,)"}));
}

// cross_entropy(logits [..., C], targets [...], {reduction, ignore_index}, mask)
BOOST_AUTO_TEST_CASE(cross_entropy_value_and_options) {
  Array<double> logits = {{2.0, 1.0, 0.1}, {0.5, 2.5, 0.3}};
  IndexArray t = {0, 2};
  // hand-worked: -log softmax at the targets, averaged
  auto lse = [](double a, double b, double c) { return std::log(std::exp(a) + std::exp(b) + std::exp(c)); };
  const double l0 = lse(2.0, 1.0, 0.1) - 2.0, l1 = lse(0.5, 2.5, 0.3) - 0.3;
  BOOST_TEST(std::abs(cross_entropy(V(logits), t).item() - (l0 + l1) / 2) < 1e-14);
  CrossEntropyOptions sum_opts{Reduction::Sum};
  BOOST_TEST(std::abs(cross_entropy(V(logits), t, sum_opts).item() - (l0 + l1)) < 1e-14);
  CrossEntropyOptions ign{Reduction::Mean, 2};
  BOOST_TEST(std::abs(cross_entropy(V(logits), t, ign).item() - l0) < 1e-14);  // mean over 1 counted
  CrossEntropyOptions none{Reduction::None};
  BOOST_TEST(cross_entropy(V(logits), t, none).shape() == (Shape{2}));
  // per-timestep mask over [T=3, B=2, C=4]
  Array<double> seq = rnd<double>(Shape{3, 2, 4}, 1, -2, 2);
  IndexArray st = {{0, 1}, {2, 3}, {1, 1}};
  Array<double> mask = {{1.0, 1.0}, {1.0, 0.0}, {0.0, 0.0}};
  const double masked = cross_entropy(V(seq), st, {}, &mask).item();
  Array<double> first = xt::view(seq, xt::range(0, 2));
  IndexArray ft = {{0, 1}, {2, 3}};
  Array<double> m2 = {{1.0, 1.0}, {1.0, 0.0}};
  BOOST_TEST(std::abs(masked - cross_entropy(V(first), ft, {}, &m2).item()) < 1e-14);
  for (auto opts : {CrossEntropyOptions{}, sum_opts, ign, none})
    expect_gradcheck([t, opts](const Vs& v) { return cross_entropy(v[0], t, opts); }, {logits});
  expect_gradcheck([st, mask](const Vs& v) { return cross_entropy(v[0], st, {}, &mask); }, {seq});
  expect_gradcheck([t](const Vs& v) { return nll_loss(log_softmax(v[0]), t); }, {logits});
  BOOST_CHECK_EXCEPTION(cross_entropy(V(logits), IndexArray{0, 3}), ValueError, mentions({"nll_loss", "target 3", "3 classes"}));
  BOOST_CHECK_EXCEPTION(cross_entropy(V(logits), IndexArray{0}), ShapeError, mentions({"nll_loss", "(2, 3)", "(1,)"}));
}

BOOST_AUTO_TEST_CASE(bce_with_logits) {
  Array<double> x = {-1.0, 0.0, 3.0}, t = {0.0, 1.0, 1.0};
  double expect = 0;
  for (int i = 0; i < 3; ++i) {
    const double s = 1 / (1 + std::exp(-x(i)));
    expect -= t(i) * std::log(s) + (1 - t(i)) * std::log(1 - s);
  }
  BOOST_TEST(std::abs(binary_cross_entropy_with_logits(V(x), V(t)).item() - expect / 3) < 1e-14);
  expect_gradcheck([t](const Vs& v) { return binary_cross_entropy_with_logits(v[0], V(t)); }, {x});
  BOOST_TEST(std::isfinite(binary_cross_entropy_with_logits(V(Array<double>{-500.0}), V(Array<double>{1.0})).item()));
}

BOOST_AUTO_TEST_CASE(dropout_train_and_eval) {
  Generator g(3);
  Array<double> ones = xt::ones<double>({std::size_t(10000)});
  Array<double> y = dropout(V(ones), 0.25, true, g).value();
  const double zeros_frac = static_cast<double>(xt::sum(xt::equal(y, 0.0))()) / 10000.0;
  BOOST_TEST(std::abs(zeros_frac - 0.25) < 0.02);
  BOOST_TEST(std::abs(xt::mean(y)() - 1.0) < 0.03);  // inverted scaling keeps the mean
  BOOST_TEST(dropout(V(ones), 0.25, false, g).value() == ones);
  Generator g1(5), g2(5);
  BOOST_TEST(dropout(V(ones), 0.5, true, g1).value() == dropout(V(ones), 0.5, true, g2).value());
  Array<double> x = rnd<double>(Shape{3, 4}, 1);
  expect_gradcheck([](const Vs& v) { Generator gg(9); return dropout(v[0], 0.3, true, gg); }, {x});
  BOOST_CHECK_EXCEPTION(dropout(V(ones), 1.0, true, g), ValueError, mentions({"dropout", "p = 1"}));
}

BOOST_AUTO_TEST_SUITE_END()
