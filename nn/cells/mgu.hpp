// Minimal gated unit: G.-B. Zhou, J. Wu, C.-L. Zhang and Z.-H. Zhou, "Minimal Gated Unit for
// Recurrent Neural Networks", International Journal of Automation and Computing 13(3), 2016.
// One gate, the forget gate, which both resets the past in the candidate and mixes old and new.
//   f  = sigmoid(W_f x + U_f h + b_f)
//   h~ = tanh(W_h x + U_h (f * h) + b_h)
//   h' = (1 - f) * h + f * h~
// weight_ih stacks [W_f; W_h] and bias [b_f; b_h]; weight_hf is U_f, weight_hh is U_h.
#pragma once

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
    std::vector<Var<T>> x = chunk(xp, 2, -1);
    Var<T> forget_gate = sigmoid(addmm(x[0], h, weight_hf, NoTrans, DoTrans));
    Var<T> candidate = tanh(addmm(x[1], forget_gate * h, weight_hh, NoTrans, DoTrans));
    return {h + forget_gate * (candidate - h)};  // (1 - f) h + f h~
  }
};

}  // namespace xg::nn
