// The interface between the benchmark harness (bench_rnn.cpp, which also holds the xgrad side) and
// the LibTorch side (bench_torch.cpp, compiled only when find_package(Torch) finds it, otherwise
// bench_torch_none.cpp). Plain C++17 and the standard library only: this header must not pull in
// xtensor (its -march/xsimd ABI) or torch (its compile time) into the other translation unit.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bench {

/// One benchmark configuration: a recurrent network (I -> H, L layers) over [T, B, I] (sequence
/// first, float32), then Linear(H -> C) on the last step's output, MSE against a [B, C] target,
/// Adam(lr 1e-3). The cell is one of:
///   lstm       xgrad nn::LSTM                         LibTorch torch::nn::LSTM
///   user_lstm  a user's LSTM cell (bench/user_lstm.hpp) through nn::Recurrent; no LibTorch side
///              (its reference is xgrad's nn::LSTM row)
///   peephole   nn::PeepholeLSTMCell through nn::Recurrent; LibTorch: the same cell in torch ops,
///              timed in a C++ loop
///   gru, rnn   xgrad nn::GRU, nn::RNN (tanh)              LibTorch torch::nn::GRU, torch::nn::RNN
struct Workload {
  std::string name;
  int B = 1, T = 1, I = 1, H = 1, L = 1, C = 10;
  std::string cell = "lstm";
  /// Gate blocks of the recurrent weights: 4 for the LSTMs, 3 for GRU, 1 for RNN.
  int gates() const { return cell == "gru" ? 3 : cell == "rnn" ? 1 : 4; }
};

/// Inputs and initial parameters, generated once by the harness so that both sides start from
/// the same numbers (their losses must then agree, which checks that they do the same work).
/// Parameter names and layouts are PyTorch's: weight_ih_l{k} [G*H, in], weight_hh_l{k} [G*H, H],
/// bias_ih_l{k} [G*H], bias_hh_l{k} [G*H] (G = Workload::gates()), then head.weight [C, H] and
/// head.bias [C]. user_lstm and peephole have one bias, bias_l{k} [4H], and peephole adds
/// peephole_i_l{k}, peephole_f_l{k}, peephole_o_l{k} [H].
struct InitData {
  std::vector<float> x;  // [T, B, I]
  std::vector<float> y;  // [B, C]
  std::vector<std::pair<std::string, std::vector<float>>> params;
  const std::vector<float>* find(const std::string& name) const {
    for (auto& [n, v] : params)
      if (n == name) return &v;
    return nullptr;
  }
};

struct RunSpec {
  int warmup = 3;       // training steps before timing (they also train)
  int steps = 20;       // timed training steps
  int fwd_warmup = 1;   // forward passes before timing
  int fwd_steps = 20;   // timed forward passes (no grad)
};

struct RunResult {
  std::vector<double> step_ms;  // one per timed training step (wall clock)
  std::vector<double> fwd_ms;   // one per timed forward pass (wall clock)
  // The same steps in process CPU time. With one thread this is the work itself: unlike wall
  // time it does not grow when other jobs on the machine preempt the benchmark.
  std::vector<double> step_cpu_ms, fwd_cpu_ms;
  double loss_first = 0;        // loss of the first (warm-up) step
  double loss_last = 0;         // loss of the last timed step
  std::string error;            // non-empty when the run failed
};

/// One side of the comparison. Each call runs in a fresh child process (see bench_rnn.cpp).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual std::string version() const = 0;
  /// Intra-op threads (and inter-op where the side has them). OpenBLAS, which both sides use
  /// for sgemm, is set by the harness (xg::set_blas_threads) in every child.
  virtual void set_threads(int n) = 0;
  /// Whether this side has the workload's cell.
  virtual bool has_cell(const std::string& cell) const = 0;
  /// A tiny training run through the same code paths (faults in code pages, starts thread pools)
  /// so that the peak-memory growth measured afterwards counts data, not code.
  virtual void prime() = 0;
  /// Trains and then runs forward passes; fills the per-step times and the losses.
  virtual RunResult run(const Workload& w, const InitData& d, const RunSpec& s) = 0;
  /// Records a chain of `n` adds on [1, 32] values (y = y + c) plus a sum, backpropagates;
  /// returns the median over `reps` of (record + backward time) / n, in microseconds.
  virtual double per_op_us(int n, int reps) = 0;
  /// Records a chain of `n` ops on [1, 14] values cycling y = y * w, sigmoid(y), tanh(y),
  /// y = y + b (w, b [1, 14] leaves that need gradients, like the LSTM objective's weights and
  /// biases; each op counts as one) plus a sum, backpropagates; returns the median over `reps`
  /// of (record + backward time) / n, in microseconds.
  virtual double mixed_op_us(int n, int reps) = 0;
};

/// The LibTorch side, or nullptr with `why` set when it was not built.
std::unique_ptr<Backend> make_torch_backend(std::string& why);

/// Process CPU time (all threads), in milliseconds.
inline double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

// ---- Memory: /proc/self/status -----------------------------------------------------------------

/// A field of /proc/self/status in kB ("VmRSS", "VmHWM"), or -1.
inline long proc_status_kb(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  const std::size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      v = std::strtol(line + n + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return v;
}

/// Resets VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs).
inline bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace bench
