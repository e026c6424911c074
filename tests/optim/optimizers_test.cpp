// Optimizers: the first steps against values worked out by hand; clipping; schedules; state.
#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;
using V = Var<double>;

namespace {
// p = [1, -2], loss = sum(p^2) / 2  ->  g = p
void set_grad_to_value(V& p) {
  p.zero_grad();
  sum(p * p * 0.5).backward();
}
}  // namespace

BOOST_AUTO_TEST_SUITE(optimizers)

BOOST_AUTO_TEST_CASE(sgd_by_hand) {
  V p(Array<double>{1.0, -2.0}, true);
  optim::SGD<double> sgd({p}, optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.5));
  set_grad_to_value(p);  // g = p + wd p = 1.5 p; b = g; p -= 0.1 b  ->  p * 0.85
  sgd.step();
  BOOST_TEST(test::close(p.value(), Array<double>{0.85, -1.7}));
  set_grad_to_value(p);  // g = 1.5 * 0.85 = 1.275; b = 0.9 * 1.5 + 1.275 = 2.625; p = 0.85 - 0.2625
  sgd.step();
  BOOST_TEST(test::close(p.value(), Array<double>{0.5875, -1.175}));
  V q(Array<double>{1.0}, true);
  optim::SGD<double> nes({q}, optim::SGDOptions(0.1).momentum(0.5).nesterov(true));
  set_grad_to_value(q);  // g = 1, b = 1, step uses g + 0.5 b = 1.5 -> q = 0.85
  nes.step();
  BOOST_TEST(std::abs(q.value()(0) - 0.85) < 1e-15);
  BOOST_CHECK_EXCEPTION(optim::SGD<double>({q}, optim::SGDOptions(-1)), ValueError, mentions("learning rate -1"));
  BOOST_CHECK_EXCEPTION(optim::SGD<double>({q}, optim::SGDOptions(0.1).nesterov(true)), ValueError, mentions("nesterov"));
}

BOOST_AUTO_TEST_CASE(adam_by_hand) {
  // The first Adam step moves every coordinate by lr * sign(g) (m_hat = g, v_hat = g^2).
  V p(Array<double>{1.0, -2.0}, true);
  optim::Adam<double> adam({p}, optim::AdamOptions(0.1));
  set_grad_to_value(p);
  adam.step();
  BOOST_TEST(std::abs(p.value()(0) - (1.0 - 0.1 * 1.0 / (1.0 + 1e-8))) < 1e-12);
  BOOST_TEST(std::abs(p.value()(1) - (-2.0 + 0.1 * 2.0 / (2.0 + 1e-8))) < 1e-12);
  // second step: g2 = p1; m = 0.9*0.1*g1 + 0.1*g2 ... worked with the formulas
  const double g1 = 1.0, p1 = p.value()(0), g2 = p1;
  const double m = 0.9 * 0.1 * g1 + 0.1 * g2, v = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2;
  const double expect = p1 - 0.1 / (1 - 0.81) * m / (std::sqrt(v) / std::sqrt(1 - 0.999 * 0.999) + 1e-8);
  set_grad_to_value(p);
  adam.step();
  BOOST_TEST(std::abs(p.value()(0) - expect) < 1e-12);
  // AdamW decays the weight before the Adam step: p = 1 * (1 - 0.1 * 0.5) - 0.1
  V w(Array<double>{1.0}, true);
  optim::AdamW<double> adamw({w}, optim::AdamOptions(0.1).weight_decay(0.5));
  set_grad_to_value(w);
  adamw.step();
  BOOST_TEST(std::abs(w.value()(0) - (0.95 - 0.1 / (1 + 1e-8))) < 1e-12);
}

BOOST_AUTO_TEST_CASE(nonfinite_gradients_are_refused) {
  V p(Array<double>{1.0}, true);
  optim::SGD<double> sgd({{"encoder.weight", p}}, optim::SGDOptions(0.1));
  p.mutable_value()(0) = 0.0;
  sum(sqrt(p)).backward();  // d sqrt(x)/dx at 0 = inf
  BOOST_CHECK_EXCEPTION(sgd.step(), ValueError, mentions({"encoder.weight", "NaN or Inf"}));
  BOOST_TEST(p.value()(0) == 0.0);
}

BOOST_AUTO_TEST_CASE(clipping) {
  V a(Array<double>{3.0}, true), b(Array<double>{4.0}, true);
  sum(a * a * 0.5 + b * b * 0.5).backward();  // grads 3 and 4, norm 5
  const double n = optim::clip_grad_norm<double>({a, b}, 1.0);
  BOOST_TEST(n == 5.0);
  BOOST_TEST(std::abs(a.grad()(0) - 3.0 / (5.0 + 1e-6)) < 1e-12);
  optim::clip_grad_value<double>({a, b}, 0.5);
  BOOST_TEST(b.grad()(0) == 0.5);
}

BOOST_AUTO_TEST_CASE(schedules_by_hand) {
  V p(Array<double>{1.0}, true);
  optim::SGD<double> sgd({p}, optim::SGDOptions(1.0));
  optim::StepLR<double> step(sgd, 2, 0.5);
  std::vector<double> lrs;
  for (int e = 0; e < 5; ++e) {
    step.step();
    lrs.push_back(sgd.lr());
  }
  BOOST_TEST((lrs == std::vector<double>{1.0, 0.5, 0.5, 0.25, 0.25}));
  optim::SGD<double> s2({p}, optim::SGDOptions(1.0));
  optim::CosineAnnealingLR<double> cos(s2, 4, 0.0);
  cos.step();
  cos.step();
  BOOST_TEST(std::abs(s2.lr() - 0.5) < 1e-15);
  optim::SGD<double> s3({p}, optim::SGDOptions(1.0));
  optim::ReduceLROnPlateau<double> plateau(s3, optim::ReduceLROnPlateau<double>::Options().patience(1).factor(0.5));
  for (double m : {1.0, 1.0, 1.0}) plateau.step(m);  // best 1, then two bad epochs > patience 1
  BOOST_TEST(s3.lr() == 0.5);
}

BOOST_AUTO_TEST_CASE(state_round_trip_continues_exactly) {
  auto run = [](int steps, optim::Adam<double>*& keep, V& p) {
    for (int i = 0; i < steps; ++i) {
      set_grad_to_value(p);
      keep->step();
    }
  };
  V p(Array<double>{1.0, -2.0}, true);
  auto* a = new optim::Adam<double>({p}, optim::AdamOptions(0.05).amsgrad(true));
  run(3, a, p);
  ArrayMap st = a->state_dict();
  Array<double> saved = p.value();
  run(4, a, p);
  const Array<double> straight = p.value();
  V q(saved, true);
  auto* b = new optim::Adam<double>({q}, optim::AdamOptions(0.05).amsgrad(true));
  b->load_state_dict(st);
  BOOST_TEST(b->steps() == 3u);
  run(4, b, q);
  BOOST_TEST(q.value() == straight);
  delete a;
  delete b;
}

BOOST_AUTO_TEST_SUITE_END()
