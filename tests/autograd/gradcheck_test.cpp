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
  const auto fast = GradcheckOptions().mode(GradcheckOptions::Mode::Fast);
  BOOST_TEST(!xg::gradcheck<double>([](const Vs& v) { return wrong_square(v[0]); }, {x}, fast).pass);
}

BOOST_AUTO_TEST_CASE(fast_mode_and_float_warning) {
  const auto fast = GradcheckOptions().mode(GradcheckOptions::Mode::Fast).projections(6);
  Array<double> a = rnd<double>(Shape{20, 30}, 1), b = rnd<double>(Shape{30, 10}, 2);
  GradcheckReport r = xg::gradcheck<double>([](const Vs& v) { return tanh(matmul(v[0], v[1])); }, {a, b}, fast);
  BOOST_TEST(r.pass, fmt::format("{}", r));
  BOOST_TEST(!r.full);
  GradcheckReport f = xg::gradcheck<float>([](const std::vector<Var<float>>& v) { return v[0] * 2.f; },
                                          {Array<float>{1.f, 2.f}});
  BOOST_TEST(f.warnings.size() >= 1u);  // and, at eps 1e-6 in float, the noise warning
  BOOST_TEST(f.str().find("float32") != std::string::npos);
}

// The README's caught mistake: a hardtanh whose backward forgets to multiply by grad(). Seeded
// with one-hot vectors of value 1, as the old checker did, its Jacobian looked right.
template <class T>
Var<T> hardtanh_forgets_grad(const Var<T>& x) {
  Array<T> y = xt::clip(x.value(), T(-1), T(1));
  return record("hardtanh", std::move(y), {x}, [](Backward<T>& b) {
    b.add(0, xt::cast<T>(xt::abs(b.in(0)) < T(1)));
  });
}
BOOST_AUTO_TEST_CASE(readme_caught_mistake) {
  Array<double> x = {-1.7, -0.4, 0.3, 0.9, 1.6};
  GradcheckReport r = xg::gradcheck<double>([](const Vs& v) { return hardtanh_forgets_grad(v[0]); }, {x});
  BOOST_TEST(!r.pass);
  BOOST_TEST_MESSAGE(r.str());
  GradcheckReport fast =
      xg::gradcheck<double>([](const Vs& v) { return hardtanh_forgets_grad(v[0]); }, {x},
                            GradcheckOptions().mode(GradcheckOptions::Mode::Fast));
  BOOST_TEST(!fast.pass);
  BOOST_TEST_MESSAGE(fast.str());
}

// The saves pass really frees what no record declares: a probe that declares nothing sees its
// input's value freed by the time its backward runs (the main passes use leaves, never freed).
BOOST_AUTO_TEST_CASE(saves_pass_frees_undeclared_inputs) {
  bool saw_freed = false, saw_kept = false;
  auto probe = [&](const V& x) {
    const detail::Node<double>* n = x.node_ptr().get();
    return record("probe", x.value() * 3.0, {x}, [n, &saw_freed, &saw_kept](Backward<double>& b) {
      (n->released() ? saw_freed : saw_kept) = true;
      b.add(0, 3.0 * b.grad());
    }, saves_none);
  };
  expect_gradcheck([&](const Vs& v) { return probe(v[0]); }, {Array<double>{1.0, -2.0}});
  BOOST_TEST(saw_kept);
  BOOST_TEST(saw_freed);
  saw_freed = false;
  expect_gradcheck([&](const Vs& v) { return probe(v[0]); }, {Array<double>{1.0, -2.0}},
                   GradcheckOptions().check_saves(false));
  BOOST_TEST(!saw_freed);
}

// Options chain like every other options struct.
BOOST_AUTO_TEST_CASE(options_chain) {
  const auto o = GradcheckOptions().eps(1e-7).atol(1e-9).rtol(1e-4).mode(GradcheckOptions::Mode::Full)
                     .projections(5).seed(9).check_saves(false);
  BOOST_TEST(o.eps() == 1e-7);
  BOOST_TEST(*o.atol() == 1e-9);
  BOOST_TEST(o.rtol() == 1e-4);
  BOOST_TEST((o.mode() == GradcheckOptions::Mode::Full));
  BOOST_TEST(o.projections() == 5u);
  BOOST_TEST(o.seed() == 9u);
  BOOST_TEST(!o.check_saves());
  BOOST_TEST(!GradcheckOptions().atol().has_value());  // unset: scaled to each input's gradients
}

