// Parity with PyTorch 1.13 in float64: recurrent modules, cells, Linear, optimizers, schedules.
// Fixtures: tests/fixtures/torch/*.npz, made by tests/fixtures/make_torch_fixtures.py.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include "test_util.hpp"

using namespace xg;
namespace bdata = boost::unit_test::data;
using V = Var<double>;

namespace parity_fixtures {
constexpr double kRtol = 1e-7;

struct Fixture {
  ArrayMap m;
  std::string name;
  explicit Fixture(const std::string& n) : m(load_npz(std::string(XGRAD_FIXTURES) + "/torch/" + n + ".npz")), name(n) {}
  bool has(const std::string& k) const { return m.count(k) > 0; }
  Array<double> arr(const std::string& k) const {
    auto it = m.find(k);
    if (it == m.end()) throw std::runtime_error(name + ": no key " + k);
    return array_cast<double>(it->second, k);
  }
  double num(const std::string& k) const { return arr(k)(); }
  std::size_t size(const std::string& k) const { return static_cast<std::size_t>(num(k)); }
};

// Elementwise |got - want| <= rtol |want| + 1e-12, reporting the worst element.
void expect_close(const std::string& what, const Array<double>& got, const Array<double>& want) {
  BOOST_TEST_CONTEXT(what) {
    BOOST_TEST_REQUIRE(shape_str(got.shape()) == shape_str(want.shape()));
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double err = std::abs(got.data()[i] - want.data()[i]) / (std::abs(want.data()[i]) + 1e-5);
      worst = std::max(worst, err);
      if (std::abs(got.data()[i] - want.data()[i]) > kRtol * std::abs(want.data()[i]) + 1e-12) {
        BOOST_ERROR(fmt::format("{}[{}]: {} vs torch {}", what, i, got.data()[i], want.data()[i]));
        return;
      }
    }
    BOOST_TEST_MESSAGE(fmt::format("{}: worst relative error {:.2e}", what, worst));
  }
}

template <class M>
void load_params(M& mod, const Fixture& f) {
  ArrayMap params;
  for (auto& [n, p] : mod.named_parameters()) params.emplace(n, f.m.at(n));
  mod.load_state_dict(params);
}

void compare_grads(const Fixture& f, const nn::Module<double>& mod) {
  for (auto& [n, p] : mod.named_parameters()) expect_close("grad_" + n, p.grad(), f.arr("grad_" + n));
}

const std::vector<std::string> kRnnCases = {
    "rnn_lstm_basic", "rnn_lstm_l2_bi_h0", "rnn_lstm_batch_first", "rnn_lstm_lengths", "rnn_lstm_l2_bi_lengths",
    "rnn_lstm_batch_first_lengths", "rnn_gru_basic", "rnn_gru_l2_bi_h0", "rnn_gru_batch_first", "rnn_gru_lengths",
    "rnn_gru_l2_bi_lengths", "rnn_tanh_basic", "rnn_tanh_l2_bi_h0", "rnn_tanh_batch_first", "rnn_tanh_lengths",
    "rnn_tanh_l2_bi_lengths", "rnn_relu_basic"};
}  // namespace parity_fixtures
using namespace parity_fixtures;

BOOST_AUTO_TEST_SUITE(parity)

