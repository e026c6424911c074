// The open cell interface, the one driver (nn::Recurrent) and the gallery of published cells:
// each cell's step against its paper's equations written out independently here, float64
// gradchecks through the driver (2 layers, bidirectional, ragged lengths, initial states), the
// driver's semantics, and the errors for bad cells and bad input.
#include <map>

#include "test_util.hpp"

using namespace xg;
using test::mentions;
using test::rnd;
using V = Var<double>;
using A = Array<double>;

namespace cells_test {

// ---- Independent reference arithmetic (plain loops, no autograd) ------------------------------
A mm(const A& x, const A& w) {  // x [B, K], w [N, K] -> x w^T [B, N]
  A y = zeros<double>(Shape{x.shape(0), w.shape(0)});
  for (std::size_t b = 0; b < x.shape(0); ++b)
    for (std::size_t n = 0; n < w.shape(0); ++n)
      for (std::size_t k = 0; k < x.shape(1); ++k) y(b, n) += x(b, k) * w(n, k);
  return y;
}
A rows(const A& x, std::size_t from, std::size_t n) {  // columns [from, from + n) of x [B, *]
  A y = A::from_shape({x.shape(0), n});
  for (std::size_t b = 0; b < x.shape(0); ++b)
    for (std::size_t j = 0; j < n; ++j) y(b, j) = x(b, from + j);
  return y;
}
A sig(const A& x) { return 1.0 / (1.0 + xt::exp(-x)); }
A th(const A& x) { return xt::tanh(x); }
A ln(const A& x, const A& gain, const A& shift) {  // over the last axis, eps 1e-5
  A y = x;
  const std::size_t D = x.shape(1);
  for (std::size_t b = 0; b < x.shape(0); ++b) {
    double m = 0, v = 0;
    for (std::size_t j = 0; j < D; ++j) m += x(b, j) / D;
    for (std::size_t j = 0; j < D; ++j) v += (x(b, j) - m) * (x(b, j) - m) / D;
    for (std::size_t j = 0; j < D; ++j) y(b, j) = (x(b, j) - m) / std::sqrt(v + 1e-5) * gain(j) + shift(j);
  }
  return y;
}

using Params = std::map<std::string, A>;
Params params_of(const nn::Module<double>& m) {
  Params p;
  for (auto& [n, v] : m.named_parameters()) p[n] = v.value();
  return p;
}

// The paper's equations of one step, (h, c) -> (h', c'), with this project's gate orders.
std::pair<A, A> reference_step(const std::string& cell, Params& p, const A& x, const A& h, const A& c) {
  const std::size_t H = h.shape(1);
  if (cell == "peephole_lstm") {
    A g = mm(x, p["weight_ih"]) + mm(h, p["weight_hh"]) + p["bias"];
    A i = sig(rows(g, 0, H) + p["peephole_i"] * c), f = sig(rows(g, H, H) + p["peephole_f"] * c);
    A c2 = f * c + i * th(rows(g, 2 * H, H));
    A o = sig(rows(g, 3 * H, H) + p["peephole_o"] * c2);
    return {o * th(c2), c2};
  }
  if (cell == "cifg_lstm") {
    A g = mm(x, p["weight_ih"]) + mm(h, p["weight_hh"]) + p["bias"];
    A i = sig(rows(g, 0, H) + p["peephole_i"] * c), f = 1.0 - i;
    A c2 = f * c + i * th(rows(g, H, H));
    A o = sig(rows(g, 2 * H, H) + p["peephole_o"] * c2);
    return {o * th(c2), c2};
  }
  if (cell == "ln_lstm") {
    A g = ln(mm(h, p["weight_hh"]), p["ln_hh_weight"], p["ln_hh_bias"]) +
          ln(mm(x, p["weight_ih"]), p["ln_ih_weight"], p["ln_ih_bias"]) + p["bias"];
    A c2 = sig(rows(g, H, H)) * c + sig(rows(g, 0, H)) * th(rows(g, 2 * H, H));
    return {sig(rows(g, 3 * H, H)) * th(ln(c2, p["ln_c_weight"], p["ln_c_bias"])), c2};
  }
  if (cell == "mgu") {
    A xp = mm(x, p["weight_ih"]) + p["bias"];
    A f = sig(rows(xp, 0, H) + mm(h, p["weight_hf"]));
    A cand = th(rows(xp, H, H) + mm(f * h, p["weight_hh"]));
    return {(1.0 - f) * h + f * cand, A()};
  }
  if (cell == "indrnn") {
    A pre = mm(x, p["weight_ih"]) + p["weight_hh"] * h + p["bias_ih"];
    return {xt::maximum(pre, 0.0), A()};
  }
  if (cell == "mlstm") {
    A m = mm(x, p["weight_mx"]) * mm(h, p["weight_mh"]);
    A g = mm(x, p["weight_ih"]) + mm(m, p["weight_hm"]) + p["bias"];
    A c2 = sig(rows(g, H, H)) * c + sig(rows(g, 0, H)) * th(rows(g, 2 * H, H));
    return {sig(rows(g, 3 * H, H)) * th(c2), c2};
  }
  if (cell == "lstm") {
    A g = mm(x, p["weight_ih"]) + mm(h, p["weight_hh"]) + p["bias_ih"] + p["bias_hh"];
    A c2 = sig(rows(g, H, H)) * c + sig(rows(g, 0, H)) * th(rows(g, 2 * H, H));
    return {sig(rows(g, 3 * H, H)) * th(c2), c2};
  }
  throw std::runtime_error("no reference for " + cell);
}

const std::vector<std::string> kGallery = {"peephole_lstm", "cifg_lstm", "ln_lstm", "mgu", "indrnn", "mlstm"};

// A plain LSTM written by a user against the interface: what nn::LSTM computes.
template <class T>
struct UserLSTM : nn::Cell<T> {
  Var<T> w_ih, w_hh, b;
  explicit UserLSTM(const nn::RNNOptions& o, Generator& g = default_generator()) : nn::Cell<T>("UserLSTM", o, {"h", "c"}) {
    const std::size_t H = o.hidden_size();
    w_ih = this->uniform_parameter("weight_ih", {4 * H, o.input_size()}, g);
    w_hh = this->uniform_parameter("weight_hh", {4 * H, H}, g);
    b = this->uniform_parameter("bias", {4 * H}, g);
  }
  Var<T> project(const Var<T>& x) const override { return linear(x, w_ih, b); }
  nn::State<T> step(const Var<T>& xp, const nn::State<T>& s) const override {
    auto [h, c] = nn::lstm_step(xp, s[0], s[1], w_hh);
    return {h, c};
  }
};

// Broken cells, for the error messages.
template <class T>
struct OneStateTooFew : nn::Cell<T> {
  explicit OneStateTooFew(const nn::RNNOptions& o, Generator& = default_generator()) : nn::Cell<T>("TooFew", o, {"h", "c"}) {}
  nn::State<T> step(const Var<T>& xp, const nn::State<T>&) const override { return {xp}; }
};
template <class T>
struct WrongShape : nn::Cell<T> {
  explicit WrongShape(const nn::RNNOptions& o, Generator& = default_generator()) : nn::Cell<T>("WrongShape", o) {}
  nn::State<T> step(const Var<T>& xp, const nn::State<T>&) const override { return {xp}; }  // [B, in], not [B, H]
};

V loss_of(const nn::RNNOutput<double>& o) {
  V total = sum(o.output * o.output);
  for (const auto& s : o.states) total = total + sum(tanh(s) * 0.7);
  return total;
}
}  // namespace cells_test
using namespace cells_test;

