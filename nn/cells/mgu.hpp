// Minimal gated unit: G.-B. Zhou, J. Wu, C.-L. Zhang and Z.-H. Zhou, "Minimal Gated Unit for
// Recurrent Neural Networks", International Journal of Automation and Computing 13(3), 2016.
// One gate, the forget gate, which both resets the past in the candidate and mixes old and new.
//   f  = sigmoid(W_f x + U_f h + b_f)
//   h~ = tanh(W_h x + U_h (f * h) + b_h)
//   h' = (1 - f) * h + f * h~
// weight_ih stacks [W_f; W_h] and bias [b_f; b_h]; weight_hf is U_f, weight_hh is U_h.
#pragma once

#include <xgrad/autograd/fuse.hpp>
#include <xgrad/nn/cell.hpp>

namespace xg::nn {

template <class T = float>
struct MGUCell : Cell<T> {
  Var<T> weight_ih, bias, weight_hf, weight_hh;
  explicit MGUCell(const RNNOptions& o, Generator& g = default_generator()) : Cell<T>("MGUCell", o, {"h"}) {
    this->reject_nonlinearity();
    this->reject_forget_bias();  // f = 1 means "take the candidate": no forget bias convention
    const std::size_t H = o.hidden_size();
    weight_ih = this->uniform_parameter("weight_ih", {2 * H, o.input_size()}, g);
    if (o.bias()) bias = this->uniform_parameter("bias", {2 * H}, g);
    weight_hf = this->uniform_parameter("weight_hf", {H, H}, g);
    weight_hh = this->uniform_parameter("weight_hh", {H, H}, g);
  }
  Var<T> project(const Var<T>& x) const override { return linear(x, weight_ih, bias); }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    const Var<T>& h = s[0];
    const std::size_t H = this->options.hidden_size();
    // xp is [W_f x + b_f, W_h x + b_h]; its halves are slices (views, not copies).
    // W_f x + U_f h + b_f
    Var<T> pre_f = addmm(slice(xp, 1, 0, H), h, weight_hf, NoTrans, DoTrans);
    Var<T> reset_h = fuse("mgu_reset", [](auto zf, auto h_prev) {
      auto forget_gate = sigmoid(zf);
      return forget_gate * h_prev;
    }, pre_f, h);
    // W_h x + U_h (f * h) + b_h
    Var<T> pre_h = addmm(slice(xp, 1, H, H), reset_h, weight_hh, NoTrans, DoTrans);
    return {fuse("mgu_h", [](auto zf, auto zh, auto h_prev) {
      auto forget_gate = sigmoid(zf), candidate = tanh(zh);
      return h_prev + forget_gate * (candidate - h_prev);  // (1 - f) h + f h~
    }, pre_f, pre_h, h)};
  }
};

}  // namespace xg::nn
