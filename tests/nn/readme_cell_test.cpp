// The README's "Write your own cell" example, compiled and run here. The code between the two
// marker lines is the README's code block, character for character (the ctest readme_cell_example
// compares them).
#include "test_util.hpp"

// README cell example begin
#include <xgrad/xgrad.hpp>
using namespace xg;

// Peephole LSTM (Gers and Schmidhuber, 2000): the gates also look at the cell state.
template <class T>
struct Peephole : nn::Cell<T> {
  Var<T> w_ih, w_hh, b, p_i, p_f, p_o;
  explicit Peephole(const nn::RNNOptions& o, Generator& g = default_generator())
      : nn::Cell<T>("Peephole", o, {"h", "c"}) {  // the state is (h, c); the layer outputs h
    const std::size_t H = o.hidden_size();
    w_ih = this->uniform_parameter("weight_ih", {4 * H, o.input_size()}, g);
    w_hh = this->uniform_parameter("weight_hh", {4 * H, H}, g);
    b = this->uniform_parameter("bias", {4 * H}, g);
    p_i = this->uniform_parameter("peephole_i", {H}, g);
    p_f = this->uniform_parameter("peephole_f", {H}, g);
    p_o = this->uniform_parameter("peephole_o", {H}, g);
  }
  // The input's part of every time step, computed by the driver in one GEMM.
  Var<T> project(const Var<T>& x) const override { return linear(x, w_ih, b); }
  // One step: (h, c) -> (h', c'), from ordinary ops; autograd does the rest.
  nn::State<T> step(const Var<T>& xp, const nn::State<T>& s) const override {
    const Var<T>&h = s[0], &c = s[1];
    auto g = chunk(addmm(xp, h, w_hh, NoTrans, DoTrans), 4, -1);  // xp + h W_hh^T
    Var<T> forget_gate = sigmoid(g[1] + p_f * c);
    Var<T> input_gate = sigmoid(g[0] + p_i * c);
    Var<T> c_next = forget_gate * c + input_gate * tanh(g[2]);
    Var<T> output_gate = sigmoid(g[3] + p_o * c_next);
    return {output_gate * tanh(c_next), c_next};
  }
};

// Layers, directions, lengths, initial states and dropout come from the driver:
float train_peephole() {
  nn::Recurrent<float> net(nn::RNNOptions(1, 32).num_layers(2).bidirectional(true).dropout(0.1),
                           nn::cell_factory<Peephole<float>>());
  nn::Linear head(64, 1);
  optim::Adam opt(nn::parameters(net, head), optim::AdamOptions(0.01));
  Generator gen(0);
  float last = 0;
  for (int step = 0; step <= 200; ++step) {
    Var<float> x(uniform<float>({20, 16, 1}, -1.f, 1.f, gen));   // [time, batch, features]
    Var<float> target(Array<float>(xt::mean(x.value(), {0})));   // [16, 1]: the mean
    std::vector<std::size_t> lengths(16, 20);                    // every sequence whole here
    auto [y, h_n, c_n] = net.forward(x, {}, lengths);            // y [20, 16, 64]
    Var<float> loss = mse_loss(head(select(y, 0, 19)), target);
    opt.zero_grad();
    loss.backward();
    opt.step();
    last = loss.item();
    if (step % 100 == 0) fmt::print("step {:3}  loss {:.4f}\n", step, last);
  }
  return last;  // predicting 0 scores about 0.017 (the variance of the mean)
}
// README cell example end

BOOST_AUTO_TEST_SUITE(readme_cell)

// The README's cell is the gallery's peephole LSTM: same parameters, same outputs.
BOOST_AUTO_TEST_CASE(readme_peephole_equals_gallery) {
  auto o = nn::RNNOptions(3, 4).num_layers(2).bidirectional(true);
  Generator g1(4), g2(4);
  nn::Recurrent<double> mine(o, nn::cell_factory<Peephole<double>>(), g1);
  nn::Recurrent<double> gallery(o, "peephole_lstm", g2);
  BOOST_TEST(mine.num_parameters() == gallery.num_parameters());
  BOOST_TEST(mine.state_dict().size() == gallery.state_dict().size());
  gallery.load_state_dict(mine.state_dict());  // same names, same shapes
  Var<double> x(test::rnd<double>(Shape{5, 3, 3}, 1));
  auto a = mine.forward(x, {}, {5, 2, 4}), b = gallery.forward(x, {}, {5, 2, 4});
  BOOST_TEST(test::close(a.output.value(), b.output.value()));
  BOOST_TEST(test::close(a.c_n.value(), b.c_n.value()));
  Tape<double>::current().clear();
}

BOOST_AUTO_TEST_CASE(readme_peephole_trains) {
  BOOST_TEST(train_peephole() < 0.004f);
  nn::Recurrent<float> net(nn::RNNOptions(1, 8), nn::cell_factory<Peephole<float>>());
  BOOST_TEST(net.named_parameters()[0].first == "weight_ih_l0");
}

BOOST_AUTO_TEST_SUITE_END()
