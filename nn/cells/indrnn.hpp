// Independently recurrent neural network (IndRNN): S. Li, W. Li, C. Cook, C. Zhu and Y. Gao,
// "Independently Recurrent Neural Network (IndRNN): Building A Longer and Deeper RNN", CVPR 2018.
// Each neuron sees only its own past: the recurrent weight is a vector u, not a matrix.
//   h' = relu(W x + u * h + b)
// ReLU as in the paper (the nonlinearity option is not used). W and b start like PyTorch's RNN;
// u starts U(0, 1), so no neuron begins by exploding or flipping sign. The paper bounds |u| for
// long sequences (|u| <= 2^(1/T)); clamp weight_hh after each optimizer step to do the same.
#pragma once

#include <xgrad/autograd/fuse.hpp>
#include <xgrad/nn/cell.hpp>

namespace xg::nn {

template <class T = float>
struct IndRNNCell : Cell<T> {
  Var<T> weight_ih, weight_hh, bias_ih;
  explicit IndRNNCell(const RNNOptions& o, Generator& g = default_generator()) : Cell<T>("IndRNNCell", o, {"h"}) {
    this->reject_nonlinearity();
    this->reject_forget_bias();
    const std::size_t H = o.hidden_size();
    weight_ih = this->uniform_parameter("weight_ih", {H, o.input_size()}, g);
    weight_hh = this->register_parameter("weight_hh", uniform<T>(Shape{H}, T(0), T(1), g));
    if (o.bias()) bias_ih = this->uniform_parameter("bias_ih", {H}, g);
  }
  Var<T> project(const Var<T>& x) const override { return linear(x, weight_ih, bias_ih); }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    return {fuse("indrnn", [](auto wx, auto u, auto h_prev) {
      return relu(wx + u * h_prev);  // W x + b arrive in xp
    }, xp, weight_hh, s[0])};
  }
};

}  // namespace xg::nn