BOOST_AUTO_TEST_SUITE(cells)

// Each gallery cell's step equals its paper's equations, written out above without autograd.
BOOST_AUTO_TEST_CASE(gallery_steps_match_the_papers) {
  for (const auto& name : kGallery) {
    BOOST_TEST_CONTEXT(name) {
      Generator g(5);
      auto cell = nn::cell_factory<double>(name)(nn::RNNOptions(3, 4), g);
      Params p = params_of(*cell);
      // parameters away from their initial values, so gains and shifts matter too
      for (auto& [n, v] : cell->named_parameters()) v.mutable_value() = rnd<double>(v.shape(), n.size() * 7 + 1, -0.8, 0.8);
      p = params_of(*cell);
      A x = rnd<double>(Shape{2, 3}, 1), h = rnd<double>(Shape{2, 4}, 2), c = rnd<double>(Shape{2, 4}, 3);
      nn::State<double> s = cell->num_states() == 2 ? (*cell)(V(x), {V(h), V(c)}) : (*cell)(V(x), {V(h)});
      auto [h2, c2] = reference_step(name, p, x, h, c);
      BOOST_TEST(test::close(s[0].value(), h2, 1e-12, 1e-13));
      if (cell->num_states() == 2) BOOST_TEST(test::close(s[1].value(), c2, 1e-12, 1e-13));
      Tape<double>::current().clear();
    }
  }
}

