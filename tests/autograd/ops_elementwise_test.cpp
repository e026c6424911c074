// Elementwise ops: hand-worked values and float64 gradient checks, broadcasting included.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::mentions;
using xg::test::rnd;
namespace bdata = boost::unit_test::data;
using V = Var<double>;
using Vs = std::vector<V>;

namespace {
std::vector<std::string> unary_names() {
  std::vector<std::string> n;
  for (const auto& op : unary_ops<double>()) n.push_back(op.name);
  return n;
}
const UnaryOpInfo<double>& unary(const std::string& name) {
  for (const auto& op : unary_ops<double>())
    if (op.name == name) return op;
  throw std::runtime_error("no op " + name);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(ops_elementwise)

// Every row of the unary table: value against plain double math, and a float64 gradcheck,
// on a [3, 4] input and on a size-1 [1, 1] input, away from kinks.
BOOST_DATA_TEST_CASE(unary_table, bdata::make(unary_names()), name) {
  const auto& op = unary(name);
  Array<double> x = rnd<double>(Shape{3, 4}, 11, op.lo, op.hi);
  for (auto& v : x)
    if (std::abs(v) < 0.05) v += 0.1;  // abs, relu: stay off the kink
  Array<double> y = op.fn(V(x)).value();
  for (std::size_t i = 0; i < x.size(); ++i)
    BOOST_TEST(std::abs(y.data()[i] - op.reference(x.data()[i])) <= 1e-12 * (1 + std::abs(y.data()[i])));
  expect_gradcheck([&](const Vs& v) { return op.fn(v[0]); }, {x});
  expect_gradcheck([&](const Vs& v) { return op.fn(v[0]); }, {full<double>(Shape{1, 1}, 0.5 * (op.lo + op.hi) + 0.3)});
  // float32 forward agrees with float64 to float precision
  Array<float> xf = xt::cast<float>(x);
  Array<float> yf = unary_ops<float>()[&op - &unary_ops<double>()[0]].fn(Var<float>(xf)).value();
  BOOST_TEST(xt::allclose(xt::cast<double>(yf), y, 1e-5, 1e-6));
}

BOOST_AUTO_TEST_CASE(stable_at_extremes) {
  Var<double> big(Array<double>{-800.0, 800.0});
  BOOST_TEST(xt::all(xt::isfinite(softplus(big).value())));
  BOOST_TEST(softplus(big).value()(1) == 800.0);
  BOOST_TEST(sigmoid(big).value()(0) == 0.0);
  BOOST_TEST(sigmoid(big).value()(1) == 1.0);
}

// add/sub/mul/div(a, b) with broadcasting
BOOST_AUTO_TEST_CASE(binary_values_and_broadcast_gradients) {
  Array<double> a = {{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}};
  Array<double> b = {10.0, 20.0, 30.0};
  BOOST_TEST((add(V(a), V(b)).value() == Array<double>{{11, 22, 33}, {14, 25, 36}}));
  BOOST_TEST((sub(V(a), V(b)).value() == Array<double>{{-9, -18, -27}, {-6, -15, -24}}));
  BOOST_TEST((mul(V(a), V(b)).value() == Array<double>{{10, 40, 90}, {40, 100, 180}}));
  BOOST_TEST((div(V(b), V(a)).value() == Array<double>{{10, 10, 10}, {2.5, 4, 5}}));
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{3}, {2, 3}}, {{2, 1, 4}, {3, 1}}, {{1, 1}, {2, 2}}, {{}, {2, 3}}};
  for (auto& [sa, sb] : shapes) {
    Array<double> x = rnd<double>(sa, 1, 0.5, 2.0), y = rnd<double>(sb, 2, 0.5, 2.0);
    expect_gradcheck([](const Vs& v) { return v[0] + v[1]; }, {x, y});
    expect_gradcheck([](const Vs& v) { return v[0] - v[1]; }, {x, y});
    expect_gradcheck([](const Vs& v) { return v[0] * v[1]; }, {x, y});
    expect_gradcheck([](const Vs& v) { return v[0] / v[1]; }, {x, y});
    expect_gradcheck([](const Vs& v) { return pow(v[0], v[1]); }, {x, y});
    expect_gradcheck([](const Vs& v) { return maximum(v[0], v[1]); }, {x, y});
    expect_gradcheck([](const Vs& v) { return minimum(v[0], v[1]); }, {x, y});
  }
  BOOST_CHECK_EXCEPTION(V(a) + V(Array<double>{1.0, 2.0}), ShapeError, mentions({"add", "(2, 3)", "(2,)"}));
}

