// A separate project using the installed xgrad: one gradient step on a tiny least-squares fit.
#include <cstdio>

#include <xgrad/xgrad.hpp>

int main() {
  using namespace xg;
  Var<float> w(Array<float>{0.f, 0.f}, true);
  Var<float> x(Array<float>{{1.f, 2.f}, {3.f, 4.f}});
  Var<float> y(Array<float>{5.f, 11.f});  // y = x @ [1, 2]
  float first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    Var<float> loss = mse_loss(reshape(matmul(x, reshape(w, {2, 1})), {2}), y);
    if (step == 0) first = loss.item();
    last = loss.item();
    loss.backward();
    w.mutable_value() -= 0.02f * w.grad();
    w.zero_grad();
  }
  std::printf("consumer: loss %.4f -> %.6f, w = (%.3f, %.3f)\n", first, last, w.value()(0), w.value()(1));
  return last < 1e-3f * first ? 0 : 1;
}