// The seeds are random but deterministic: the same seed gives the same report.
BOOST_AUTO_TEST_CASE(seeds_are_deterministic) {
  Array<double> a = rnd<double>(Shape{3, 4}, 1), b = rnd<double>(Shape{4, 2}, 2);
  auto f = [](const Vs& v) { return tanh(matmul(v[0], v[1])); };
  for (auto mode : {GradcheckOptions::Mode::Full, GradcheckOptions::Mode::Fast}) {
    const auto o = GradcheckOptions().mode(mode).seed(5);
    const std::string first = xg::gradcheck<double>(f, {a, b}, o).str();
    BOOST_TEST(first == xg::gradcheck<double>(f, {a, b}, o).str());
    BOOST_TEST(first.find("PASS") != std::string::npos);
    GradcheckReport other = xg::gradcheck<double>(f, {a, b}, GradcheckOptions().mode(mode).seed(6));
    BOOST_TEST(other.pass);
  }
}

// gradcheck runs on a tape of its own: a graph half built on the caller's tape is untouched and
// still backpropagates, and the caller's leaves keep their values and gradients.
BOOST_AUTO_TEST_CASE(caller_tape_and_leaves_untouched) {
  Tape<double>& tape = Tape<double>::current();
  tape.clear();
  V w(Array<double>{0.3, -0.7}, true);
  V z = tanh(w * 2.0);  // half of a graph: the loss comes after the gradcheck
  const std::size_t records = tape.size();
  expect_gradcheck([](const Vs& v) { return sigmoid(v[0]) * v[0]; }, {rnd<double>(Shape{3}, 4)});
  V p(Array<double>{0.5, 1.5}, true);
  sum(p * p).backward();  // p.grad = 2p, on the caller's tape (then cleared)
  const Array<double> p_value = p.value(), p_grad = p.grad();
  z = tanh(w * 2.0);
  const std::size_t records2 = tape.size();
  expect_gradcheck([&] { return sum(p * p * p); }, {p});
  BOOST_TEST(tape.size() == records2);
  BOOST_TEST(records2 == records);
  BOOST_TEST((p.value() == p_value));
  BOOST_TEST((p.grad() == p_grad));  // restored, not reset
  sum(z * z).backward();              // d/dw sum tanh(2w)^2 = 4 tanh(2w) (1 - tanh(2w)^2)
  Array<double> t = xt::tanh(2.0 * w.value());
  BOOST_TEST(test::close(w.grad(), Array<double>(4.0 * t * (1.0 - t * t))));
}

// An op that forgets an input's gradient: a plain line, and FAIL because the numeric one is not
// zero; an input the function does not use: the same line, and ok.
template <class T>
Var<T> mul_forgets_b(const Var<T>& a, const Var<T>& b) {
  return record("mul_forgets_b", a.value() * b.value(), {a, b},
                [](Backward<T>& bw) { bw.add(0, bw.grad() * bw.in(1)); });
}
BOOST_AUTO_TEST_CASE(no_gradient_reached_an_input) {
  Array<double> a = {0.5, 2.0}, b = {-1.0, 3.0};
  GradcheckReport r = xg::gradcheck<double>([](const Vs& v) { return mul_forgets_b(v[0], v[1]); }, {a, b});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.inputs[0].pass);
  BOOST_TEST(!r.inputs[1].reached);
  BOOST_TEST(r.str().find("input 1 (2,): FAIL no gradient reached this input, but the numeric gradient is up to") !=
             std::string::npos, r.str());
  GradcheckReport u = xg::gradcheck<double>([](const Vs& v) { return v[0] * 2.0; }, {a, b});
  BOOST_TEST(u.pass, u.str());
  BOOST_TEST(u.str().find("input 1 (2,): ok   no gradient reached this input; its numeric gradient is zero too") !=
             std::string::npos, u.str());
}

// A user atol larger than every gradient: the report warns that the check proves nothing.
BOOST_AUTO_TEST_CASE(warns_when_gradients_are_below_tolerance) {
  Array<double> x = {0.5, -1.0, 2.0};
  GradcheckReport r = xg::gradcheck<double>([](const Vs& v) { return 1e-6 * square(v[0]); }, {x},
                                            GradcheckOptions().atol(1e-5));
  BOOST_TEST(r.pass);
  BOOST_TEST(r.str().find("warning: input 0: every numeric gradient is within the tolerance of zero") !=
             std::string::npos, r.str());
  // scaled to the gradients (the default), the same check is meaningful and silent
  GradcheckReport s = xg::gradcheck<double>([](const Vs& v) { return 1e-6 * square(v[0]); }, {x});
  BOOST_TEST(s.pass, s.str());
  BOOST_TEST(s.warnings.empty());
}

// "max rel err" counts only entries above atol: a Jacobian with exact zeros (off the diagonal)
// and one tiny entry reports the error of the entries that matter.
BOOST_AUTO_TEST_CASE(relative_error_counts_entries_that_matter) {
  Array<double> x = {0.5, -1.0, 1e-9};
  GradcheckReport r = xg::gradcheck<double>([](const Vs& v) { return square(v[0]); }, {x});
  BOOST_TEST(r.pass, r.str());
  BOOST_TEST(r.inputs[0].max_rel_error < 1e-6);
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