BOOST_AUTO_TEST_CASE(scalar_variants) {
  Array<double> x = rnd<double>(Shape{2, 3}, 5, 0.5, 2.0);
  BOOST_TEST(test::close((V(x) + 2.0).value(), Array<double>(x + 2.0)));
  BOOST_TEST(test::close((2.0 - V(x)).value(), Array<double>(2.0 - x)));
  BOOST_TEST(test::close((3.0 / V(x)).value(), Array<double>(3.0 / x)));
  BOOST_TEST(test::close(pow(V(x), 3.0).value(), Array<double>(x * x * x)));
  expect_gradcheck([](const Vs& v) { return v[0] * 2.5 + 1.0; }, {x});
  expect_gradcheck([](const Vs& v) { return 2.0 - v[0] / 4.0; }, {x});
  expect_gradcheck([](const Vs& v) { return 3.0 / v[0]; }, {x});
  expect_gradcheck([](const Vs& v) { return pow(v[0], 2.5); }, {x});
  expect_gradcheck([](const Vs& v) { return -v[0]; }, {x});
}

BOOST_AUTO_TEST_CASE(clamp_leaky_relu_where) {
  Array<double> x = {-2.0, -0.5, 0.5, 2.0};
  BOOST_TEST((clamp(V(x), -1.0, 1.0).value() == Array<double>{-1.0, -0.5, 0.5, 1.0}));
  BOOST_TEST(test::close(leaky_relu(V(x), 0.1).value(), Array<double>{-0.2, -0.05, 0.5, 2.0}));
  expect_gradcheck([](const Vs& v) { return clamp(v[0], -1.0, 1.0); }, {x});
  expect_gradcheck([](const Vs& v) { return leaky_relu(v[0], 0.1); }, {x});
  xt::xarray<bool> mask = {true, false, true};
  Array<double> a = rnd<double>(Shape{2, 3}, 1), b = rnd<double>(Shape{3}, 2);
  Array<double> w = xg::where(mask, V(a), V(b)).value();
  BOOST_TEST(w(1, 0) == a(1, 0));
  BOOST_TEST(w(1, 1) == b(1));
  expect_gradcheck([mask](const Vs& v) { return xg::where(mask, v[0], v[1]); }, {a, b});
  BOOST_CHECK_EXCEPTION(clamp(V(x), 1.0, -1.0), ValueError, mentions("clamp"));
}

BOOST_AUTO_TEST_CASE(inputs_that_are_views) {
  // values taken from views of a larger array (a column block and a strided row view)
  Array<double> big = rnd<double>(Shape{4, 6}, 9);
  Array<double> col = xt::view(big, xt::range(1, 3), xt::range(2, 5));
  Array<double> row = xt::view(big, xt::range(0, 4, 2), xt::range(0, 3));
  expect_gradcheck([](const Vs& v) { return tanh(v[0] * v[1]); }, {col, row});
  // a Var that is a slice of another Var feeds the op
  expect_gradcheck([](const Vs& v) { return sigmoid(slice(v[0], 1, 2, 3)) * slice(v[0], 1, 0, 3); }, {big});
}

BOOST_AUTO_TEST_SUITE_END()
