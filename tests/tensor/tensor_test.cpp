// Shapes, broadcasting, sum_to, matmul against a naive loop, random initialisation.
#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;

BOOST_AUTO_TEST_SUITE(tensor)

BOOST_AUTO_TEST_CASE(shape_strings) {
  BOOST_TEST(shape_str(Shape{4, 3}) == "(4, 3)");
  BOOST_TEST(shape_str(Shape{5}) == "(5,)");
  BOOST_TEST(shape_str(Shape{}) == "()");
}

BOOST_AUTO_TEST_CASE(broadcasting_rules) {
  BOOST_TEST(broadcast_shapes("add", Shape{2, 3}, Shape{3}) == (Shape{2, 3}));
  BOOST_TEST(broadcast_shapes("add", Shape{2, 1, 4}, Shape{3, 1}) == (Shape{2, 3, 4}));
  BOOST_TEST(broadcast_shapes("add", Shape{}, Shape{2}) == (Shape{2}));
  BOOST_CHECK_EXCEPTION(broadcast_shapes("add", Shape{4, 3}, Shape{2, 3}), ShapeError,
                        mentions({"add", "(4, 3)", "(2, 3)", "4 vs 2"}));
}

BOOST_AUTO_TEST_CASE(sum_to_reduces_broadcast_dims) {
  Array<double> g = xt::arange<double>(24.0);
  g.reshape({2, 3, 4});
  // to (3, 1): sum over axis 0 and axis 2
  Array<double> r = sum_to(g, Shape{3, 1});
  Array<double> expect = {0. + 1 + 2 + 3 + 12 + 13 + 14 + 15, 4. + 5 + 6 + 7 + 16 + 17 + 18 + 19,
                          8. + 9 + 10 + 11 + 20 + 21 + 22 + 23};
  expect.reshape({3, 1});
  BOOST_TEST(r == expect);
  // to (4,): sum over the two leading dims (bias gradient)
  Array<double> b = sum_to(g, Shape{4});
  BOOST_TEST(b == (Array<double>{60, 66, 72, 78}));
  // to (): everything
  BOOST_TEST(sum_to(g, Shape{})() == 276.0);
  // identity
  BOOST_TEST(sum_to(g, Shape{2, 3, 4}) == g);
  BOOST_CHECK_EXCEPTION(sum_to(g, Shape{2, 4}), ShapeError, mentions({"sum_to", "(2, 3, 4)", "(2, 4)"}));
}

template <class T>
Array<T> naive(const Array<T>& a, const Array<T>& b, bool ta, bool tb) {
  Array<T> A = ta ? Array<T>(xt::transpose(a)) : a;
  Array<T> B = tb ? Array<T>(xt::transpose(b)) : b;
  Array<T> c = zeros<T>(Shape{A.shape(0), B.shape(1)});
  for (std::size_t i = 0; i < A.shape(0); ++i)
    for (std::size_t j = 0; j < B.shape(1); ++j)
      for (std::size_t k = 0; k < A.shape(1); ++k) c(i, j) += A(i, k) * B(k, j);
  return c;
}

template <class T>
void check_all_transposes(double tol) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Array<T> a = test::rnd<T>(ta ? Shape{4, 3} : Shape{3, 4}, 1 + ta);
      Array<T> b = test::rnd<T>(tb ? Shape{5, 4} : Shape{4, 5}, 3 + tb);
      Array<T> c = matmul(a, b, Trans(ta), Trans(tb));
      BOOST_TEST(xt::allclose(c, naive(a, b, ta, tb), tol, tol));
      // beta = 1 accumulates
      Array<T> acc = full<T>(Shape{3, 5}, T(1));
      matmul_into(a, b, acc, Trans(ta), Trans(tb), T(2), T(1));
      BOOST_TEST(xt::allclose(acc, T(2) * naive(a, b, ta, tb) + T(1), tol, tol));
      // batched [2, ...] x [2, ...] and [2, ...] x 2-D
      Array<T> a3 = test::rnd<T>(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 7);
      Array<T> b3 = test::rnd<T>(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 8);
      Array<T> c3 = matmul(a3, b3, Trans(ta), Trans(tb));
      Array<T> c32 = matmul(a3, b, Trans(ta), Trans(tb));
      Array<T> c23 = matmul(a, b3, Trans(ta), Trans(tb));
      for (std::size_t i = 0; i < 2; ++i) {
        Array<T> ai = xt::view(a3, i), bi = xt::view(b3, i);
        BOOST_TEST(xt::allclose(Array<T>(xt::view(c3, i)), naive(ai, bi, ta, tb), tol, tol));
        BOOST_TEST(xt::allclose(Array<T>(xt::view(c32, i)), naive(ai, b, ta, tb), tol, tol));
        BOOST_TEST(xt::allclose(Array<T>(xt::view(c23, i)), naive(a, bi, ta, tb), tol, tol));
      }
    }
}