// Every gallery cell through the driver: 2 layers, bidirectional, ragged lengths and given initial
// states; gradients of the input, every initial state and every parameter against central differences.
BOOST_AUTO_TEST_CASE(gallery_gradchecks_through_the_driver) {
  for (const auto& name : kGallery) {
    BOOST_TEST_CONTEXT(name) {
      Generator g(11);
      nn::Recurrent<double> net(nn::RNNOptions(2, 3).num_layers(2).bidirectional(true), name, g);
      V x = test::leaf(rnd<double>(Shape{4, 3, 2}, 7));
      nn::State<double> init;
      for (std::size_t k = 0; k < net.cell(0, 0).num_states(); ++k)
        init.push_back(test::leaf(rnd<double>(Shape{4, 3, 3}, 20 + k)));
      std::vector<V> leaves = {x};
      for (auto& s : init) leaves.push_back(s);
      const std::vector<std::size_t> lengths{4, 2, 1};
      GradcheckOptions o;
      o.mode = GradcheckOptions::Mode::Full;
      test::expect_gradcheck([&] { return loss_of(net.forward(x, init, lengths)); }, test::with_params(leaves, net), o);
    }
  }
}

// A plain LSTM written against the interface computes exactly what nn::LSTM computes, through every
// driver feature at once.
BOOST_AUTO_TEST_CASE(user_lstm_equals_builtin) {
  auto o = nn::RNNOptions(3, 4).num_layers(2).bidirectional(true).batch_first(true);
  nn::LSTM<double> ref(o);
  nn::Recurrent<double> mine(o, nn::cell_factory<UserLSTM<double>>());
  // same numbers: bias = b_ih + b_hh
  auto rp = ref.named_parameters();
  for (auto& [n, p] : mine.named_parameters()) {
    if (n.rfind("bias", 0) == 0) {
      const std::string sfx = n.substr(4);
      A bih = array_cast<double>(ref.state_dict().at("bias_ih" + sfx), n), bhh = array_cast<double>(ref.state_dict().at("bias_hh" + sfx), n);
      p.mutable_value() = bih + bhh;
    } else {
      p.mutable_value() = array_cast<double>(ref.state_dict().at(n), n);
    }
  }
  V x(rnd<double>(Shape{3, 5, 3}, 4));
  V h0(rnd<double>(Shape{4, 3, 4}, 5)), c0(rnd<double>(Shape{4, 3, 4}, 6));
  const std::vector<std::size_t> lengths{5, 3, 2};
  auto a = ref.forward(x, h0, c0, lengths);
  auto b = mine.forward(x, {h0, c0}, lengths);
  BOOST_TEST(test::close(a.output.value(), b.output.value()));
  BOOST_TEST(test::close(a.h_n.value(), b.h_n.value()));
  BOOST_TEST(test::close(a.c_n.value(), b.c_n.value()));
  BOOST_TEST(b.states.size() == 2u);
  BOOST_TEST(mine.named_parameters().size() == 12u);  // weight_ih, weight_hh, bias x 2 layers x 2 directions
  BOOST_TEST(mine.named_parameters()[3].first == "weight_ih_l0_reverse");
  Tape<double>::current().clear();
}

// Packed-sequence semantics for any cell: a short sequence in a ragged batch gives exactly what it
// gives alone (outputs past its end are zero; both directions start at its own ends).
BOOST_AUTO_TEST_CASE(ragged_batch_equals_each_sequence_alone) {
  for (const auto& name : std::vector<std::string>{"mlstm", "mgu"}) {
    BOOST_TEST_CONTEXT(name) {
      Generator g(2);
      nn::Recurrent<double> net(nn::RNNOptions(2, 3).num_layers(2).bidirectional(true), name, g);
      A xs = rnd<double>(Shape{5, 2, 2}, 9);
      auto batch = net.forward(V(xs), {}, {5, 3});
      A alone = xt::view(xs, xt::range(0, 3), xt::range(1, 2), xt::all());
      auto one = net.forward(V(alone));
      A got = xt::view(batch.output.value(), xt::range(0, 3), xt::range(1, 2), xt::all());
      BOOST_TEST(test::close(got, one.output.value()));
      A pad = xt::view(batch.output.value(), xt::range(3, 5), 1, xt::all());
      BOOST_TEST(xt::amax(xt::abs(pad))() == 0.0);
      for (std::size_t k = 0; k < batch.states.size(); ++k) {
        A s = xt::view(batch.states[k].value(), xt::all(), xt::range(1, 2), xt::all());
        BOOST_TEST(test::close(s, one.states[k].value()));
      }
      Tape<double>::current().clear();
    }
  }
}

