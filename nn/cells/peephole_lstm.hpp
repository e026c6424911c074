// Peephole LSTM: F. A. Gers and J. Schmidhuber, "Recurrent nets that time and count", IJCNN 2000.
// The gates look at the cell state: input and forget gates at c_(t-1), the output gate at c_t.
// Written as Greff et al. (2017) state the "vanilla" LSTM: tanh for candidate and output, one
// bias per gate, diagonal (elementwise) peephole weights. Gate order i, f, g, o as PyTorch's.
//   i = sigmoid(W_i x + U_i h + p_i * c + b_i)      f = sigmoid(W_f x + U_f h + p_f * c + b_f)
//   c' = f * c + i * tanh(W_g x + U_g h + b_g)      o = sigmoid(W_o x + U_o h + p_o * c' + b_o)
//   h' = o * tanh(c')
#pragma once

#include <xgrad/autograd/fuse.hpp>
#include <xgrad/nn/cell.hpp>

namespace xg::nn {

template <class T = float>
struct PeepholeLSTMCell : Cell<T> {
  Var<T> weight_ih, weight_hh, bias, peephole_i, peephole_f, peephole_o;
  explicit PeepholeLSTMCell(const RNNOptions& o, Generator& g = default_generator())
      : Cell<T>("PeepholeLSTMCell", o, {"h", "c"}) {
    const std::size_t H = o.hidden_size();
    weight_ih = this->uniform_parameter("weight_ih", {4 * H, o.input_size()}, g);
    weight_hh = this->uniform_parameter("weight_hh", {4 * H, H}, g);
    if (o.bias()) bias = this->uniform_parameter("bias", {4 * H}, g);
    for (auto [p, n] : {std::pair{&peephole_i, "peephole_i"}, {&peephole_f, "peephole_f"}, {&peephole_o, "peephole_o"}})
      *p = this->uniform_parameter(n, {H}, g);
    this->reject_nonlinearity();
    this->init_forget_bias(bias, 1);
  }
  Var<T> project(const Var<T>& x) const override { return linear(x, weight_ih, bias); }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    const Var<T>&h = s[0], &c = s[1];
    const std::size_t H = this->options.hidden_size();
    Var<T> gates = addmm(xp, h, weight_hh, NoTrans, DoTrans);  // [B, 4H]: W x + U h + b
    auto gate = [&](std::size_t k) { return slice(gates, 1, k * H, H); };  // views, not copies
    Var<T> c_next = fuse("peephole_lstm_c", [](auto zi, auto zf, auto zg, auto c_prev, auto p_i,
                                               auto p_f) {
      auto input_gate = sigmoid(zi + p_i * c_prev), forget_gate = sigmoid(zf + p_f * c_prev);
      return forget_gate * c_prev + input_gate * tanh(zg);
    }, gate(0), gate(1), gate(2), c, peephole_i, peephole_f);
    Var<T> h_next = fuse("peephole_lstm_h", [](auto zo, auto c_new, auto p_o) {
      auto output_gate = sigmoid(zo + p_o * c_new);  // looks at c', not c
      return output_gate * tanh(c_new);
    }, gate(3), c_next, peephole_o);
    return {h_next, c_next};
  }
};

}  // namespace xg::nn
