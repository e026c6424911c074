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

BOOST_AUTO_TEST_SUITE_END()
