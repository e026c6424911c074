// layer_norm: hand-worked values, float64 gradient checks and shape errors.
#include "test_util.hpp"

using namespace xg;
using test::mentions;
using test::rnd;
using V = Var<double>;

BOOST_AUTO_TEST_SUITE(ops_norm)

// layer_norm(x, weight, bias, eps) over the last axis
BOOST_AUTO_TEST_CASE(layer_norm_values) {
  // row (1, 2, 3): mean 2, biased variance 2/3, so x^ = (-1, 0, 1) / sqrt(2/3 + eps)
  // row (4, 4, 4): variance 0, so x^ = 0 (eps keeps it finite)
  V x(Array<double>{{1, 2, 3}, {4, 4, 4}});
  const double eps = 1e-5, s = 1 / std::sqrt(2.0 / 3.0 + eps);
  Array<double> y = layer_norm(x, V(), V(), eps).value();
  BOOST_TEST(xt::allclose(y, Array<double>{{-s, 0, s}, {0, 0, 0}}, 1e-12, 1e-14));
  V w(Array<double>{2, 3, 4}), b(Array<double>{1, 0, -1});
  Array<double> ya = layer_norm(x, w, b, eps).value();
  BOOST_TEST(xt::allclose(ya, Array<double>{{1 - 2 * s, 0, 4 * s - 1}, {1, 0, -1}}, 1e-12, 1e-14));
  // every row of the result has mean 0 and (biased) variance 1 - eps / (var + eps)
  Array<double> z = layer_norm(V(rnd<double>(Shape{2, 3, 50}, 4, -3, 5)), V(), V(), 0.0 + 1e-12).value();
  for (std::size_t i = 0; i < 6; ++i) {
    double m = 0, v = 0;
    for (std::size_t j = 0; j < 50; ++j) m += z.data()[i * 50 + j] / 50;
    for (std::size_t j = 0; j < 50; ++j) v += (z.data()[i * 50 + j] - m) * (z.data()[i * 50 + j] - m) / 50;
    BOOST_TEST(std::abs(m) < 1e-12);
    BOOST_TEST(std::abs(v - 1) < 1e-9);
  }
}

BOOST_AUTO_TEST_CASE(layer_norm_gradcheck) {
  // without and with the affine part, 2-D and 3-D
  test::expect_gradcheck([](const std::vector<V>& v) { return layer_norm(v[0]); }, {rnd<double>(Shape{3, 5}, 1, -2, 2)});
  test::expect_gradcheck([](const std::vector<V>& v) { return layer_norm(v[0], v[1], v[2], 1e-3); },
                         {rnd<double>(Shape{2, 3, 4}, 2, -2, 2), rnd<double>(Shape{4}, 3), rnd<double>(Shape{4}, 4)});
  // a row of one element normalises to 0 and has zero gradient
  V one = test::leaf(full<double>(Shape{1, 1}, 3.0));
  sum(layer_norm(one) * 5.0).backward();
  BOOST_TEST(one.grad()(0, 0) == 0.0);
}

BOOST_AUTO_TEST_CASE(layer_norm_errors) {
  V x(rnd<double>(Shape{2, 4}, 1));
  BOOST_CHECK_EXCEPTION(layer_norm(x, V(rnd<double>(Shape{3}, 2))), ShapeError, mentions({"layer_norm", "weight", "(4,)", "(2, 4)", "(3,)"}));
  BOOST_CHECK_EXCEPTION(layer_norm(x, V(), V(rnd<double>(Shape{4, 1}, 2))), ShapeError, mentions({"layer_norm", "bias", "(4, 1)"}));
  BOOST_CHECK_EXCEPTION(layer_norm(x, V(), V(), -1.0), ValueError, mentions({"layer_norm", "eps = -1"}));
  BOOST_CHECK_EXCEPTION(layer_norm(V(zeros<double>(Shape{2, 0}))), ShapeError, mentions({"layer_norm", "(2, 0)"}));
  Tape<double>::current().clear();
}

BOOST_AUTO_TEST_SUITE_END()
