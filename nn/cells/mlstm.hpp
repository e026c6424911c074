// Multiplicative LSTM (mLSTM): B. Krause, L. Lu, I. Murray and S. Renals, "Multiplicative LSTM for
// sequence modelling", arXiv:1609.07959, 2016 (ICLR 2017 workshop).
// An intermediate state m, the elementwise product of an input and a recurrent projection, takes
// h's place in every gate, so each input selects its own recurrent transition.
//   m  = (W_mx x) * (W_mh h)
//   i, f, o = sigmoid(W_*x x + W_*m m + b_*),   h^ = W_hx x + W_hm m + b_h
//   c' = f * c + i * tanh(h^)                   h' = o * tanh(c')
// Variant: tanh on the candidate h^ and biases on the gates and candidate (none on m), as in the
// authors' and most later implementations. Gate order i, f, g (= h^), o, as PyTorch's LSTM.
// weight_mx [H, I], weight_mh [H, H], weight_ih [4H, I] and bias [4H] (the x parts),
// weight_hm [4H, H] (the m parts).
#pragma once

#include <xgrad/autograd/fuse.hpp>
#include <xgrad/nn/cell.hpp>

namespace xg::nn {

template <class T = float>
struct MultiplicativeLSTMCell : Cell<T> {
  Var<T> weight_mx, weight_mh, weight_ih, bias, weight_hm;
  explicit MultiplicativeLSTMCell(const RNNOptions& o, Generator& g = default_generator())
      : Cell<T>("MultiplicativeLSTMCell", o, {"h", "c"}) {
    this->reject_nonlinearity();
    const std::size_t H = o.hidden_size(), I = o.input_size();
    weight_mx = this->uniform_parameter("weight_mx", {H, I}, g);
    weight_mh = this->uniform_parameter("weight_mh", {H, H}, g);
    weight_ih = this->uniform_parameter("weight_ih", {4 * H, I}, g);
    if (o.bias()) bias = this->uniform_parameter("bias", {4 * H}, g);
    this->init_forget_bias(bias, 1);
    weight_hm = this->uniform_parameter("weight_hm", {4 * H, H}, g);
  }
  // [.., H + 4H]: W_mx x, then the gates' input parts.
  Var<T> project(const Var<T>& x) const override {
    return concat({linear(x, weight_mx), linear(x, weight_ih, bias)}, -1);
  }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    const Var<T>&h = s[0], &c = s[1];
    const std::size_t H = this->options.hidden_size();
    // xp's two parts and the gates below are slices: views, not copies.
    Var<T> m = slice(xp, 1, 0, H) * linear(h, weight_mh);  // (W_mx x) * (W_mh h)
    Var<T> gates = addmm(slice(xp, 1, H, 4 * H), m, weight_hm, NoTrans, DoTrans);  // [B, 4H]
    auto gate = [&](std::size_t k) { return slice(gates, 1, k * H, H); };
    Var<T> c_next = fuse("mlstm_c", [](auto zi, auto zf, auto zg, auto c_prev) {
      auto input_gate = sigmoid(zi), forget_gate = sigmoid(zf), candidate = tanh(zg);
      return forget_gate * c_prev + input_gate * candidate;
    }, gate(0), gate(1), gate(2), c);
    Var<T> h_next = fuse("mlstm_h", [](auto zo, auto c_new) {
      auto output_gate = sigmoid(zo);
      return output_gate * tanh(c_new);
    }, gate(3), c_next);
    return {h_next, c_next};
  }
};

}  // namespace xg::nn
