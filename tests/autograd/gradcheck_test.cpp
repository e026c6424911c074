// gradcheck itself, a user-defined op, and a seeded random composition of a few hundred ops.
#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::rnd;
using V = Var<double>;
using Vs = std::vector<V>;

// ---- A custom op written the way a user would, outside the library ----
// hardtanh(x) = clamp(x, -1, 1) as a primitive:  dx = g [-1 < x < 1]
template <class T>
Var<T> my_hardtanh(const Var<T>& x) {
  Array<T> y = xt::clip(x.value(), T(-1), T(1));
  return record("my_hardtanh", std::move(y), {x}, [](Backward<T>& b) {
    b.add(0, b.grad() * xt::cast<T>(xt::abs(b.in(0)) < T(1)));
  });
}
// swish(x) = x sigmoid(x):   dx = g (s + x s (1 - s)); captures s for its backward
template <class T>
Var<T> my_swish(const Var<T>& x) {
  Array<T> s = T(1) / (T(1) + xt::exp(-x.value()));
  Array<T> y = x.value() * s;
  return record("my_swish", std::move(y), {x}, [s](Backward<T>& b) {
    b.add(0, b.grad() * (s + b.in(0) * s * (T(1) - s)));
  });
}
// A deliberately wrong derivative, to see gradcheck fail.
template <class T>
Var<T> wrong_square(const Var<T>& x) {
  Array<T> y = x.value() * x.value();
  return record("wrong_square", std::move(y), {x},
                [](Backward<T>& b) { b.add(0, T(2.02) * b.grad() * b.in(0)); });
}

BOOST_AUTO_TEST_SUITE(gradcheck)

BOOST_AUTO_TEST_CASE(custom_ops_pass) {
  Array<double> x = {-1.7, -0.4, 0.3, 0.9, 1.6};
  BOOST_TEST((my_hardtanh(V(x)).value() == Array<double>{-1, -0.4, 0.3, 0.9, 1}));
  expect_gradcheck([](const Vs& v) { return my_hardtanh(v[0]); }, {x});
  expect_gradcheck([](const Vs& v) { return my_swish(v[0]) * v[0]; }, {x});
  // custom ops compose with built-ins and train: one SGD step lowers the loss
  V w(Array<double>{0.5, -0.5}, true);
  auto loss = [&] { return sum(square(my_swish(w) - 1.0)); };
  const double before = loss().item();
  Tape<double>::current().clear();
  loss().backward();
  w.mutable_value() -= 0.1 * w.grad();
  BOOST_TEST(loss().item() < before);
  Tape<double>::current().clear();
}

BOOST_AUTO_TEST_CASE(wrong_gradient_is_caught_and_reported) {
  Array<double> x = {0.5, 1.0, 2.0};
  GradcheckReport r = xg::gradcheck<double>([](const Vs& v) { return wrong_square(v[0]); }, {x});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.inputs[0].max_rel_error > 0.005);
  const std::string s = fmt::format("{}", r);
  BOOST_TEST(s.find("FAIL") != std::string::npos);
  BOOST_TEST(s.find("input 0 (3,)") != std::string::npos);
  // worst element: the largest x (|error| = 0.02 * 2 x)
  BOOST_TEST(r.inputs[0].worst_element == 2u);
  // fast mode also catches it
  GradcheckOptions fast;
  fast.mode = GradcheckOptions::Mode::Fast;
  BOOST_TEST(!xg::gradcheck<double>([](const Vs& v) { return wrong_square(v[0]); }, {x}, fast).pass);
}

BOOST_AUTO_TEST_CASE(fast_mode_and_float_warning) {
  GradcheckOptions fast;
  fast.mode = GradcheckOptions::Mode::Fast;
  fast.projections = 6;
  Array<double> a = rnd<double>(Shape{20, 30}, 1), b = rnd<double>(Shape{30, 10}, 2);
  GradcheckReport r = xg::gradcheck<double>([](const Vs& v) { return tanh(matmul(v[0], v[1])); }, {a, b}, fast);
  BOOST_TEST(r.pass, fmt::format("{}", r));
  BOOST_TEST(!r.full);
  GradcheckReport f = xg::gradcheck<float>([](const std::vector<Var<float>>& v) { return v[0] * 2.f; },
                                          {Array<float>{1.f, 2.f}});
  BOOST_TEST(f.warnings.size() == 1u);
  BOOST_TEST(f.str().find("float32") != std::string::npos);
}

// A seeded random program of a few hundred ops on a few inputs passes gradcheck.
BOOST_AUTO_TEST_CASE(random_composition_property) {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    auto program = [seed](const Vs& in) {
      Generator g(seed);
      std::vector<V> pool(in.begin(), in.end());  // all [2, 3]
      for (int step = 0; step < 120; ++step) {
        const V& a = pool[g.below(pool.size())];
        const V& b = pool[g.below(pool.size())];
        V r;
        switch (g.below(12)) {
          case 0: r = a + b; break;
          case 1: r = a - b * 0.5; break;
          case 2: r = a * b; break;
          case 3: r = a / (square(b) + 1.0); break;
          case 4: r = tanh(a); break;
          case 5: r = sigmoid(a) * 2.0; break;
          case 6: r = softplus(a) - 0.5; break;
          case 7: r = a * sum(b, {1}, true) * 0.3; break;
          case 8: r = transpose(matmul(transpose(a), b)) * 0.2; break;  // ([3,2]@[2,3])^T -> [3,3]? see below
          case 9: r = concat(Vs{slice(a, 1, 0, 1), slice(b, 1, 1, 2)}, 1); break;
          case 10: r = softmax(a, 0); break;
          default: r = mean(a, {0}, true) + b * 0.7; break;
        }
        if (r.shape() != Shape{2, 3}) r = slice(r, 0, 0, 2);  // keep every pool value [2, 3]
        pool.push_back(r);
      }
      V total = pool.back();
      for (std::size_t i = pool.size() - 10; i < pool.size(); ++i) total = total + pool[i] * 0.1;
      return total;
    };
    std::vector<Array<double>> xs = {rnd<double>(Shape{2, 3}, seed * 10), rnd<double>(Shape{2, 3}, seed * 10 + 1),
                                     rnd<double>(Shape{2, 3}, seed * 10 + 2)};
    // make sure it really is a few hundred ops
    {
      std::vector<V> leaves;
      for (auto& x : xs) leaves.emplace_back(x, true);
      Tape<double>::current().clear();
      program(leaves);
      BOOST_TEST(Tape<double>::current().size() >= 200u);
      Tape<double>::current().clear();
    }
    expect_gradcheck(program, xs);
  }
}

BOOST_AUTO_TEST_SUITE_END()
