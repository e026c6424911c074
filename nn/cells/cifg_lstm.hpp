// Coupled input-forget gate LSTM (CIFG): K. Greff, R. K. Srivastava, J. Koutnik, B. R. Steunebrink
// and J. Schmidhuber, "LSTM: A Search Space Odyssey", IEEE TNNLS 28(10), 2017.
// Greff et al.'s vanilla LSTM (with peepholes, see peephole_lstm.hpp) whose forget gate is
// coupled to the input gate, f = 1 - i: new memory comes in only as fast as old memory goes.
// Gate order i, g, o (three gates, one fewer than the LSTM).
//   i = sigmoid(W_i x + U_i h + p_i * c + b_i)      f = 1 - i
//   c' = f * c + i * tanh(W_g x + U_g h + b_g)      o = sigmoid(W_o x + U_o h + p_o * c' + b_o)
//   h' = o * tanh(c')
#pragma once

#include <xgrad/autograd/fuse.hpp>
#include <xgrad/nn/cell.hpp>

namespace xg::nn {

template <class T = float>
struct CIFGLSTMCell : Cell<T> {
  Var<T> weight_ih, weight_hh, bias, peephole_i, peephole_o;
  explicit CIFGLSTMCell(const RNNOptions& o, Generator& g = default_generator())
      : Cell<T>("CIFGLSTMCell", o, {"h", "c"}) {
    this->reject_nonlinearity();
    this->reject_forget_bias();  // no forget gate of its own
    const std::size_t H = o.hidden_size();
    weight_ih = this->uniform_parameter("weight_ih", {3 * H, o.input_size()}, g);
    weight_hh = this->uniform_parameter("weight_hh", {3 * H, H}, g);
    if (o.bias()) bias = this->uniform_parameter("bias", {3 * H}, g);
    peephole_i = this->uniform_parameter("peephole_i", {H}, g);
    peephole_o = this->uniform_parameter("peephole_o", {H}, g);
  }
  Var<T> project(const Var<T>& x) const override { return linear(x, weight_ih, bias); }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    const Var<T>&h = s[0], &c = s[1];
    const std::size_t H = this->options.hidden_size();
    Var<T> gates = addmm(xp, h, weight_hh, NoTrans, DoTrans);  // [B, 3H]: W x + U h + b
    auto gate = [&](std::size_t k) { return slice(gates, 1, k * H, H); };  // views, not copies
    Var<T> c_next = fuse("cifg_lstm_c", [](auto zi, auto zg, auto c_prev, auto p_i) {
      auto input_gate = sigmoid(zi + p_i * c_prev);  // the forget gate is 1 - input_gate
      return c_prev + input_gate * (tanh(zg) - c_prev);  // (1 - i) c + i g
    }, gate(0), gate(1), c, peephole_i);
    Var<T> h_next = fuse("cifg_lstm_h", [](auto zo, auto c_new, auto p_o) {
      auto output_gate = sigmoid(zo + p_o * c_new);  // looks at c', not c
      return output_gate * tanh(c_new);
    }, gate(2), c_next, peephole_o);
    return {h_next, c_next};
  }
};

}  // namespace xg::nn
