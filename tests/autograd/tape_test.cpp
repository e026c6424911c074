// The engine: recording, reverse walk, accumulation, no_grad, detach, errors, reuse, anomaly mode.
#include <thread>

#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;

BOOST_AUTO_TEST_SUITE(tape)

BOOST_AUTO_TEST_CASE(records_in_order_and_backpropagates) {
  // y = sum(tanh(x * w)),  dy/dw = x (1 - tanh^2(x w))
  Var<double> x(Array<double>{0.5, -1.0, 2.0});
  Var<double> w(Array<double>{0.3, 0.2, -0.1}, true);
  Tape<double>& tape = Tape<double>::current();
  tape.clear();
  Var<double> y = sum(tanh(x * w));
  BOOST_TEST(tape.size() == 3u);
  BOOST_TEST(tape.dump().find("#1 tanh") != std::string::npos);
  y.backward();
  BOOST_TEST(tape.size() == 0u);  // cleared after backward
  Array<double> t = xt::tanh(x.value() * w.value());
  BOOST_TEST(test::close(w.grad(), Array<double>(x.value() * (1.0 - t * t))));
  BOOST_TEST(!x.has_grad());  // x does not require grad
}

BOOST_AUTO_TEST_CASE(variable_used_twice_accumulates) {
  // y = x*x + x  ->  dy/dx = 2x + 1
  Var<double> x(Array<double>{1.0, -2.0, 3.0}, true);
  sum(x * x + x).backward();
  BOOST_TEST(test::close(x.grad(), Array<double>{3.0, -3.0, 7.0}));
  // leaves accumulate across backward calls until zero_grad
  sum(x * 2.0).backward();
  BOOST_TEST(test::close(x.grad(), Array<double>{5.0, -1.0, 9.0}));
  x.zero_grad();
  BOOST_TEST(!x.has_grad());
}

BOOST_AUTO_TEST_CASE(no_grad_records_nothing) {
  Var<float> w(Array<float>{1.f, 2.f}, true);
  Tape<float>& tape = Tape<float>::current();
  tape.clear();
  {
    NoGradGuard ng;
    BOOST_TEST(!grad_enabled());
    Var<float> y = w * w;
    BOOST_TEST(!y.requires_grad());
    BOOST_TEST(tape.size() == 0u);
  }
  BOOST_TEST(grad_enabled());
  Var<float> z = w * w;
  BOOST_TEST(tape.size() == 1u);
  tape.clear();
}

BOOST_AUTO_TEST_CASE(detach_cuts_history) {
  Var<double> w(Array<double>{2.0}, true);
  Var<double> h = w * w;
  Var<double> d = h.detach();
  BOOST_TEST(!d.requires_grad());
  BOOST_TEST(d.is_leaf());
  Var<double> y = sum(d * w);  // only the direct path counts: dy/dw = d = 4
  y.backward();
  BOOST_TEST(w.grad()(0) == 4.0);
}

BOOST_AUTO_TEST_CASE(misuse_is_a_clear_error) {
  Var<double> w(Array<double>{1.0, 2.0}, true);
  Var<double> y = sum(w * w);
  y.backward();
  BOOST_CHECK_EXCEPTION(y.backward(), TapeError, mentions({"backward", "cleared", "retain_graph"}));
  Var<double> v = w * w;
  BOOST_CHECK_EXCEPTION(v.backward(), TapeError, mentions({"(2,)", "non-scalar", "seed"}));
  Var<double> c(Array<double>{1.0});
  BOOST_CHECK_EXCEPTION(sum(c).backward(), TapeError, mentions("does not require grad"));
  // an intermediate carried across a cleared tape must be detached
  Var<double> h = w * 3.0;
  Tape<double>::current().clear();
  BOOST_CHECK_EXCEPTION(h * w, TapeError, mentions({"mul", "mul_scalar", "detach()"}));
  BOOST_CHECK_EXCEPTION(h.mutable_value(), TapeError, mentions("not a leaf"));
  BOOST_CHECK_EXCEPTION(Var<double>().value(), TapeError, mentions("undefined"));
  BOOST_CHECK_EXCEPTION(c.grad(), TapeError, mentions("no gradient"));
}

BOOST_AUTO_TEST_CASE(retain_graph_allows_a_second_backward) {
  Var<double> w(Array<double>{3.0}, true);
  Var<double> y = sum(w * w);
  y.backward(true);
  BOOST_TEST(w.grad()(0) == 6.0);
  y.backward();
  BOOST_TEST(w.grad()(0) == 12.0);
}

