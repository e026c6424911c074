// A plain LSTM as a user would write it against nn::Cell (see the README's "Write your own cell"):
// the projection of every time step in one GEMM with a single bias, and the library's own step
// function. bench_rnn runs it through nn::Recurrent and compares its step time with nn::LSTM's.
#pragma once

#include <xgrad/xgrad.hpp>

namespace bench {

template <class T>
struct UserLSTM : xg::nn::Cell<T> {
  xg::Var<T> w_ih, w_hh, b;
  explicit UserLSTM(const xg::nn::RNNOptions& o, xg::Generator& g = xg::default_generator())
      : xg::nn::Cell<T>("UserLSTM", o, {"h", "c"}) {  // the state is (h, c); the layer outputs h
    const std::size_t H = o.hidden_size();
    w_ih = this->uniform_parameter("weight_ih", {4 * H, o.input_size()}, g);
    w_hh = this->uniform_parameter("weight_hh", {4 * H, H}, g);
    b = this->uniform_parameter("bias", {4 * H}, g);
  }
  xg::Var<T> project(const xg::Var<T>& x) const override { return xg::linear(x, w_ih, b); }
  xg::nn::State<T> step(const xg::Var<T>& xp, const xg::nn::State<T>& s) const override {
    auto [h, c] = xg::nn::lstm_step(xp, s[0], s[1], w_hh);
    return {h, c};
  }
};

}  // namespace bench
