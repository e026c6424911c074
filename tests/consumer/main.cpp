// The README's first program, built against the installed package by the test suite.
// Exits non-zero unless the loss falls.
#include <xgrad/xgrad.hpp>
using namespace xg;

int main() {  // an LSTM learns the mean of a sequence of 20 numbers
  nn::LSTM lstm(nn::LSTMOptions(/*input*/ 1, /*hidden*/ 16));  // float; nn::LSTM<double> for checks
  nn::Linear head(16, 1);
  optim::Adam opt(nn::parameters(lstm, head), optim::AdamOptions(0.01));
  Generator gen(0);
  float first = 0, last = 0;
  for (int step = 0; step <= 300; ++step) {
    Var<float> x(uniform<float>({20, 32, 1}, -1.f, 1.f, gen));  // [time, batch, features]
    Var<float> target(Array<float>(xt::mean(x.value(), {0})));  // [32, 1]
    auto [y, h_n, c_n] = lstm.forward(x);
    Var<float> loss = mse_loss(head(select(y, 0, 19)), target);
    opt.zero_grad();
    loss.backward();  // walks this thread's tape
    opt.step();
    if (step % 100 == 0) fmt::print("step {:3}  loss {:.4f}\n", step, loss.item());
    (step == 0 ? first : last) = loss.item();
  }
  return last < 0.2f * first ? 0 : 1;
}
