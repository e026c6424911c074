// The LibTorch side of bench_rnn: the same workloads with torch::nn::LSTM, torch::nn::Linear and
// torch::optim::Adam. The only translation unit that includes torch headers (they are slow to
// compile); built only when CMake finds Torch and XGRAD_BENCH_TORCH is ON.
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "bench_backend.hpp"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

torch::Tensor from(const std::vector<float>& v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

class TorchBackend final : public Backend {
 public:
  std::string name() const override { return "LibTorch"; }
  std::string version() const override { return TORCH_VERSION; }

  void set_threads(int n) override {
    torch::set_num_threads(n);
    try {
      at::set_num_interop_threads(n);  // allowed once per process, before inter-op work
    } catch (const std::exception&) {
    }
  }

  void prime() override {
    Workload w{"prime", 2, 3, 4, 4, 1, 2};
    InitData d;
    d.x.assign(static_cast<std::size_t>(w.T * w.B * w.I), 0.1f);
    d.y.assign(static_cast<std::size_t>(w.B * w.C), 0.2f);
    RunSpec s{1, 1, 1, 1};
    (void)run(w, d, s);
    (void)per_op_us(10, 1);
  }

  RunResult run(const Workload& w, const InitData& d, const RunSpec& s) override {
    RunResult r;
    torch::nn::LSTM lstm(torch::nn::LSTMOptions(w.I, w.H).num_layers(w.L));
    torch::nn::Linear head(w.H, w.C);
    {
      torch::NoGradGuard ng;
      auto load = [&](const std::string& prefix, const torch::OrderedDict<std::string, torch::Tensor>& ps) {
        for (auto& item : ps) {
          const std::vector<float>* v = d.find(prefix + item.key());
          if (!v) continue;  // priming runs with the default initialisation
          if (static_cast<int64_t>(v->size()) != item.value().numel())
            throw std::runtime_error("LibTorch: parameter " + item.key() + " has the wrong size");
          item.value().copy_(from(*v, item.value().sizes().vec()));
        }
      };
      load("", lstm->named_parameters());
      load("head.", head->named_parameters());
    }
    std::vector<torch::Tensor> params = lstm->parameters();
    for (auto& p : head->parameters()) params.push_back(p);
    torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));

    const torch::Tensor x = from(d.x, {w.T, w.B, w.I});
    const torch::Tensor y = from(d.y, {w.B, w.C});
    auto step = [&] {
      // Gradients set to None, as xgrad's zero_grad does (torch 1.13's zero_grad() zero-fills).
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      auto out = std::get<0>(lstm->forward(x));           // [T, B, H]
      auto pred = head->forward(out.select(0, w.T - 1));  // [B, C]
      auto loss = torch::nn::functional::mse_loss(pred, y);
      loss.backward();
      opt.step();
      return loss.item<double>();
    };
    for (int i = 0; i < s.warmup; ++i) {
      const double l = step();
      if (i == 0) r.loss_first = l;
    }
    for (int i = 0; i < s.steps; ++i) {
      const auto t0 = Clock::now();
      const double c0 = cpu_ms();
      r.loss_last = step();
      r.step_cpu_ms.push_back(cpu_ms() - c0);
      r.step_ms.push_back(ms_since(t0));
      if (s.warmup == 0 && i == 0) r.loss_first = r.loss_last;
    }
    torch::NoGradGuard ng;
    volatile float sink = 0;
    auto forward = [&] {
      auto out = std::get<0>(lstm->forward(x));
      auto pred = head->forward(out.select(0, w.T - 1));
      sink = pred.data_ptr<float>()[0];
    };
    for (int i = 0; i < s.fwd_warmup; ++i) forward();
    for (int i = 0; i < s.fwd_steps; ++i) {
      const auto t0 = Clock::now();
      const double c0 = cpu_ms();
      forward();
      r.fwd_cpu_ms.push_back(cpu_ms() - c0);
      r.fwd_ms.push_back(ms_since(t0));
    }
    (void)sink;
    return r;
  }

  double per_op_us(int n, int reps) override {
    auto x = torch::full({1, 32}, 0.5f, torch::TensorOptions().dtype(torch::kFloat32).requires_grad(true));
    auto c = torch::full({1, 32}, 0.001f, torch::TensorOptions().dtype(torch::kFloat32));
    std::vector<double> us;
    for (int r = 0; r < reps; ++r) {
      x.mutable_grad() = torch::Tensor();
      const auto t0 = Clock::now();
      torch::Tensor y = x;
      for (int i = 0; i < n; ++i) y = y + c;
      y.sum().backward();
      us.push_back(ms_since(t0) * 1000.0 / n);
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  }
};

}  // namespace

std::unique_ptr<Backend> make_torch_backend(std::string& why) {
  why.clear();
  return std::make_unique<TorchBackend>();
}

}  // namespace bench
