// The LibTorch side of bench_rnn: the same workloads with torch::nn::LSTM (GRU, RNN; the peephole
// cell written with torch ops in a C++ loop), torch::nn::Linear and torch::optim::Adam. The only
// translation unit that includes torch headers (they are slow to compile); built only when CMake
// finds Torch and XGRAD_BENCH_TORCH is ON.
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
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

// The peephole LSTM of xgrad's gallery (nn/cells/peephole_lstm.hpp) in LibTorch ops: one layer's
// parameters, named and initialised as xgrad's (U(-1/sqrt(H), 1/sqrt(H)) unless the harness gives
// values).
struct PeepholeLayer {
  torch::Tensor w_ih, w_hh, b, p_i, p_f, p_o;
  PeepholeLayer(int in, int H, int l, const InitData& d) {
    const double k = 1.0 / std::sqrt(static_cast<double>(H));
    auto param = [&](const std::string& name, std::vector<int64_t> shape) {
      torch::Tensor t = torch::empty(shape, torch::kFloat32).uniform_(-k, k);
      if (const std::vector<float>* v = d.find(name + "_l" + std::to_string(l))) {
        if (static_cast<int64_t>(v->size()) != t.numel())
          throw std::runtime_error("LibTorch: parameter " + name + " has the wrong size");
        t = from(*v, shape);
      }
      return t.requires_grad_(true);
    };
    w_ih = param("weight_ih", {4 * H, in});
    w_hh = param("weight_hh", {4 * H, H});
    b = param("bias", {4 * H});
    p_i = param("peephole_i", {H});
    p_f = param("peephole_f", {H});
    p_o = param("peephole_o", {H});
  }
  std::vector<torch::Tensor*> all() { return {&w_ih, &w_hh, &b, &p_i, &p_f, &p_o}; }
};

// x [T, B, in] -> the top layer's h at the last step [B, H]. Per layer: the input projection of
// every step in one matmul, then per step one addmm, a chunk and the gate arithmetic.
torch::Tensor peephole_forward(const std::vector<PeepholeLayer>& layers, torch::Tensor x) {
  const int64_t T = x.size(0), B = x.size(1);
  torch::Tensor h;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const PeepholeLayer& p = layers[l];
    const int64_t H = p.w_hh.size(1);
    // unbind, not xp[t]: the backward of T selects would zero-fill T full-size [T, B, 4H]
    // gradients; PyTorch's own custom-cell benchmarks unbind the same way.
    std::vector<torch::Tensor> xp =
        torch::addmm(p.b, x.reshape({T * B, x.size(2)}), p.w_ih.t()).view({T, B, 4 * H}).unbind(0);
    h = torch::zeros({B, H}, torch::kFloat32);
    torch::Tensor c = torch::zeros({B, H}, torch::kFloat32);
    std::vector<torch::Tensor> hs;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<torch::Tensor> g = torch::addmm(xp[static_cast<std::size_t>(t)], h, p.w_hh.t()).chunk(4, 1);
      torch::Tensor input_gate = torch::sigmoid(g[0] + p.p_i * c);
      torch::Tensor forget_gate = torch::sigmoid(g[1] + p.p_f * c);
      c = forget_gate * c + input_gate * torch::tanh(g[2]);
      torch::Tensor output_gate = torch::sigmoid(g[3] + p.p_o * c);
      h = output_gate * torch::tanh(c);
      if (l + 1 < layers.size()) hs.push_back(h);
    }
    if (l + 1 < layers.size()) x = torch::stack(hs, 0);
  }
  return h;
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
    (void)mixed_op_us(12, 1);
  }

  bool has_cell(const std::string& cell) const override {
    return cell == "lstm" || cell == "peephole" || cell == "gru" || cell == "rnn";
  }

  RunResult run(const Workload& w, const InitData& d, const RunSpec& s) override {
    RunResult r;
    // The recurrent part: x [T, B, I] -> the top layer's output at the last step [B, H].
    std::vector<torch::Tensor> params;
    std::function<torch::Tensor(const torch::Tensor&)> last_output;
    torch::nn::LSTM lstm{nullptr};
    torch::nn::GRU gru{nullptr};
    torch::nn::RNN rnn{nullptr};
    std::vector<PeepholeLayer> peephole;
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
      if (w.cell == "lstm") {
        lstm = torch::nn::LSTM(torch::nn::LSTMOptions(w.I, w.H).num_layers(w.L));
        load("", lstm->named_parameters());
        params = lstm->parameters();
        last_output = [&](const torch::Tensor& x) { return std::get<0>(lstm->forward(x)).select(0, w.T - 1); };
      } else if (w.cell == "gru") {
        gru = torch::nn::GRU(torch::nn::GRUOptions(w.I, w.H).num_layers(w.L));
        load("", gru->named_parameters());
        params = gru->parameters();
        last_output = [&](const torch::Tensor& x) { return std::get<0>(gru->forward(x)).select(0, w.T - 1); };
      } else if (w.cell == "rnn") {
        rnn = torch::nn::RNN(torch::nn::RNNOptions(w.I, w.H).num_layers(w.L));
        load("", rnn->named_parameters());
        params = rnn->parameters();
        last_output = [&](const torch::Tensor& x) { return std::get<0>(rnn->forward(x)).select(0, w.T - 1); };
      } else if (w.cell == "peephole") {
        for (int l = 0; l < w.L; ++l) {
          peephole.emplace_back(l == 0 ? w.I : w.H, w.H, l, d);
          for (auto* p : peephole.back().all()) params.push_back(*p);
        }
        last_output = [&](const torch::Tensor& x) { return peephole_forward(peephole, x); };
      } else {
        throw std::runtime_error("LibTorch: no cell " + w.cell);
      }
      load("head.", head->named_parameters());
    }
    for (auto& p : head->parameters()) params.push_back(p);
    torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));

    const torch::Tensor x = from(d.x, {w.T, w.B, w.I});
    const torch::Tensor y = from(d.y, {w.B, w.C});
    auto step = [&] {
      // Gradients set to None, as xgrad's zero_grad does (torch 1.13's zero_grad() zero-fills).
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      auto pred = head->forward(last_output(x));  // [B, C]
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
      auto pred = head->forward(last_output(x));
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

  double mixed_op_us(int n, int reps) override {
    const auto leaf = torch::TensorOptions().dtype(torch::kFloat32).requires_grad(true);
    auto x = torch::full({1, 14}, 0.5f, leaf);
    auto w = torch::full({1, 14}, 0.9f, leaf);
    auto b = torch::full({1, 14}, 0.1f, leaf);
    std::vector<double> us;
    for (int r = 0; r < reps; ++r) {
      for (auto* t : {&x, &w, &b}) t->mutable_grad() = torch::Tensor();
      const auto t0 = Clock::now();
      torch::Tensor y = x;
      for (int i = 0; i < n; ++i) {
        switch (i % 4) {
          case 0: y = y * w; break;
          case 1: y = torch::sigmoid(y); break;
          case 2: y = torch::tanh(y); break;
          default: y = y + b; break;
        }
      }
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
