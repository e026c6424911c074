// Shape ops: values and float64 gradient checks.
#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::mentions;
using xg::test::rnd;
using V = Var<double>;
using Vs = std::vector<V>;

BOOST_AUTO_TEST_SUITE(ops_shape)

// reshape(x, dims) with -1
BOOST_AUTO_TEST_CASE(reshape_and_squeeze) {
  Array<double> x = xt::arange<double>(6.0);
  V r = reshape(V(x), {2, -1});
  BOOST_TEST(r.shape() == (Shape{2, 3}));
  BOOST_TEST(r.value()(1, 0) == 3.0);
  BOOST_TEST(unsqueeze(r, 0).shape() == (Shape{1, 2, 3}));
  BOOST_TEST(squeeze(unsqueeze(r, -1), -1).shape() == (Shape{2, 3}));
  expect_gradcheck([](const Vs& v) { return reshape(v[0], {3, 2}) * reshape(v[0], {3, 2}); }, {x});
  BOOST_CHECK_EXCEPTION(reshape(V(x), {4, -1}), ShapeError, mentions({"reshape", "(6,)"}));
  BOOST_CHECK_EXCEPTION(reshape(V(x), {4, 2}), ShapeError, mentions({"reshape", "(6,)", "(4, 2)"}));
  BOOST_CHECK_EXCEPTION(squeeze(r, 0), ShapeError, mentions({"squeeze", "(2, 3)"}));
}

// slice(x, axis, start, length), select, split, chunk
BOOST_AUTO_TEST_CASE(slice_split_chunk) {
  Array<double> x = xt::arange<double>(24.0);
  x.reshape({2, 3, 4});
  V s = slice(V(x), 2, 1, 2);
  BOOST_TEST(s.shape() == (Shape{2, 3, 2}));
  BOOST_TEST(s.value()(1, 2, 0) == 21.0);
  BOOST_TEST(select(V(x), 1, 2).value()(1, 3) == 23.0);
  auto parts = split(V(x), {1, 3}, -1);
  BOOST_TEST(parts[1].shape() == (Shape{2, 3, 3}));
  auto ch = chunk(V(x), 3, 2);  // 4 -> 2, 2
  BOOST_TEST(ch.size() == 2u);
  BOOST_TEST(chunk(V(x), 4, 2).size() == 4u);
  Array<double> r = rnd<double>(Shape{2, 3, 4}, 3);
  expect_gradcheck([](const Vs& v) { return slice(v[0], 1, 1, 2); }, {r});
  expect_gradcheck([](const Vs& v) { return select(v[0], 0, 1); }, {r});
  expect_gradcheck(
      [](const Vs& v) {
        auto p = chunk(v[0], 4, -1);  // four gates from one matrix, as an LSTM does
        return sigmoid(p[0]) * tanh(p[2]) + p[1] * p[3];
      },
      {r});
  BOOST_CHECK_EXCEPTION(slice(V(x), 2, 3, 2), ShapeError, mentions({"slice", "[3, 5)", "(2, 3, 4)"}));
  BOOST_CHECK_EXCEPTION(slice(V(x), 3, 0, 1), ShapeError, mentions({"slice", "axis 3", "rank 3"}));
  BOOST_CHECK_EXCEPTION(split(V(x), {1, 2}, 2), ShapeError, mentions({"split", "add up to 3"}));
}

// concat(xs, axis), stack(xs, axis)
BOOST_AUTO_TEST_CASE(concat_and_stack) {
  Array<double> a = {{1.0, 2.0}}, b = {{3.0, 4.0}, {5.0, 6.0}};
  V c = concat(Vs{V(a), V(b)}, 0);
  BOOST_TEST((c.value() == Array<double>{{1, 2}, {3, 4}, {5, 6}}));
  V s = stack(Vs{V(b), V(b)}, 1);
  BOOST_TEST(s.shape() == (Shape{2, 2, 2}));
  BOOST_TEST(s.value()(1, 0, 1) == 6.0);
  Array<double> x = rnd<double>(Shape{2, 3}, 1), y = rnd<double>(Shape{2, 2}, 2), z = rnd<double>(Shape{2, 3}, 3);
  expect_gradcheck([](const Vs& v) { return concat(Vs{v[0], v[1], v[0]}, 1); }, {x, y});
  for (int axis = 0; axis <= 2; ++axis)
    expect_gradcheck([axis](const Vs& v) { return stack(Vs{v[0], v[1] * v[0]}, axis); }, {x, z});
  BOOST_CHECK_EXCEPTION(concat(Vs{V(x), V(y)}, 0), ShapeError, mentions({"concat", "(2, 2)", "(2, 3)"}));
  BOOST_CHECK_EXCEPTION(stack(Vs{V(x), V(y)}, 0), ShapeError, mentions({"stack", "(2, 2)"}));
}

// index_select, embedding (repeated ids accumulate), gather
BOOST_AUTO_TEST_CASE(indexing) {
  Array<double> w = {{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}};
  IndexArray ids = {{2, 0}, {2, 2}};
  V wv(w, true);
  V e = embedding(wv, ids);
  BOOST_TEST(e.shape() == (Shape{2, 2, 2}));
  BOOST_TEST(e.value()(1, 1, 1) == 6.0);
  sum(e).backward();
  BOOST_TEST((wv.grad() == Array<double>{{1, 1}, {0, 0}, {3, 3}}));  // id 2 used three times
  Array<double> x = rnd<double>(Shape{3, 4}, 5);
  expect_gradcheck([](const Vs& v) { return index_select(v[0], 1, IndexArray{3, 0, 3}); }, {x});
  expect_gradcheck([ids](const Vs& v) { return embedding(v[0], ids); }, {x});
  IndexArray gi = {{0, 0}, {1, 0}, {3, 2}};
  V g = gather(V(x), 1, gi);
  BOOST_TEST(g.value()(2, 0) == x(2, 3));
  expect_gradcheck([gi](const Vs& v) { return gather(v[0], 1, gi); }, {x});
  BOOST_CHECK_EXCEPTION(embedding(V(w), IndexArray{3}), ValueError, mentions({"embedding", "index 3", "size 3"}));
  BOOST_CHECK_EXCEPTION(index_select(V(w), 0, IndexArray{-1}), ValueError, mentions("index_select"));
}

// pad(x, widths, value)
BOOST_AUTO_TEST_CASE(padding) {
  Array<double> x = {{1.0, 2.0}};
  V p = pad(V(x), {{1, 0}, {0, 2}}, -1.0);
  BOOST_TEST((p.value() == Array<double>{{-1., -1., -1., -1.}, {1., 2., -1., -1.}}), fmt::format("{}", fmt::join(p.value(), ",")));
  expect_gradcheck([](const Vs& v) { return pad(v[0], {{1, 2}, {2, 1}}) * pad(v[0], {{2, 1}, {1, 2}}); },
                   {rnd<double>(Shape{2, 3}, 4)});
  BOOST_CHECK_EXCEPTION(pad(V(x), {{1, 1}}), ShapeError, mentions({"pad", "(1, 2)"}));
}

BOOST_AUTO_TEST_SUITE_END()
