// RMSprop, Adagrad, LinearLR (warm-up) and OneCycleLR: first steps by hand, state round trips,
// bad options. Their torch.optim trajectories are compared in tests/nn/parity_test.cpp.
#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;
using V = Var<double>;

namespace {
// loss = sum(p^2) / 2  ->  g = p
void grad_is_value(V& p) {
  p.zero_grad();
  sum(p * p * 0.5).backward();
}

// Runs `steps` steps of `opt` on p.
void run(optim::Optimizer<double>& opt, V& p, int steps) {
  for (int i = 0; i < steps; ++i) {
    grad_is_value(p);
    opt.step();
  }
}

// Saving after 3 steps and loading into a fresh optimizer continues exactly.
template <class Opt, class Options>
void check_round_trip(const Options& o, const std::vector<std::string>& buffers) {
  V p(Array<double>{1.0, -2.0}, true);
  Opt a({p}, o);
  run(a, p, 3);
  ArrayMap st = a.state_dict();
  for (const auto& b : buffers) BOOST_TEST(st.count("0." + b) == 1u, "state has 0." << b);
  const Array<double> saved = p.value();
  run(a, p, 4);
  V q(saved, true);
  Opt b({q}, o);
  b.load_state_dict(st);
  BOOST_TEST(b.steps() == 3u);
  run(b, q, 4);
  BOOST_TEST(q.value() == p.value());
}
}  // namespace

BOOST_AUTO_TEST_SUITE(more_optimizers)

BOOST_AUTO_TEST_CASE(rmsprop_by_hand) {
  // v = 0.01 g^2, d = 0.1 |g| + eps: the first step moves each coordinate by about lr * 10 * sign(g)
  V p(Array<double>{1.0, -2.0}, true);
  optim::RMSprop<double> rms({p}, optim::RMSpropOptions(0.01));
  grad_is_value(p);
  rms.step();
  BOOST_TEST(std::abs(p.value()(0) - (1.0 - 0.01 * 1.0 / (0.1 + 1e-8))) < 1e-15);
  BOOST_TEST(std::abs(p.value()(1) - (-2.0 + 0.01 * 2.0 / (0.2 + 1e-8))) < 1e-15);
  // centered with momentum, two steps: a = 0.01 g, d = sqrt(v - a^2) + eps, b = 0.9 b + g / d
  V q(Array<double>{1.0}, true);
  optim::RMSprop<double> c({q}, optim::RMSpropOptions(0.1).centered(true).momentum(0.9).weight_decay(0.5));
  grad_is_value(q);
  c.step();
  const double g1 = 1.5, v1 = 0.01 * g1 * g1, a1 = 0.01 * g1, b1 = g1 / (std::sqrt(v1 - a1 * a1) + 1e-8);
  const double q1 = 1.0 - 0.1 * b1;
  BOOST_TEST(std::abs(q.value()(0) - q1) < 1e-14);
  grad_is_value(q);
  c.step();
  const double g2 = 1.5 * q1, v2 = 0.99 * v1 + 0.01 * g2 * g2, a2 = 0.99 * a1 + 0.01 * g2;
  const double b2 = 0.9 * b1 + g2 / (std::sqrt(v2 - a2 * a2) + 1e-8);
  BOOST_TEST(std::abs(q.value()(0) - (q1 - 0.1 * b2)) < 1e-14);
  BOOST_CHECK_EXCEPTION(optim::RMSprop<double>({q}, optim::RMSpropOptions().alpha(1.5)), ValueError,
                        mentions({"RMSprop", "alpha = 1.5"}));
  BOOST_CHECK_EXCEPTION(optim::RMSprop<double>({q}, optim::RMSpropOptions().momentum(-1)), ValueError,
                        mentions({"RMSprop", "momentum = -1"}));
}

BOOST_AUTO_TEST_CASE(adagrad_by_hand) {
  // s = 0.1 + g^2; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
  V p(Array<double>{2.0}, true);
  optim::Adagrad<double> ada({p}, optim::AdagradOptions(0.1).lr_decay(0.5).initial_accumulator_value(0.1));
  grad_is_value(p);
  ada.step();
  const double s1 = 0.1 + 4.0, p1 = 2.0 - 0.1 * 2.0 / (std::sqrt(s1) + 1e-10);
  BOOST_TEST(std::abs(p.value()(0) - p1) < 1e-15);
  grad_is_value(p);
  ada.step();
  const double s2 = s1 + p1 * p1, p2 = p1 - 0.1 / 1.5 * p1 / (std::sqrt(s2) + 1e-10);
  BOOST_TEST(std::abs(p.value()(0) - p2) < 1e-15);
  BOOST_CHECK_EXCEPTION(optim::Adagrad<double>({p}, optim::AdagradOptions().lr_decay(-1)), ValueError,
                        mentions({"Adagrad", "lr_decay = -1"}));
  BOOST_CHECK_EXCEPTION(optim::Adagrad<double>({p}, optim::AdagradOptions().initial_accumulator_value(-1)),
                        ValueError, mentions({"Adagrad", "initial_accumulator_value = -1"}));
}