BOOST_AUTO_TEST_CASE(matmul_matches_naive_loop_float) { check_all_transposes<float>(1e-5); }
BOOST_AUTO_TEST_CASE(matmul_matches_naive_loop_double) { check_all_transposes<double>(1e-12); }

BOOST_AUTO_TEST_CASE(matmul_size_one_dims) {
  // A [1, K] array has stride 0 in its first dim: leading dims come from shapes, not strides.
  Array<double> a = test::rnd<double>(Shape{1, 4}, 3), b = test::rnd<double>(Shape{4, 1}, 4);
  BOOST_TEST(xt::allclose(matmul(a, b), naive(a, b, false, false)));
  BOOST_TEST(xt::allclose(matmul(b, a), naive(b, a, false, false)));
}

BOOST_AUTO_TEST_CASE(matmul_shape_errors) {
  Array<float> a = zeros<float>(Shape{4, 3}), b = zeros<float>(Shape{2, 5});
  BOOST_CHECK_EXCEPTION(matmul(a, b), ShapeError, mentions({"matmul", "(4, 3)", "(2, 5)", "3 != 2"}));
  Array<float> v = zeros<float>(Shape{3});
  BOOST_CHECK_EXCEPTION(matmul(v, b), ShapeError, mentions({"matmul", "(3,)", "2-D or 3-D"}));
  Array<float> x = zeros<float>(Shape{2, 3, 4}), y = zeros<float>(Shape{3, 4, 5});
  BOOST_CHECK_EXCEPTION(matmul(x, y), ShapeError, mentions({"batch sizes 2 != 3"}));
}

BOOST_AUTO_TEST_CASE(random_is_reproducible_and_well_spread) {
  Generator g1(42), g2(42), g3(43);
  Array<float> a = uniform<float>(Shape{1000}, -2.f, 2.f, g1);
  Array<float> b = uniform<float>(Shape{1000}, -2.f, 2.f, g2);
  Array<float> c = uniform<float>(Shape{1000}, -2.f, 2.f, g3);
  BOOST_TEST(a == b);
  BOOST_TEST(!(a == c));
  BOOST_TEST(xt::amin(a)() >= -2.f);
  BOOST_TEST(xt::amax(a)() < 2.f);
  Array<double> n = normal<double>(Shape{20000}, 1.0, 2.0, g1);
  const double m = xt::mean(n)();
  const double sd = std::sqrt(xt::variance(n)());
  BOOST_TEST(std::abs(m - 1.0) < 0.05);
  BOOST_TEST(std::abs(sd - 2.0) < 0.05);
  // Glorot / He bounds from the fans of a [out=30, in=20] weight
  Array<double> x = xavier_uniform<double>(Shape{30, 20}, g1);
  BOOST_TEST(xt::amax(xt::abs(x))() <= std::sqrt(6.0 / 50.0));
  BOOST_TEST(xt::amax(xt::abs(x))() > 0.9 * std::sqrt(6.0 / 50.0));
  Array<double> k = kaiming_uniform<double>(Shape{30, 20}, g1);
  BOOST_TEST(xt::amax(xt::abs(k))() <= std::sqrt(6.0 / 20.0));
  Array<double> kn = kaiming_normal<double>(Shape{400, 100}, g1);
  BOOST_TEST(std::abs(std::sqrt(xt::variance(kn)()) - std::sqrt(2.0 / 100.0)) < 0.005);
  Array<double> xn = xavier_normal<double>(Shape{400, 100}, g1);
  BOOST_TEST(std::abs(std::sqrt(xt::variance(xn)()) - std::sqrt(2.0 / 500.0)) < 0.005);
  // Engine state round-trips (checkpoints).
  Generator s(7);
  s.normal01();
  const std::string st = s.state();
  const double next = s.normal01();
  Generator r(1);
  r.set_state(st);
  BOOST_TEST(r.normal01() == next);
}

BOOST_AUTO_TEST_SUITE_END()