// Outputs, final states and the gradients of a loss w.r.t. input, initial states and parameters.
BOOST_DATA_TEST_CASE(recurrent_modules, bdata::make(kRnnCases), name) {
  Fixture f(name);
  const int mode = static_cast<int>(f.num("mode"));
  auto o = nn::RNNOptions(f.size("input_size"), f.size("hidden_size"))
               .num_layers(f.size("num_layers"))
               .bidirectional(f.num("bidirectional") != 0)
               .batch_first(f.num("batch_first") != 0)
               .nonlinearity(mode == 1 ? nn::Nonlinearity::ReLU : nn::Nonlinearity::Tanh);
  V x(f.arr("input"), true);
  V h0, c0;
  if (f.num("has_h0") != 0) {
    h0 = V(f.arr("h0"), true);
    if (mode == 2) c0 = V(f.arr("c0"), true);
  }
  std::vector<std::size_t> lengths;
  if (f.num("has_lengths") != 0)
    for (auto v : f.arr("lengths")) lengths.push_back(static_cast<std::size_t>(v));
  std::unique_ptr<nn::RecurrentBase<double>> mod;
  nn::RNNOutput<double> out;
  if (mode == 2) {
    auto m = std::make_unique<nn::LSTM<double>>(o);
    load_params(*m, f);
    out = m->forward(x, h0, c0, lengths);
    mod = std::move(m);
  } else if (mode == 3) {
    auto m = std::make_unique<nn::GRU<double>>(o);
    load_params(*m, f);
    out = m->forward(x, h0, lengths);
    mod = std::move(m);
  } else {
    auto m = std::make_unique<nn::RNN<double>>(o);
    load_params(*m, f);
    out = m->forward(x, h0, lengths);
    mod = std::move(m);
  }
  expect_close("output", out.output.value(), f.arr("output"));
  expect_close("h_n", out.h_n.value(), f.arr("h_n"));
  V loss = sum(out.output * V(f.arr("w_out"))) + sum(out.h_n * V(f.arr("w_h")));
  if (mode == 2) {
    expect_close("c_n", out.c_n.value(), f.arr("c_n"));
    loss = loss + sum(out.c_n * V(f.arr("w_c")));
  }
  expect_close("loss", loss.value(), f.arr("loss"));
  loss.backward();
  expect_close("grad_input", x.grad(), f.arr("grad_input"));
  if (h0.defined()) expect_close("grad_h0", h0.grad(), f.arr("grad_h0"));
  if (c0.defined()) expect_close("grad_c0", c0.grad(), f.arr("grad_c0"));
  compare_grads(f, *mod);
}

BOOST_DATA_TEST_CASE(cells, bdata::make(std::vector<std::string>{"cell_lstm", "cell_gru", "cell_rnn_tanh"}), name) {
  Fixture f(name);
  const int mode = static_cast<int>(f.num("mode"));
  auto o = nn::RNNOptions(f.size("input_size"), f.size("hidden_size"));
  V x(f.arr("input"), true), h(f.arr("h0"), true);
  V loss;
  if (mode == 2) {
    nn::LSTMCell<double> cell(o);
    load_params(cell, f);
    V c(f.arr("c0"), true);
    auto [h1, c1] = cell.forward(x, h, c);
    expect_close("h1", h1.value(), f.arr("h1"));
    expect_close("c1", c1.value(), f.arr("c1"));
    (sum(h1 * V(f.arr("w_h"))) + sum(c1 * V(f.arr("w_c")))).backward();
    expect_close("grad_c0", c.grad(), f.arr("grad_c0"));
    compare_grads(f, cell);
  } else if (mode == 3) {
    nn::GRUCell<double> cell(o);
    load_params(cell, f);
    V h1 = cell.forward(x, h);
    expect_close("h1", h1.value(), f.arr("h1"));
    sum(h1 * V(f.arr("w_h"))).backward();
    compare_grads(f, cell);
  } else {
    nn::RNNCell<double> cell(o);
    load_params(cell, f);
    V h1 = cell.forward(x, h);
    expect_close("h1", h1.value(), f.arr("h1"));
    sum(h1 * V(f.arr("w_h"))).backward();
    compare_grads(f, cell);
  }
  expect_close("grad_input", x.grad(), f.arr("grad_input"));
  expect_close("grad_h0", h.grad(), f.arr("grad_h0"));
}

BOOST_AUTO_TEST_CASE(linear) {
  Fixture f("linear");
  nn::Linear<double> lin(f.size("in_features"), f.size("out_features"));
  load_params(lin, f);
  V x(f.arr("input"), true);
  V y = lin(x);
  expect_close("output", y.value(), f.arr("output"));
  sum(y * V(f.arr("w_out"))).backward();
  expect_close("grad_input", x.grad(), f.arr("grad_input"));
  compare_grads(f, lin);
}