// Dropout between layers acts in training mode only, with the module's own generator.
BOOST_AUTO_TEST_CASE(dropout_between_layers) {
  Generator g(3);
  nn::Recurrent<double> net(nn::RNNOptions(2, 8).num_layers(2).dropout(0.5), "peephole_lstm", g);
  V x(rnd<double>(Shape{4, 3, 2}, 1));
  A a = net.forward(x).output.value(), b = net.forward(x).output.value();
  BOOST_TEST(!test::close(a, b));  // two different masks
  net.eval();
  A c = net.forward(x).output.value(), d = net.forward(x).output.value();
  BOOST_TEST(test::close(c, d));
  Tape<double>::current().clear();
}

// Every registered cell builds and runs in float and double, with the driver's shapes.
BOOST_AUTO_TEST_CASE(catalog) {
  const auto names = nn::cell_names();
  for (const char* n : {"lstm", "gru", "rnn_tanh", "rnn_relu", "peephole_lstm", "cifg_lstm", "ln_lstm", "mgu", "indrnn", "mlstm"})
    BOOST_TEST((std::find(names.begin(), names.end(), n) != names.end()), n);
  for (const auto& info : nn::cell_catalog()) {
    BOOST_TEST_CONTEXT(info.name) {
      BOOST_TEST(!info.about.empty());
      nn::Recurrent<float> f(nn::RNNOptions(3, 5).num_layers(2).bidirectional(true), info.name);
      auto out = f.forward(Var<float>(rnd<float>(Shape{4, 2, 3}, 1)));
      BOOST_TEST(out.output.shape() == (Shape{4, 2, 10}));
      BOOST_TEST(out.h_n.shape() == (Shape{4, 2, 5}));
      BOOST_TEST(f.name() == "Recurrent(" + f.cell(0, 0).name() + ")");
      nn::Recurrent<double> d(nn::RNNOptions(3, 5), info.name);
      BOOST_TEST(d.forward(V(rnd<double>(Shape{2, 1, 3}, 1))).states.size() == d.cell(0, 0).num_states());
    }
  }
  Tape<float>::current().clear();
  Tape<double>::current().clear();
  // rnn_relu really is ReLU: no negative outputs
  nn::Recurrent<double> r(nn::RNNOptions(3, 5), "rnn_relu");
  BOOST_TEST(xt::amin(r.forward(V(rnd<double>(Shape{3, 2, 3}, 4))).output.value())() >= 0.0);
  // a user's cell, registered by name
  nn::register_cell<UserLSTM>("user_lstm", "a plain LSTM written in the test");
  nn::Recurrent<float> u(nn::RNNOptions(3, 5), "user_lstm");
  BOOST_TEST(u.cell(0, 0).name() == "UserLSTM");
  Tape<double>::current().clear();
}

// forget_bias sets the forget gate's bias in every cell that has one.
BOOST_AUTO_TEST_CASE(forget_bias_in_gallery) {
  auto o = nn::RNNOptions(2, 3).forget_bias(2.0);
  nn::PeepholeLSTMCell<double> p(o);
  BOOST_TEST(p.bias.value()(3) == 2.0);
  BOOST_TEST(p.bias.value()(5) == 2.0);
  BOOST_TEST(p.bias.value()(6) != 2.0);
  nn::MultiplicativeLSTMCell<double> m(o);
  BOOST_TEST(m.bias.value()(4) == 2.0);
  BOOST_CHECK_EXCEPTION(nn::CIFGLSTMCell<double>{o}, ValueError, mentions({"CIFGLSTMCell", "forget_bias"}));
  BOOST_CHECK_EXCEPTION(nn::LSTM<double>(nn::LSTMOptions(2, 3).forget_bias(std::nan(""))), ValueError,
                        mentions({"LSTM", "forget_bias = nan", "finite"}));
  BOOST_CHECK_EXCEPTION(nn::LSTM<double>(nn::LSTMOptions(2, 3).forget_bias(1.0).bias(false)), ValueError,
                        mentions({"LSTM", "forget_bias", "bias"}));
}

