// Layer-normalised LSTM: J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization",
// arXiv:1607.06450, 2016 (section 6.3 and appendix, the LSTM equations).
// The input and recurrent contributions to the gates are normalised separately, over all 4H gate
// pre-activations together, and the cell state is normalised before the output nonlinearity; the
// cell state carried to the next step is the un-normalised one. Gains start at 1, shifts at 0.
// Gate order i, f, g, o (the paper writes f, i, o, g).
//   gates = LN(W_h h; a_hh, b_hh) + LN(W_x x; a_ih, b_ih) + b,  split into i, f, g, o
//   c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
//   h' = sigmoid(o) * tanh(LN(c'; a_c, b_c))
#pragma once

#include <xgrad/autograd/fuse.hpp>
#include <xgrad/autograd/ops_norm.hpp>
#include <xgrad/nn/cell.hpp>

namespace xg::nn {

template <class T = float>
struct LayerNormLSTMCell : Cell<T> {
  Var<T> weight_ih, weight_hh, bias;
  Var<T> ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias, ln_c_weight, ln_c_bias;
  explicit LayerNormLSTMCell(const RNNOptions& o, Generator& g = default_generator())
      : Cell<T>("LayerNormLSTMCell", o, {"h", "c"}) {
    this->reject_nonlinearity();
    const std::size_t H = o.hidden_size();
    weight_ih = this->uniform_parameter("weight_ih", {4 * H, o.input_size()}, g);
    weight_hh = this->uniform_parameter("weight_hh", {4 * H, H}, g);
    if (o.bias()) bias = this->uniform_parameter("bias", {4 * H}, g);
    this->init_forget_bias(bias, 1);
    ln_ih_weight = this->register_parameter("ln_ih_weight", full<T>(Shape{4 * H}, T(1)));
    ln_ih_bias = this->register_parameter("ln_ih_bias", zeros<T>(Shape{4 * H}));
    ln_hh_weight = this->register_parameter("ln_hh_weight", full<T>(Shape{4 * H}, T(1)));
    ln_hh_bias = this->register_parameter("ln_hh_bias", zeros<T>(Shape{4 * H}));
    ln_c_weight = this->register_parameter("ln_c_weight", full<T>(Shape{H}, T(1)));
    ln_c_bias = this->register_parameter("ln_c_bias", zeros<T>(Shape{H}));
  }
  Var<T> project(const Var<T>& x) const override {
    Var<T> p = layer_norm(linear(x, weight_ih), ln_ih_weight, ln_ih_bias);
    return bias.defined() ? p + bias : p;
  }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    const Var<T>&h = s[0], &c = s[1];
    const std::size_t H = this->options.hidden_size();
    // gates = xp + hh, added inside the fused steps; each gate's two parts are slices (views).
    Var<T> hh = layer_norm(linear(h, weight_hh), ln_hh_weight, ln_hh_bias);  // [B, 4H]
    auto x_gate = [&](std::size_t k) { return slice(xp, 1, k * H, H); };
    auto h_gate = [&](std::size_t k) { return slice(hh, 1, k * H, H); };
    Var<T> c_next = fuse("ln_lstm_c", [](auto xi, auto hi, auto xf, auto hf, auto xg, auto hg,
                                         auto c_prev) {
      auto input_gate = sigmoid(xi + hi), forget_gate = sigmoid(xf + hf);
      auto candidate = tanh(xg + hg);
      return forget_gate * c_prev + input_gate * candidate;
    }, x_gate(0), h_gate(0), x_gate(1), h_gate(1), x_gate(2), h_gate(2), c);
    Var<T> h_next = fuse("ln_lstm_h", [](auto xo, auto ho, auto c_norm) {
      auto output_gate = sigmoid(xo + ho);
      return output_gate * tanh(c_norm);
    }, x_gate(3), h_gate(3), layer_norm(c_next, ln_c_weight, ln_c_bias));
    return {h_next, c_next};
  }
};

}  // namespace xg::nn