// 20 steps of each optimizer follow torch.optim's trajectory.
BOOST_DATA_TEST_CASE(optimizers, bdata::make(std::vector<std::string>{"optim_sgd_plain", "optim_sgd_momentum",
                                             "optim_sgd_nesterov_wd", "optim_adam", "optim_adam_amsgrad_wd", "optim_adamw",
                                             "optim_rmsprop", "optim_rmsprop_centered_momentum_wd",
                                             "optim_adagrad", "optim_adagrad_decay_wd_init"}),
                     name) {
  Fixture f(name);
  V a(f.arr("p0_a"), true), b(f.arr("p0_b"), true);
  optim::NamedParams<double> params = {{"a", a}, {"b", b}};
  std::unique_ptr<optim::Optimizer<double>> opt;
  const int kind = static_cast<int>(f.num("optimizer"));
  if (kind == 0) {
    opt = std::make_unique<optim::SGD<double>>(params, optim::SGDOptions(f.num("lr"))
                                                           .momentum(f.num("momentum"))
                                                           .dampening(f.num("dampening"))
                                                           .weight_decay(f.num("weight_decay"))
                                                           .nesterov(f.num("nesterov") != 0));
  } else if (kind == 3) {
    opt = std::make_unique<optim::RMSprop<double>>(params, optim::RMSpropOptions(f.num("lr"))
                                                               .alpha(f.num("alpha"))
                                                               .eps(f.num("eps"))
                                                               .weight_decay(f.num("weight_decay"))
                                                               .momentum(f.num("momentum"))
                                                               .centered(f.num("centered") != 0));
  } else if (kind == 4) {
    opt = std::make_unique<optim::Adagrad<double>>(params, optim::AdagradOptions(f.num("lr"))
                                                               .lr_decay(f.num("lr_decay"))
                                                               .weight_decay(f.num("weight_decay"))
                                                               .initial_accumulator_value(f.num("initial_accumulator_value"))
                                                               .eps(f.num("eps")));
  } else {
    auto ao = optim::AdamOptions(f.num("lr")).beta1(f.num("beta1")).beta2(f.num("beta2")).eps(f.num("eps"))
                  .weight_decay(f.num("weight_decay")).amsgrad(f.num("amsgrad") != 0);
    if (kind == 1) opt = std::make_unique<optim::Adam<double>>(params, ao);
    else opt = std::make_unique<optim::AdamW<double>>(params, ao);
  }
  auto part = [&](const V& p, const char* s) {
    const std::string x(s);
    return sum(V(f.arr("k_" + x)) * square(p - V(f.arr("t_" + x))) * 0.5 + V(f.arr("s_" + x)) * tanh(p));
  };
  const Array<double> traj_a = f.arr("traj_a"), traj_b = f.arr("traj_b"), losses = f.arr("losses");
  for (std::size_t s = 0; s < 20; ++s) {
    opt->zero_grad();
    V loss = part(a, "a") + part(b, "b");
    expect_close(fmt::format("loss {}", s), loss.value(), Array<double>(xt::view(losses, s)));
    loss.backward();
    opt->step();
    expect_close(fmt::format("a after step {}", s + 1), a.value(), Array<double>(xt::view(traj_a, s + 1)));
    expect_close(fmt::format("b after step {}", s + 1), b.value(), Array<double>(xt::view(traj_b, s + 1)));
  }
}

BOOST_AUTO_TEST_CASE(schedules) {
  for (const char* name : {"sched_step", "sched_exponential", "sched_cosine", "sched_plateau"}) {
    Fixture f(name);
    V p(Array<double>{1.0}, true);
    optim::SGD<double> opt({p}, optim::SGDOptions(f.num("lr")));
    const Array<double> lrs = f.arr("lrs");
    const int kind = static_cast<int>(f.num("scheduler"));
    std::unique_ptr<optim::Schedule<double>> sched;
    std::unique_ptr<optim::ReduceLROnPlateau<double>> plateau;
    if (kind == 0) sched = std::make_unique<optim::StepLR<double>>(opt, f.size("step_size"), f.num("gamma"));
    if (kind == 1) sched = std::make_unique<optim::ExponentialLR<double>>(opt, f.num("gamma"));
    if (kind == 2) sched = std::make_unique<optim::CosineAnnealingLR<double>>(opt, f.size("T_max"), f.num("eta_min"));
    if (kind == 3)
      plateau = std::make_unique<optim::ReduceLROnPlateau<double>>(
          opt, optim::ReduceLROnPlateau<double>::Options()
                   .factor(f.num("factor")).patience(f.size("patience")).threshold(f.num("threshold"))
                   .cooldown(f.size("cooldown")).min_lr(f.num("min_lr")).eps(f.num("eps")));
    for (std::size_t e = 0; e < lrs.size(); ++e) {
      BOOST_TEST(std::abs(opt.lr() - lrs(e)) <= 1e-12 * lrs(e) + 1e-15, name << " epoch " << e << ": " << opt.lr() << " vs " << lrs(e));
      if (sched) sched->step();
      else plateau->step(f.arr("metrics")(e));
    }
  }
}