// Bad cells and bad input: errors name the module, the cell, the state and the shapes.
BOOST_AUTO_TEST_CASE(errors) {
  V x(rnd<double>(Shape{4, 2, 3}, 1));
  nn::Recurrent<double> few(nn::RNNOptions(3, 3), nn::cell_factory<OneStateTooFew<double>>());
  BOOST_CHECK_EXCEPTION(few.forward(x), ValueError, mentions({"TooFew", "returned 1 state", "declares 2 (h, c)"}));
  nn::Recurrent<double> wrong(nn::RNNOptions(3, 4), nn::cell_factory<WrongShape<double>>());
  BOOST_CHECK_EXCEPTION(wrong.forward(x), ShapeError, mentions({"WrongShape", "state 'h'", "(2, 3)", "(2, 4)"}));
  Tape<double>::current().clear();

  nn::Recurrent<double> net(nn::RNNOptions(3, 4).num_layers(2), "peephole_lstm");
  BOOST_CHECK_EXCEPTION(net.forward(x, {}, {4, 5}), ValueError,
                        mentions({"Recurrent(PeepholeLSTMCell)", "lengths[1] = 5", "[1, 4]"}));
  BOOST_CHECK_EXCEPTION(net.forward(x, {}, {4, 0}), ValueError, mentions({"lengths[1] = 0"}));
  BOOST_CHECK_EXCEPTION(net.forward(x, {}, {4}), ShapeError, mentions({"1 lengths", "batch of 2"}));
  BOOST_CHECK_EXCEPTION(net.forward(x, {V(zeros<double>(Shape{2, 2, 4})), V(zeros<double>(Shape{2, 2, 5}))}), ShapeError,
                        mentions({"Recurrent(PeepholeLSTMCell)", "c0", "PeepholeLSTMCell", "(2, 2, 4)", "(2, 2, 5)"}));
  BOOST_CHECK_EXCEPTION(net.forward(x, {V(), V(), V()}), ValueError, mentions({"3 initial states", "has 2 (h, c)"}));
  BOOST_CHECK_EXCEPTION(net.forward(V(zeros<double>(Shape{0, 2, 3}))), ShapeError,
                        mentions({"Recurrent(PeepholeLSTMCell)", "(0, 2, 3)", "no time steps"}));
  BOOST_CHECK_EXCEPTION(net.forward(V(zeros<double>(Shape{4, 2, 5}))), ShapeError, mentions({"3 features", "(4, 2, 5)"}));
  BOOST_CHECK_EXCEPTION(nn::LSTM<double>(nn::LSTMOptions(3, 4)).forward(V(zeros<double>(Shape{0, 2, 3}))), ShapeError,
                        mentions({"LSTM", "no time steps"}));
  BOOST_CHECK_EXCEPTION(nn::Recurrent<double>(nn::RNNOptions(3, 4), "nope"), ValueError,
                        mentions({"unknown cell 'nope'", "lstm", "peephole_lstm", "mlstm"}));
  BOOST_CHECK_EXCEPTION(nn::Recurrent<double>(nn::RNNOptions(3, 4).nonlinearity(nn::Nonlinearity::ReLU), "mgu"),
                        ValueError, mentions({"Recurrent", "MGUCell", "nonlinearity"}));
  // step-by-step use checks the state too
  nn::MGUCell<double> cell(nn::RNNOptions(3, 4));
  BOOST_CHECK_EXCEPTION(cell(V(zeros<double>(Shape{2, 3})), {V(zeros<double>(Shape{2, 5}))}), ShapeError,
                        mentions({"MGUCell", "state 'h'", "(2, 4)", "(2, 5)"}));
  BOOST_CHECK_EXCEPTION(cell(V(zeros<double>(Shape{2, 2}))), ShapeError, mentions({"MGUCell", "[batch, 3]", "(2, 2)"}));
  Tape<double>::current().clear();
}

BOOST_AUTO_TEST_SUITE_END()