BOOST_AUTO_TEST_CASE(explicit_seed_for_non_scalar) {
  Var<double> x(Array<double>{1.0, 2.0}, true);
  Var<double> y = x * 3.0;
  y.backward(Array<double>{1.0, 10.0});
  BOOST_TEST(test::close(x.grad(), Array<double>{3.0, 30.0}));
  Var<double> z = x * 3.0;
  BOOST_CHECK_EXCEPTION(z.backward(Array<double>{1.0}), ShapeError, mentions({"seed", "(1,)", "(2,)"}));
  Tape<double>::current().clear();
}

BOOST_AUTO_TEST_CASE(tape_reuse_does_not_grow) {
  Tape<float> tape;
  Tape<float>::Scope scope(tape);
  Var<float> w(full<float>(Shape{1, 32}, 0.5f), true);
  Var<float> x(full<float>(Shape{1, 32}, 1.0f));
  auto step = [&] {
    Var<float> h = x;
    for (int i = 0; i < 50; ++i) h = tanh(h * w + x);
    sum(h).backward();
  };
  step();
  const std::size_t cap = tape.capacity();
  BOOST_TEST(cap == 151u);
  for (int s = 0; s < 200; ++s) step();
  BOOST_TEST(tape.capacity() == cap);
  BOOST_TEST(tape.size() == 0u);
}

BOOST_AUTO_TEST_CASE(scope_switches_tapes_and_threads_are_independent) {
  Tape<double> mine;
  Var<double> w(Array<double>{1.0}, true);
  {
    Tape<double>::Scope s(mine);
    Var<double> y = w * 2.0;
    BOOST_TEST(mine.size() == 1u);
  }
  BOOST_TEST(&Tape<double>::current() != &mine);
  // another thread has its own current tape
  const Tape<double>* other = nullptr;
  std::thread t([&] { other = &Tape<double>::current(); });
  t.join();
  BOOST_TEST(other != &Tape<double>::current());
}

// record() takes any xtensor expression as the value: evaluated once into an Array<T> (of the
// tape's element type, whatever the expression's), and an Array<T> is moved in unchanged.
BOOST_AUTO_TEST_CASE(record_takes_expressions) {
  Var<double> x(Array<double>{{1.0, 2.0}, {3.0, 4.0}}, true);
  auto twice = [](Backward<double>& b) { b.add(0, 2.0 * b.grad()); };
  Var<double> y = record("twice", x.value() * 2.0, {x}, twice, saves_none);  // a lazy expression
  BOOST_TEST((y.value() == Array<double>{{2.0, 4.0}, {6.0, 8.0}}));
  Var<double> col = record("col", xt::view(x.value(), xt::all(), 1), {x}, [](Backward<double>& b) {
    Array<double> g = zeros<double>(b.in_shape(0));
    xt::view(g, xt::all(), 1) = b.grad();
    b.add(0, std::move(g));
  }, saves_none);  // a view
  BOOST_TEST((col.value() == Array<double>{2.0, 4.0}));
  sum(y * 1.0 + sum(col)).backward();
  BOOST_TEST((x.grad() == Array<double>{{2.0, 6.0}, {2.0, 6.0}}));  // sum(y) + 4 sum(col)
  // a double expression recorded on a float tape (x * 0.5 is double in xtensor)
  Var<float> f(Array<float>{1.f, 3.f}, true);
  Var<float> h = record("half", f.value() * 0.5, {f}, [](Backward<float>& b) { b.add(0, b.grad() * 0.5f); });
  BOOST_TEST((h.value() == Array<float>{0.5f, 1.5f}));
  sum(h).backward();
  BOOST_TEST((f.grad() == Array<float>{0.5f, 0.5f}));
  // an Array<T> is moved, not copied
  Array<double> big = zeros<double>(Shape{1000});
  const double* data = big.data();
  Var<double> moved = record("id", std::move(big), {x},
                             [](Backward<double>&) {}, saves_none);
  BOOST_TEST(moved.value().data() == data);
  Tape<double>::current().clear();
}

BOOST_AUTO_TEST_CASE(anomaly_mode_names_the_op) {
  AnomalyGuard on;
  Var<double> x(Array<double>{-1.0, 1.0}, true);
  BOOST_CHECK_EXCEPTION(log(x), AnomalyError, mentions({"anomaly", "'log'", "NaN"}));
  // a finite forward whose backward produces Inf: sqrt at 0
  Var<double> z(Array<double>{0.0, 1.0}, true);
  Var<double> y = sum(sqrt(z));
  BOOST_CHECK_EXCEPTION(y.backward(), AnomalyError, mentions({"backward of 'sqrt'", "input 0"}));
  Tape<double>::current().clear();
}

BOOST_AUTO_TEST_SUITE_END()