// LinearLR (warm-up) and OneCycleLR, with the momentum (SGD) or beta1 (Adam) OneCycleLR sets.
BOOST_DATA_TEST_CASE(warmup_and_one_cycle_schedules,
                     bdata::make(std::vector<std::string>{"sched_linear_warmup", "sched_linear_partial",
                                                          "sched_onecycle_cos_sgd",
                                                          "sched_onecycle_linear_three_phase_adam",
                                                          "sched_onecycle_no_momentum"}),
                     name) {
  Fixture f(name);
  V p(Array<double>{1.0}, true);
  const bool adam = f.has("momentum_kind") && f.num("momentum_kind") == 1;
  const bool sgd_momentum = f.has("momentum_kind") && f.num("momentum_kind") == 0;
  std::unique_ptr<optim::Optimizer<double>> opt;
  if (adam) opt = std::make_unique<optim::Adam<double>>(std::vector<V>{p}, optim::AdamOptions(f.num("lr")));
  else opt = std::make_unique<optim::SGD<double>>(std::vector<V>{p}, optim::SGDOptions(f.num("lr")).momentum(sgd_momentum ? 0.9 : 0.0));
  std::unique_ptr<optim::Schedule<double>> sched;
  if (f.num("scheduler") == 4) {
    sched = std::make_unique<optim::LinearLR<double>>(*opt, f.num("start_factor"), f.num("end_factor"), f.size("total_iters"));
  } else {
    using A = optim::OneCycleOptions::Anneal;
    sched = std::make_unique<optim::OneCycleLR<double>>(
        *opt, optim::OneCycleOptions(f.num("max_lr"), f.size("total_steps"))
                  .pct_start(f.num("pct_start"))
                  .anneal_strategy(f.num("anneal_linear") != 0 ? A::Linear : A::Cos)
                  .cycle_momentum(f.num("momentum_kind") != 2)
                  .base_momentum(f.num("base_momentum"))
                  .max_momentum(f.num("max_momentum"))
                  .div_factor(f.num("div_factor"))
                  .final_div_factor(f.num("final_div_factor"))
                  .three_phase(f.num("three_phase") != 0));
  }
  const Array<double> lrs = f.arr("lrs"), momenta = f.arr("momenta");
  auto momentum = [&] {
    if (adam) return static_cast<optim::Adam<double>&>(*opt).options.beta1();
    return static_cast<optim::SGD<double>&>(*opt).options.momentum();
  };
  for (std::size_t e = 0; e < lrs.size(); ++e) {
    BOOST_TEST(std::abs(opt->lr() - lrs(e)) <= 1e-12 * lrs(e) + 1e-15, name << " step " << e << ": " << opt->lr() << " vs " << lrs(e));
    BOOST_TEST(std::abs(momentum() - momenta(e)) <= 1e-12, name << " step " << e << " momentum: " << momentum() << " vs " << momenta(e));
    if (e + 1 < lrs.size()) sched->step();
  }
}

// A state_dict exported from PyTorch with numpy.savez loads unchanged.
BOOST_AUTO_TEST_CASE(pytorch_state_dict_loads) {
  nn::LSTM<float> lstm(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true));
  nn::LoadReport r = lstm.load(std::string(XGRAD_FIXTURES) + "/torch/lstm_state_dict.npz");
  BOOST_TEST(r.ok());
  Fixture f("lstm_state_dict");
  for (auto& [n, p] : lstm.named_parameters())
    BOOST_TEST(xt::allclose(xt::cast<double>(p.value()), f.arr(n), 1e-7, 1e-7), n);
}

BOOST_AUTO_TEST_SUITE_END()
