// Custom ops with wrong derivatives, written the way a user might write them, kept as fixtures:
// gradcheck must fail every one of them in full and in fast mode, while the same forward built
// from library ops passes. The first four passed the checker that seeded backward with one-hot
// vectors of value 1 and judged with an absolute atol of 1e-5.
#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;
using xg::test::rnd;
using V = Var<double>;
using Vs = std::vector<V>;
using A = Array<double>;

namespace {

double sum_of(const A& a) {
  double s = 0;
  for (double v : a) s += v;
  return s;
}

// y = sum x^2; dx = 2 x g, but this never multiplies by grad().
V sumsq_ignores_grad(const V& x) {
  return record("sumsq_ignores_grad", full<double>(Shape{}, sum_of(A(x.value() * x.value()))), {x},
                [](Backward<double>& b) { b.add(0, 2.0 * b.in(0)); });
}
// y = x^3; dx = 3 x^2 g, but this uses |g|.
V cube_abs_grad(const V& x) {
  return record("cube_abs_grad", x.value() * x.value() * x.value(), {x},
                [](Backward<double>& b) { b.add(0, 3.0 * b.in(0) * b.in(0) * xt::abs(b.grad())); });
}
// y = exp(x); dx = g y, but this squares g.
V exp_squared_grad(const V& x) {
  return record("exp_squared_grad", xt::exp(x.value()), {x},
                [](Backward<double>& b) { b.add(0, b.grad() * b.grad() * b.out()); });
}
// y = 1e-7 x^2; dx = 2e-7 x g, but this has 4e-7: wrong by a factor of 2 on gradients of about
// 1e-7.
V tiny_square_factor2(const V& x) {
  return record("tiny_square_factor2", 1e-7 * x.value() * x.value(), {x},
                [](Backward<double>& b) { b.add(0, 4e-7 * b.in(0) * b.grad()); });
}
// y = exp(-x); dx = -g y, but the sign is lost.
V neg_exp_sign_error(const V& x) {
  return record("neg_exp_sign_error", xt::exp(-x.value()), {x},
                [](Backward<double>& b) { b.add(0, b.grad() * b.out()); });
}
// y = x^T for a square x; dx = g^T, but g is added untransposed (the shapes agree).
V transpose_forgot(const V& x) {
  return record("transpose_forgot", xt::transpose(x.value()), {x},
                [](Backward<double>& b) { b.add(0, b.grad()); });
}
// y = a b; da = g b, db = g a, but each input gets the other's gradient.
V mul_swapped(const V& a, const V& b) {
  return record("mul_swapped", a.value() * b.value(), {a, b}, [](Backward<double>& bw) {
    bw.add(0, bw.grad() * bw.in(0));
    bw.add(1, bw.grad() * bw.in(1));
  });
}
// y = x^2; dx = 2 x g, but negative upstream gradients are dropped.
V square_drops_negative_seed(const V& x) {
  return record("square_drops_negative_seed", x.value() * x.value(), {x},
                [](Backward<double>& b) { b.add(0, 2.0 * b.in(0) * xt::maximum(b.grad(), 0.0)); });
}
// y = x[2, 3] + bias[3]; dbias = sum of g over rows, but only the first row is taken.
V bias_first_row_only(const V& x, const V& bias) {
  return record("bias_first_row_only", x.value() + bias.value(), {x, bias},
                [](Backward<double>& b) {
                  b.add(0, b.grad());
                  b.add(1, xt::view(b.grad(), 0, xt::all()));
                });
}
// y = 3 x; dx += 3 g, but this assigns into the gradient buffer (ignoring `accumulate`), so a
// gradient already there is lost.
V triple_assigns_gradient(const V& x) {
  return record("triple_assigns_gradient", 3.0 * x.value(), {x}, [](Backward<double>& b) {
    b.add(0, in_place([&](A& buf, bool) { xt::noalias(buf) = 3.0 * b.grad(); }));
  });
}
// y = a b, but each gradient is computed only when the *other* input needs one.
V mul_needs_swapped(const V& a, const V& b) {
  return record("mul_needs_swapped", a.value() * b.value(), {a, b}, [](Backward<double>& bw) {
    if (bw.needs(1)) bw.add(0, bw.grad() * bw.in(1));
    if (bw.needs(0)) bw.add(1, bw.grad() * bw.in(0));
  });
}

struct Case {
  std::string name;
  GradcheckFn<double> wrong, right;  // the same forward, with a wrong and a right derivative
  std::vector<A> inputs;
};

std::vector<Case> cases() {
  const A x = rnd<double>(Shape{2, 3}, 1, -1.5, 1.5);
  const A pos = rnd<double>(Shape{2, 3}, 2, 0.5, 1.5);
  const A sq = rnd<double>(Shape{3, 3}, 3);
  const A b = rnd<double>(Shape{3}, 4);
  return {
      {"ignores grad() (scalar output)",
       [](const Vs& v) { return sumsq_ignores_grad(v[0]); },
       [](const Vs& v) { return sum(square(v[0])); },
       {x}},
      {"ignores grad() (inside a sum)",
       [](const Vs& v) { return sum(sumsq_ignores_grad(v[0]) * v[0]); },
       [](const Vs& v) { return sum(sum(square(v[0])) * v[0]); },
       {x}},
      {"abs(grad()) (gradients of one sign)",
       [](const Vs& v) { return cube_abs_grad(v[0]); },
       [](const Vs& v) { return v[0] * v[0] * v[0]; },
       {x}},
      {"abs(grad()) (scalar output)",
       [](const Vs& v) { return sum(cube_abs_grad(v[0])); },
       [](const Vs& v) { return sum(v[0] * v[0] * v[0]); },
       {x}},
      {"grad() squared",
       [](const Vs& v) { return exp_squared_grad(v[0]); },
       [](const Vs& v) { return exp(v[0]); },
       {x}},
      {"factor 2 at gradient scale 1e-7",
       [](const Vs& v) { return tiny_square_factor2(v[0]); },
       [](const Vs& v) { return 1e-7 * square(v[0]); },
       {x}},
      {"factor 2 at gradient scale 1e-7 (scalar output)",
       [](const Vs& v) { return sum(tiny_square_factor2(v[0])); },
       [](const Vs& v) { return sum(1e-7 * square(v[0])); },
       {x}},
      {"factor 2 at gradient scale 1e-7 beside outputs of 1000",
       [](const Vs& v) {
         return concat(Vs{tiny_square_factor2(v[0]), 1000.0 + v[1]}, 0);
       },
       [](const Vs& v) {
         return concat(Vs{1e-7 * square(v[0]), 1000.0 + v[1]}, 0);
       },
       {x, pos}},
      {"sign error",
       [](const Vs& v) { return neg_exp_sign_error(v[0]); },
       [](const Vs& v) { return exp(-v[0]); },
       {x}},
      {"untransposed gradient of a square matrix",
       [](const Vs& v) { return transpose_forgot(v[0]); },
       [](const Vs& v) { return transpose(v[0]); },
       {sq}},
      {"gradients sent to the wrong inputs",
       [](const Vs& v) { return mul_swapped(v[0], v[1]); },
       [](const Vs& v) { return v[0] * v[1]; },
       {x, pos}},
      {"depends on the seed's sign",
       [](const Vs& v) { return square_drops_negative_seed(v[0]); },
       [](const Vs& v) { return square(v[0]); },
       {x}},
      {"depends on the seed's sign (scalar output)",
       [](const Vs& v) { return sum(square_drops_negative_seed(v[0])); },
       [](const Vs& v) { return sum(square(v[0])); },
       {x}},
      {"broadcast sum dropped",
       [](const Vs& v) { return bias_first_row_only(v[0], v[1]); },
       [](const Vs& v) { return v[0] + v[1]; },
       {x, b}},
      {"assigns instead of adding",
       [](const Vs& v) { return triple_assigns_gradient(v[0]); },
       [](const Vs& v) { return 3.0 * v[0]; },
       {x}},
      {"needs(i) swapped",
       [](const Vs& v) { return mul_needs_swapped(v[0], v[1]); },
       [](const Vs& v) { return v[0] * v[1]; },
       {x, pos}},
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wrong_derivatives)

BOOST_AUTO_TEST_CASE(every_wrong_derivative_fails_in_every_mode) {
  using Mode = GradcheckOptions::Mode;
  for (const Case& c : cases()) {
    BOOST_TEST_CONTEXT(c.name) {
      // the forward is right: only the derivative is wrong
      Vs in;
      for (const A& a : c.inputs) in.emplace_back(a);
      BOOST_TEST(test::close(c.wrong(in).value(), c.right(in).value()));
      for (Mode mode : {Mode::Auto, Mode::Full, Mode::Fast}) {
        for (std::uint64_t seed : {0u, 1u, 2u}) {
          const auto o = GradcheckOptions().mode(mode).seed(seed);
          GradcheckReport good = gradcheck<double>(c.right, c.inputs, o);
          BOOST_TEST(good.pass, fmt::format("{}", good));
          GradcheckReport bad = gradcheck<double>(c.wrong, c.inputs, o);
          BOOST_TEST(!bad.pass,
                     fmt::format("mode {} seed {}: {}", static_cast<int>(mode), seed, bad));
          BOOST_TEST(bad.str().find("FAIL") != std::string::npos);
        }
      }
    }
  }
}

// The tiny-gradient mistake is reported with the relative error that gives it away.
BOOST_AUTO_TEST_CASE(tiny_factor_two_report) {
  const A x = {0.5, -1.0, 2.0};
  GradcheckReport r = gradcheck<double>([](const Vs& v) { return tiny_square_factor2(v[0]); }, {x});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.inputs[0].max_rel_error >= 0.49);
  BOOST_TEST(r.inputs[0].max_numeric < 1e-6);
  BOOST_TEST(r.inputs[0].atol < 1e-11);
  BOOST_TEST(std::abs(r.inputs[0].analytic - 2 * r.inputs[0].numeric) <=
             1e-6 * std::abs(r.inputs[0].analytic));
  BOOST_TEST_MESSAGE(r.str());
}

// add(1, g) on a one-input op, and the other accessors: a TapeError naming the op, the index
// and the number of inputs, never a write into another node.
V neg_adds_to_input_1(const V& x) {
  return record("neg_adds_to_input_1", -x.value(), {x},
                [](Backward<double>& b) { b.add(1, -b.grad()); });
}
BOOST_AUTO_TEST_CASE(bad_input_index_is_a_tape_error) {
  const A x = {1.0, 2.0};
  BOOST_CHECK_EXCEPTION(
      gradcheck<double>([](const Vs& v) { return neg_adds_to_input_1(v[0]); }, {x}), TapeError,
      mentions({"neg_adds_to_input_1", "add(1)", "input 1", "1 input"}));
  auto with = [&](auto&& body) {
    V w(x, true);
    return [w, body]() mutable { sum(record("bad_index", -w.value(), {w}, body)).backward(); };
  };
  BOOST_CHECK_EXCEPTION(with([](Backward<double>& b) { (void)b.in(2); })(), TapeError,
                        mentions({"bad_index", "in(2)", "1 input"}));
  BOOST_CHECK_EXCEPTION(with([](Backward<double>& b) { (void)b.needs(1); })(), TapeError,
                        mentions({"bad_index", "needs(1)", "1 input"}));
  BOOST_CHECK_EXCEPTION(with([](Backward<double>& b) { (void)b.in_shape(1); })(), TapeError,
                        mentions({"bad_index", "in_shape(1)"}));
  BOOST_CHECK_EXCEPTION(with([](Backward<double>& b) { b.add(3, b.grad()); })(), TapeError,
                        mentions({"bad_index", "add(3)", "1 input"}));
  BOOST_CHECK_EXCEPTION(with([](Backward<double>& b) { b.add(1, in_place([](A&, bool) {})); })(), TapeError,
                        mentions({"bad_index", "add(1)"}));
  // the failed backward left the tape clean: the next step works
  V w(x, true);
  sum(w * w).backward();
  BOOST_TEST(test::close(w.grad(), A{2.0, 4.0}));
}

// A Saves declaration that leaves out what backward reads is a TapeError in gradcheck (and in
// any backward), whether or not the value has been freed yet.
V square_saves_only_out(const V& x) {
  return record(
      "square_saves_only_out", x.value() * x.value(), {x},
      [](Backward<double>& b) { b.add(0, 2.0 * b.in(0) * b.grad()); }, saves_out);
}
V exp_saves_only_input(const V& x) {
  return record(
      "exp_saves_only_input", xt::exp(x.value()), {x},
      [](Backward<double>& b) { b.add(0, b.grad() * b.out()); }, saves_inputs(0b1));
}
V mul_saves_one_input(const V& a, const V& b) {
  return record(
      "mul_saves_one_input", a.value() * b.value(), {a, b},
      [](Backward<double>& bw) {
        bw.add(0, bw.grad() * bw.in(1));
        bw.add(1, bw.grad() * bw.in(0));
      },
      saves_inputs(0b10));
}
BOOST_AUTO_TEST_CASE(wrong_saves_declaration_is_caught) {
  const A x = {0.5, -1.0, 2.0};
  BOOST_CHECK_EXCEPTION(
      gradcheck<double>([](const Vs& v) { return square_saves_only_out(v[0]); }, {x}), TapeError,
      mentions({"square_saves_only_out", "in(0)", "Saves", "saves_inputs(0b1)"}));
  BOOST_CHECK_EXCEPTION(
      gradcheck<double>([](const Vs& v) { return exp_saves_only_input(v[0]); }, {x}), TapeError,
      mentions({"exp_saves_only_input", "out()", "Saves"}));
  BOOST_CHECK_EXCEPTION(
      gradcheck<double>([](const Vs& v) { return mul_saves_one_input(v[0], v[1]); }, {x, x}),
      TapeError, mentions({"mul_saves_one_input", "in(0)", "saves_inputs(0b11)"}));
  // declared right, the same ops pass, freed-intermediate check included
  auto square_ok = [](const V& v) {
    return record(
        "square_ok", v.value() * v.value(), {v},
        [](Backward<double>& b) { b.add(0, 2.0 * b.in(0) * b.grad()); }, saves_inputs(0b1));
  };
  test::expect_gradcheck([&](const Vs& v) { return square_ok(v[0]); }, {x});
}

BOOST_AUTO_TEST_SUITE_END()
