// matmul (2-D, batched, transpose flags), linear, transpose/permute.
#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::mentions;
using xg::test::rnd;
using V = Var<double>;
using Vs = std::vector<V>;

BOOST_AUTO_TEST_SUITE(ops_linalg)

// matmul(a, b, ta, tb): every transpose combination, 2-D and batched, gradchecked
BOOST_AUTO_TEST_CASE(matmul_all_layouts) {
  Array<double> a = {{1.0, 2.0}, {3.0, 4.0}}, b = {{5.0, 6.0}, {7.0, 8.0}};
  BOOST_TEST((matmul(V(a), V(b)).value() == Array<double>{{19, 22}, {43, 50}}));
  BOOST_TEST((matmul(V(a), V(b), NoTrans, DoTrans).value() == Array<double>{{17, 23}, {39, 53}}));
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const Trans A = Trans(ta), B = Trans(tb);
      auto f = [A, B](const Vs& v) { return matmul(v[0], v[1], A, B); };
      Shape sa = ta ? Shape{4, 3} : Shape{3, 4}, sb = tb ? Shape{2, 4} : Shape{4, 2};
      expect_gradcheck(f, {rnd<double>(sa, 1), rnd<double>(sb, 2)});
      Shape sa3 = ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, sb3 = tb ? Shape{2, 2, 4} : Shape{2, 4, 2};
      expect_gradcheck(f, {rnd<double>(sa3, 3), rnd<double>(sb3, 4)});  // batched x batched
      expect_gradcheck(f, {rnd<double>(sa3, 5), rnd<double>(sb, 6)});   // batched x shared weight
      expect_gradcheck(f, {rnd<double>(sa, 7), rnd<double>(sb3, 8)});   // shared x batched
    }
  // size-1 dims
  expect_gradcheck([](const Vs& v) { return matmul(v[0], v[1]); }, {rnd<double>(Shape{1, 3}, 1), rnd<double>(Shape{3, 1}, 2)});
  BOOST_CHECK_EXCEPTION(matmul(V(rnd<double>(Shape{4, 3}, 1)), V(rnd<double>(Shape{2, 5}, 1))), ShapeError,
                        mentions({"matmul: lhs (4, 3) and rhs (2, 5) cannot be multiplied (3 != 2)"}));
}

// addmm(c, a, b, ta, tb) = c + op(a) op(b)
BOOST_AUTO_TEST_CASE(addmm_fused_product) {
  Array<double> a = {{1.0, 2.0}, {3.0, 4.0}}, b = {{5.0, 6.0}, {7.0, 8.0}}, c = {{1.0, 1.0}, {1.0, 1.0}};
  BOOST_TEST((addmm(V(c), V(a), V(b)).value() == Array<double>{{20, 23}, {44, 51}}));
  BOOST_TEST((addmm(V(Array<double>{1.0, 2.0}), V(a), V(b)).value() == Array<double>{{20, 24}, {44, 52}}));
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const Trans A = Trans(ta), B = Trans(tb);
      Shape sa = ta ? Shape{4, 3} : Shape{3, 4}, sb = tb ? Shape{2, 4} : Shape{4, 2};
      expect_gradcheck([A, B](const Vs& v) { return addmm(v[0], v[1], v[2], A, B); },
                       {rnd<double>(Shape{3, 2}, 1), rnd<double>(sa, 2), rnd<double>(sb, 3)});
      expect_gradcheck([A, B](const Vs& v) { return addmm(v[0], v[1], v[2], A, B); },
                       {rnd<double>(Shape{2}, 1), rnd<double>(sa, 2), rnd<double>(sb, 3)});
    }
  BOOST_CHECK_EXCEPTION(addmm(V(rnd<double>(Shape{3}, 1)), V(a), V(b)), ShapeError, mentions({"addmm", "(3,)"}));
  // a column [2, 1] broadcasts along rows, not as a bias row
  Array<double> col = {1.0, 2.0};
  col.reshape({2, 1});
  BOOST_TEST((addmm(V(col), V(a), V(b)).value() == Array<double>{{20, 23}, {45, 52}}));
}

// linear(x, w, b) with w [out, in]
BOOST_AUTO_TEST_CASE(linear_layer) {
  Array<double> x = {{1.0, 2.0}}, w = {{1.0, 0.0}, {0.0, 1.0}, {1.0, 1.0}}, b = {0.5, 0.5, 0.5};
  BOOST_TEST((linear(V(x), V(w), V(b)).value() == Array<double>{{1.5, 2.5, 3.5}}));
  auto f = [](const Vs& v) { return linear(v[0], v[1], v[2]); };
  expect_gradcheck(f, {rnd<double>(Shape{5, 4}, 1), rnd<double>(Shape{3, 4}, 2), rnd<double>(Shape{3}, 3)});
  expect_gradcheck(f, {rnd<double>(Shape{2, 5, 4}, 1), rnd<double>(Shape{3, 4}, 2), rnd<double>(Shape{3}, 3)});
  expect_gradcheck(f, {rnd<double>(Shape{4}, 1), rnd<double>(Shape{3, 4}, 2), rnd<double>(Shape{3}, 3)});
  expect_gradcheck(f, {rnd<double>(Shape{2, 1, 2, 4}, 1), rnd<double>(Shape{3, 4}, 2), rnd<double>(Shape{3}, 3)});
  expect_gradcheck([](const Vs& v) { return linear(v[0], v[1]); }, {rnd<double>(Shape{5, 4}, 1), rnd<double>(Shape{3, 4}, 2)});
  BOOST_CHECK_EXCEPTION(linear(V(x), V(rnd<double>(Shape{3, 4}, 1))), ShapeError, mentions({"linear", "(1, 2)", "(3, 4)"}));
  BOOST_CHECK_EXCEPTION(linear(V(x), V(w), V(full<double>(Shape{1}, 1.0))), ShapeError, mentions({"linear", "bias", "(1,)"}));
}

// transpose(x), permute(x, axes)
BOOST_AUTO_TEST_CASE(transpose_and_permute) {
  Array<double> x = {{1.0, 2.0, 3.0}};
  V xt_ = transpose(V(x));
  BOOST_TEST(xt_.shape() == (Shape{3, 1}));
  BOOST_TEST(xt_.value()(2, 0) == 3.0);
  Array<double> r = rnd<double>(Shape{2, 3, 4}, 1);
  V p = permute(V(r), {2, 0, 1});
  BOOST_TEST(p.shape() == (Shape{4, 2, 3}));
  BOOST_TEST(p.value()(3, 1, 2) == r(1, 2, 3));
  expect_gradcheck([](const Vs& v) { return permute(v[0], {2, 0, 1}) * 2.0; }, {r});
  expect_gradcheck([](const Vs& v) { return transpose(v[0]); }, {r});
  BOOST_CHECK_EXCEPTION(permute(V(r), {0, 0, 1}), ShapeError, mentions({"permute", "(0, 0, 1)"}));
}

BOOST_AUTO_TEST_SUITE_END()