BOOST_AUTO_TEST_CASE(state_round_trips_continue_exactly) {
  check_round_trip<optim::RMSprop<double>>(optim::RMSpropOptions(0.01).centered(true).momentum(0.5),
                                           {"square_avg", "grad_avg", "momentum_buffer"});
  check_round_trip<optim::Adagrad<double>>(optim::AdagradOptions(0.1).lr_decay(0.1).initial_accumulator_value(0.2),
                                           {"sum"});
}

BOOST_AUTO_TEST_CASE(linear_warmup_by_hand) {
  V p(Array<double>{1.0}, true);
  optim::SGD<double> sgd({p}, optim::SGDOptions(1.0));
  optim::LinearLR<double> warm(sgd, 0.25, 1.0, 3);
  std::vector<double> lrs{sgd.lr()};
  for (int e = 0; e < 4; ++e) {
    warm.step();
    lrs.push_back(sgd.lr());
  }
  BOOST_TEST(lrs == (std::vector<double>{0.25, 0.5, 0.75, 1.0, 1.0}), boost::test_tools::per_element());
  BOOST_CHECK_EXCEPTION(optim::LinearLR<double>(sgd, 0.0), ValueError, mentions({"LinearLR", "start_factor = 0"}));
}

BOOST_AUTO_TEST_CASE(one_cycle_by_hand) {
  // max 1, 10 steps, 30% up: 0.04 -> 1 over steps 0..2 (cosine), then down to 0.04 / 1e4 at step 9
  V p(Array<double>{1.0}, true);
  optim::SGD<double> sgd({p}, optim::SGDOptions(0.1).momentum(0.9));
  optim::OneCycleLR<double> sched(sgd, optim::OneCycleOptions(1.0, 10));
  BOOST_TEST(std::abs(sgd.lr() - 0.04) < 1e-15);
  BOOST_TEST(std::abs(sgd.options.momentum() - 0.95) < 1e-15);
  sched.step();
  BOOST_TEST(std::abs(sgd.lr() - 0.52) < 1e-15);
  BOOST_TEST(std::abs(sgd.options.momentum() - 0.90) < 1e-15);
  sched.step();
  BOOST_TEST(std::abs(sgd.lr() - 1.0) < 1e-15);
  BOOST_TEST(std::abs(sgd.options.momentum() - 0.85) < 1e-15);
  for (int i = 0; i < 7; ++i) sched.step();
  BOOST_TEST(std::abs(sgd.lr() - 4e-6) < 1e-18);
  BOOST_TEST(std::abs(sgd.options.momentum() - 0.95) < 1e-15);
  sched.step();  // step 10 is allowed, as in PyTorch; 11 is not
  BOOST_CHECK_EXCEPTION(sched.step(), ValueError, mentions({"OneCycleLR", "stepped 11 times", "total_steps is 10"}));
  // Adam's beta1 cycles; Adagrad has no momentum to cycle
  optim::Adam<double> adam({p}, optim::AdamOptions(0.1));
  optim::OneCycleLR<double> on_adam(adam, optim::OneCycleOptions(1.0, 10).anneal_strategy(optim::OneCycleOptions::Anneal::Linear));
  on_adam.step();
  BOOST_TEST(std::abs(adam.lr() - 0.52) < 1e-15);
  BOOST_TEST(std::abs(adam.options.beta1() - 0.90) < 1e-15);
  optim::Adagrad<double> ada({p}, optim::AdagradOptions());
  BOOST_CHECK_EXCEPTION(optim::OneCycleLR<double>(ada, optim::OneCycleOptions(1.0, 10)), ValueError,
                        mentions({"OneCycleLR", "cycle_momentum"}));
  optim::OneCycleLR<double> no_m(ada, optim::OneCycleOptions(1.0, 10).cycle_momentum(false));
  BOOST_TEST(std::abs(ada.lr() - 0.04) < 1e-15);
}

BOOST_AUTO_TEST_SUITE_END()
