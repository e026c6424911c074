// bench_rnn: CPU training and inference speed of an LSTM + Linear head, xgrad against LibTorch,
// measured side by side in one invocation, with a GEMM lower bound from the same machine. With
// --cells, other recurrent cells too (see bench_backend.hpp's Workload): a user-written LSTM cell
// against nn::LSTM, the peephole LSTM against the same cell in LibTorch ops, GRU and RNN.
//
//   bench_rnn [--configs S,M,M2,L] [--cells lstm,user_lstm,peephole,gru,rnn] [--steps N] [--warmup N]
//             [--threads 1[,2..]] [--rounds N] [--csv FILE] [--quick] [--only xgrad|torch] [--no-fork]
//             [--profile] [--chain N]
//
// What is timed, per config (B, T, I, H, L):
//   step     opt.zero_grad(); y = head(lstm(x)[T-1]); loss = mse(y, target); loss.backward(); opt.step()
//   forward  y = head(lstm(x)[T-1]) with no gradient recording
//   per op   record + backward of a chain of adds on [1, 32], and of a chain cycling mul,
//            sigmoid, tanh, add on [1, 14] (the GradBench LSTM's width), in us per op
// Each timed step records wall-clock time and process CPU time. With one thread the CPU time is
// the step's work; wall time also counts the time other jobs held the core, so on a shared
// machine it grows with load (and more for long steps than for short ones). Both are reported.
// Both sides start from the same random inputs and parameters (generated here), so their losses
// agree to float rounding: the loss columns check that both did the same work.
//
// Isolation: every measurement (one side, one config, one thread count) runs in a child process
// made with fork(). The parent only forks and reads results from a pipe; it never runs BLAS,
// OpenMP or torch code itself (libgomp is not fork-safe once its pool exists). This gives each
// side its own heap, allocator settings (xgrad tunes glibc malloc) and peak-RSS counter, so peak
// memory is measured per side and per config, and neither side's caches or retained heap affect
// the other's timings. The cost is one fork per measurement. Sides alternate per config (and the
// order flips every round with --rounds), so slow drifts in machine load hit both alike.
//
// Peak memory growth: in the child, the side first runs a tiny training step through the same
// code paths (so code pages, thread pools and runtime singletons are already resident), then
// VmHWM is reset (write 5 to /proc/self/clear_refs) and VmRSS noted; growth = VmHWM at the end
// minus that baseline. It counts parameters, gradients, optimizer state, activations saved for
// backward, and whatever the allocator keeps; inputs are generated before the baseline.
//
// Lower bound: the GEMM FLOPs of a step (forward: input projection, T recurrent products, head;
// backward: two products per GEMM, one for layer 0's input projection whose input needs no
// gradient) divided by the best sgemm rate measured here with xg::gemm_raw on the step's own
// shapes (plus one large reference shape). "LB (shapes)" uses each shape's own measured rate.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <xgrad/xgrad.hpp>

#include "bench_backend.hpp"
#include "user_lstm.hpp"

// OpenBLAS's own API (declared here: <cblas.h> clashes with xtensor-blas headers).
extern "C" char* openblas_get_corename(void);
extern "C" char* openblas_get_config(void);

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
double min_of(const std::vector<double>& v) {
  return v.empty() ? std::nan("") : *std::min_element(v.begin(), v.end());
}

// ---- Workloads ----------------------------------------------------------------------------------

struct ConfigDefaults {
  bench::Workload w;
  int warmup, steps;  // training; forward passes use the same counts
  double target;      // xgrad / LibTorch ratio target for a training step (1 thread, issue 14)
};

// Issue 14's other targets (1 thread): L's training step within this factor of the GEMM lower
// bound; microseconds per op of the add chain and of the mixed chain.
constexpr double kLowerBoundTarget = 1.10;
constexpr double kAddChainTarget = 0.2;
constexpr double kMixedChainTarget = 0.5;

const std::vector<ConfigDefaults>& all_configs() {
  static const std::vector<ConfigDefaults> c = {
      {{"S", 1, 50, 16, 32, 1, 10}, 20, 200, 0.10},
      {{"M", 32, 50, 128, 256, 1, 10}, 3, 30, 0.65},
      {{"M2", 32, 50, 128, 256, 2, 10}, 3, 20, 0.65},
      {{"L", 64, 50, 256, 512, 1, 10}, 2, 10, 0.80},
  };
  return c;
}

// Same numbers on both sides: x, target ~ N(0, 1); every parameter ~ U(-1/sqrt(H), 1/sqrt(H)),
// which is both libraries' default distribution for recurrent layers and (with fan_in = H) for the
// head. The LSTM's numbers do not depend on the cell dimension (the README's rows keep their
// meaning). user_lstm and peephole start from the LSTM's numbers with bias_ih + bias_hh as their
// one bias, so user_lstm's loss equals nn::LSTM's; peephole then draws its peephole weights.
bench::InitData make_data(const bench::Workload& w) {
  std::mt19937_64 eng(std::hash<std::string>{}(w.name + (w.cell == "gru" || w.cell == "rnn" ? w.cell : "")) ^
                      0x5eedULL);
  std::normal_distribution<float> normal(0.f, 1.f);
  const float k = 1.f / std::sqrt(static_cast<float>(w.H));
  std::uniform_real_distribution<float> uni(-k, k);
  auto fill = [&](std::size_t n, auto& dist) {
    std::vector<float> v(n);
    for (auto& e : v) e = dist(eng);
    return v;
  };
  const auto T = static_cast<std::size_t>(w.T), B = static_cast<std::size_t>(w.B);
  const auto I = static_cast<std::size_t>(w.I), H = static_cast<std::size_t>(w.H);
  const auto C = static_cast<std::size_t>(w.C), G = static_cast<std::size_t>(w.gates());
  const bool one_bias = w.cell == "user_lstm" || w.cell == "peephole";
  bench::InitData d;
  d.x = fill(T * B * I, normal);
  d.y = fill(B * C, normal);
  for (int l = 0; l < w.L; ++l) {
    const std::size_t in = l == 0 ? I : H;
    d.params.emplace_back(fmt::format("weight_ih_l{}", l), fill(G * H * in, uni));
    d.params.emplace_back(fmt::format("weight_hh_l{}", l), fill(G * H * H, uni));
    std::vector<float> b_ih = fill(G * H, uni), b_hh = fill(G * H, uni);
    if (one_bias) {
      for (std::size_t i = 0; i < b_ih.size(); ++i) b_ih[i] += b_hh[i];
      d.params.emplace_back(fmt::format("bias_l{}", l), std::move(b_ih));
    } else {
      d.params.emplace_back(fmt::format("bias_ih_l{}", l), std::move(b_ih));
      d.params.emplace_back(fmt::format("bias_hh_l{}", l), std::move(b_hh));
    }
  }
  d.params.emplace_back("head.weight", fill(C * H, uni));
  d.params.emplace_back("head.bias", fill(C, uni));
  if (w.cell == "peephole")
    for (int l = 0; l < w.L; ++l)
      for (const char* g : {"i", "f", "o"}) d.params.emplace_back(fmt::format("peephole_{}_l{}", g, l), fill(H, uni));
  return d;
}

// ---- The xgrad side -----------------------------------------------------------------------------

class XgradBackend final : public bench::Backend {
 public:
  std::string name() const override { return "xgrad"; }
  std::string version() const override { return "0.1.0"; }
  void set_threads(int) override {}  // xgrad's only threads are OpenBLAS's (set by the harness)
  bool has_cell(const std::string& cell) const override {
    return cell == "lstm" || cell == "user_lstm" || cell == "peephole" || cell == "gru" || cell == "rnn";
  }

  void prime() override {
    bench::Workload w{"prime", 2, 3, 4, 4, 1, 2};
    bench::InitData d;
    d.x.assign(static_cast<std::size_t>(w.T * w.B * w.I), 0.1f);
    d.y.assign(static_cast<std::size_t>(w.B * w.C), 0.2f);
    (void)run(w, d, bench::RunSpec{1, 1, 1, 1});
    (void)per_op_us(10, 1);
    (void)mixed_op_us(12, 1);
  }

  bench::RunResult run(const bench::Workload& w, const bench::InitData& d,
                       const bench::RunSpec& s) override {
    using namespace xg;
    bench::RunResult r;
    const auto T = static_cast<std::size_t>(w.T), B = static_cast<std::size_t>(w.B);
    const auto I = static_cast<std::size_t>(w.I), H = static_cast<std::size_t>(w.H);
    const auto C = static_cast<std::size_t>(w.C);
    const nn::RNNOptions o = nn::RNNOptions(I, H).num_layers(static_cast<std::size_t>(w.L));
    std::unique_ptr<nn::Recurrent<float>> net;
    if (w.cell == "lstm") net = std::make_unique<nn::LSTM<float>>(o);
    else if (w.cell == "gru") net = std::make_unique<nn::GRU<float>>(o);
    else if (w.cell == "rnn") net = std::make_unique<nn::RNN<float>>(o);
    else if (w.cell == "user_lstm") net = std::make_unique<nn::Recurrent<float>>(o, nn::cell_factory<bench::UserLSTM<float>>());
    else if (w.cell == "peephole")
      net = std::make_unique<nn::Recurrent<float>>(o, nn::cell_factory<nn::PeepholeLSTMCell<float>>());
    else throw std::runtime_error("xgrad: no cell " + w.cell);
    nn::Linear<float> head(H, C);
    auto load = [&](const std::string& prefix, const nn::Module<float>& m) {
      for (auto [n, p] : m.named_parameters()) {
        const std::vector<float>* v = d.find(prefix + n);
        if (!v) continue;  // priming runs with the default initialisation
        Array<float>& a = p.mutable_value();
        if (v->size() != a.size()) throw std::runtime_error("xgrad: parameter " + n + " has the wrong size");
        std::copy(v->begin(), v->end(), a.data());
      }
    };
    load("", *net);
    load("head.", head);
    optim::Adam<float> opt(nn::parameters(*net, head), optim::AdamOptions(1e-3));

    Array<float> xa = empty<float>(Shape{T, B, I});
    std::copy(d.x.begin(), d.x.end(), xa.data());
    Array<float> ya = empty<float>(Shape{B, C});
    std::copy(d.y.begin(), d.y.end(), ya.data());
    const Var<float> x(std::move(xa)), y(std::move(ya));

    auto step = [&] {
      opt.zero_grad();
      nn::RNNOutput<float> out = net->forward(x);            // [T, B, H]
      Var<float> pred = head(select(out.output, 0, T - 1));  // [B, C]
      Var<float> loss = mse_loss(pred, y);
      loss.backward();
      opt.step();
      return static_cast<double>(loss.item());
    };
    for (int i = 0; i < s.warmup; ++i) {
      const double l = step();
      if (i == 0) r.loss_first = l;
    }
    for (int i = 0; i < s.steps; ++i) {
      const auto t0 = Clock::now();
      const double c0 = bench::cpu_ms();
      r.loss_last = step();
      r.step_cpu_ms.push_back(bench::cpu_ms() - c0);
      r.step_ms.push_back(ms_since(t0));
      if (s.warmup == 0 && i == 0) r.loss_first = r.loss_last;
    }
    NoGradGuard ng;
    volatile float sink = 0;
    auto forward = [&] {
      nn::RNNOutput<float> out = net->forward(x);
      Var<float> pred = head(select(out.output, 0, T - 1));
      sink = *pred.value().data();
    };
    for (int i = 0; i < s.fwd_warmup; ++i) forward();
    for (int i = 0; i < s.fwd_steps; ++i) {
      const auto t0 = Clock::now();
      const double c0 = bench::cpu_ms();
      forward();
      r.fwd_cpu_ms.push_back(bench::cpu_ms() - c0);
      r.fwd_ms.push_back(ms_since(t0));
    }
    (void)sink;
    return r;
  }

  double per_op_us(int n, int reps) override {
    using namespace xg;
    Var<float> x(full<float>(Shape{1, 32}, 0.5f), true);
    const Var<float> c(full<float>(Shape{1, 32}, 0.001f));
    std::vector<double> us;
    for (int r = 0; r < reps; ++r) {
      x.zero_grad();
      const auto t0 = Clock::now();
      Var<float> y = x;
      for (int i = 0; i < n; ++i) y = y + c;
      sum(y).backward();
      us.push_back(ms_since(t0) * 1000.0 / n);
    }
    return median(us);
  }

  double mixed_op_us(int n, int reps) override {
    using namespace xg;
    Var<float> x(full<float>(Shape{1, 14}, 0.5f), true);
    Var<float> w(full<float>(Shape{1, 14}, 0.9f), true);
    Var<float> b(full<float>(Shape{1, 14}, 0.1f), true);
    std::vector<double> us;
    for (int r = 0; r < reps; ++r) {
      x.zero_grad();
      w.zero_grad();
      b.zero_grad();
      const auto t0 = Clock::now();
      Var<float> y = x;
      for (int i = 0; i < n; ++i) {
        switch (i % 4) {
          case 0: y = y * w; break;
          case 1: y = sigmoid(y); break;
          case 2: y = tanh(y); break;
          default: y = y + b; break;
        }
      }
      sum(y).backward();
      us.push_back(ms_since(t0) * 1000.0 / n);
    }
    return median(us);
  }
};

// ---- GEMM accounting ----------------------------------------------------------------------------

struct Gemm {
  std::string what;
  std::size_t M, N, K;
  bool ta, tb;
  double count;  // calls per step
  bool forward;  // part of the forward pass
  double flops() const { return 2.0 * double(M) * double(N) * double(K) * count; }
  std::string key() const { return fmt::format("{}x{}x{}{}{}", M, N, K, ta ? "T" : "N", tb ? "T" : "N"); }
};

// The GEMMs of one training step, in xgrad's row-major conventions (LibTorch's are the same
// products), with G = 4 gate blocks for the LSTMs, 3 for GRU and 1 for RNN. Forward: xp = X W_ih^T (all steps at once), gates_t += h W_hh^T (T times), head.
// Backward: dW_ih = dXp^T X, dX = dXp W_ih (layers > 0 only), dW_hh += dG_t^T h, dh = dG_t W_hh,
// head dW and dx.
std::vector<Gemm> step_gemms(const bench::Workload& w) {
  const auto T = std::size_t(w.T), B = std::size_t(w.B), I = std::size_t(w.I);
  const auto H = std::size_t(w.H), C = std::size_t(w.C), G = std::size_t(w.gates());
  const double t = double(T);
  std::vector<Gemm> g;
  for (int l = 0; l < w.L; ++l) {
    const std::size_t in = l == 0 ? I : H;
    const std::string sfx = fmt::format(" l{}", l);
    g.push_back({"fwd input proj" + sfx, T * B, G * H, in, false, true, 1, true});
    g.push_back({"fwd recurrent" + sfx, B, G * H, H, false, true, t, true});
    g.push_back({"bwd dW_ih" + sfx, G * H, in, T * B, true, false, 1, false});
    if (l > 0) g.push_back({"bwd dX" + sfx, T * B, in, G * H, false, false, 1, false});
    g.push_back({"bwd dW_hh" + sfx, G * H, H, B, true, false, t, false});
    g.push_back({"bwd dh" + sfx, B, H, G * H, false, false, t, false});
  }
  g.push_back({"fwd head", B, C, H, false, true, 1, true});
  g.push_back({"bwd head dW", C, H, B, true, false, 1, false});
  g.push_back({"bwd head dx", B, H, C, false, false, 1, false});
  return g;
}

// Best time of one sgemm call on one shape, as GFLOP/s. Calls are timed in batches long enough
// (>= 50 us) for the clock's own cost not to matter; the best batch's per-call time counts. With
// one thread the batches are timed in process CPU time (immune to preemption by other jobs, like
// the step times), else in wall-clock time.
double sgemm_gflops(std::size_t M, std::size_t N, std::size_t K, bool ta, bool tb, double budget_s,
                    bool cpu_time) {
  std::mt19937 eng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A(M * K), Bm(K * N), Cm(M * N, 0.f);
  for (auto& v : A) v = u(eng);
  for (auto& v : Bm) v = u(eng);
  const std::size_t lda = ta ? M : K, ldb = tb ? K : N;
  auto call = [&] {
    xg::gemm_raw<float>(ta ? xg::DoTrans : xg::NoTrans, tb ? xg::DoTrans : xg::NoTrans, M, N, K, 1.f,
                        A.data(), lda, Bm.data(), ldb, 0.f, Cm.data(), N);
  };
  call();  // first touch, OpenBLAS buffers
  const auto e0 = Clock::now();
  call();
  const double one_ms = std::max(1e-6, ms_since(e0));
  const int batch = static_cast<int>(std::clamp(0.05 / one_ms, 1.0, 10000.0));
  double best = 1e300;
  const auto start = Clock::now();
  for (int rep = 0; rep < 1000; ++rep) {
    const auto t0 = Clock::now();
    const double c0 = bench::cpu_ms();
    for (int i = 0; i < batch; ++i) call();
    best = std::min(best, (cpu_time ? bench::cpu_ms() - c0 : ms_since(t0)) / batch);
    if (rep >= 3 && ms_since(start) > budget_s * 1000) break;
  }
  return 2.0 * double(M) * double(N) * double(K) / (best * 1e6);
}

// ---- Child processes ----------------------------------------------------------------------------

struct ChildOutput {
  std::string text;   // what the child wrote
  std::string error;  // non-empty on failure
  long maxrss_kb = -1;
};

bool g_fork = true;

// Runs `fn` in a forked child and returns what it printed into the pipe. Without forking (for
// profilers and debuggers) runs it here.
template <class F>
ChildOutput isolated(F&& fn) {
  ChildOutput out;
  if (!g_fork) {
    try {
      out.text = fn();
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    out.maxrss_kb = bench::proc_status_kb("VmHWM");
    return out;
  }
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    std::string s;
    try {
      s = fn();
    } catch (const std::exception& e) {
      s = std::string("error ") + e.what() + "\n";
    }
    const char* p = s.data();
    std::size_t left = s.size();
    while (left > 0) {
      const ssize_t n = write(fds[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    close(fds[1]);
    std::fflush(nullptr);
    _exit(0);
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.text.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  out.maxrss_kb = ru.ru_maxrss;
  if (WIFSIGNALED(status)) out.error = fmt::format("child killed by signal {}", WTERMSIG(status));
  else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    out.error = fmt::format("child exited with {}", WEXITSTATUS(status));
  if (out.error.empty() && out.text.rfind("error ", 0) == 0) out.error = out.text.substr(6);
  return out;
}

// "key v1 v2 ..." lines.
std::map<std::string, std::vector<double>> parse(const std::string& text) {
  std::map<std::string, std::vector<double>> m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    double v;
    auto& vec = m[key];
    while (ls >> v) vec.push_back(v);
  }
  return m;
}

std::string join(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += fmt::format(" {:.6g}", x);
  return s;
}

// ---- Results ------------------------------------------------------------------------------------

struct SideResult {
  bool ran = false;
  std::string error;
  std::vector<double> step_ms, fwd_ms, step_cpu_ms, fwd_cpu_ms;
  double loss_first = std::nan(""), loss_last = std::nan("");
  double mem_growth_mb = std::nan(""), child_maxrss_mb = std::nan("");
  bool mem_exact = true;
};

struct Options {
  std::vector<std::string> configs{"S", "M", "M2", "L"};
  std::vector<std::string> cells{"lstm"};
  std::optional<int> steps, warmup;
  std::vector<int> threads{1};
  int rounds = 1;
  std::string csv;
  bool quick = false;
  bool run_xgrad = true, run_torch = true;
  int chain = 1000;
  bool profile = false;  // training steps only: no sgemm rates, per-op chain or forward passes
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

void usage() {
  fmt::print(
      "usage: bench_rnn [--configs S,M,M2,L] [--cells lstm,...] [--steps N] [--warmup N]\n"
      "                 [--threads 1[,2,..]] [--rounds N] [--csv FILE] [--quick]\n"
      "                 [--only xgrad|torch] [--no-fork] [--chain N]\n"
      "  --cells       recurrent cells to measure at every config (default lstm):\n"
      "                  lstm       nn::LSTM against torch::nn::LSTM\n"
      "                  user_lstm  a user's LSTM cell (bench/user_lstm.hpp) through nn::Recurrent,\n"
      "                             against xgrad's nn::LSTM\n"
      "                  peephole   nn::PeepholeLSTMCell through nn::Recurrent, against the same\n"
      "                             cell in LibTorch ops in a C++ loop\n"
      "                  gru, rnn   nn::GRU, nn::RNN (tanh) against torch::nn::GRU, torch::nn::RNN\n"
      "  --steps N     timed training steps and forward passes per config (default: S 200, M 30,\n"
      "                M2 20, L 10)\n"
      "  --warmup N    untimed training steps first (default: S 20, M 3, M2 3, L 2)\n"
      "  --threads     thread counts to measure; each gets its own tables (default 1)\n"
      "  --rounds N    repeat each measurement N times, alternating which side (and cell) goes first\n"
      "  --quick       1 warm-up step, 3 timed steps, a short per-op chain (a smoke test)\n"
      "  --only SIDE   run one side only (for profiling)\n"
      "  --no-fork     run everything in this process (for perf/callgrind; memory numbers then\n"
      "                include what earlier runs left in the heap)\n"
      "  --chain N     length of the two per-op overhead chains (default 1000): adds on [1, 32],\n"
      "                and mul, sigmoid, tanh, add in turn on [1, 14]\n"
      "  --profile     training steps only, in this process (no sgemm rates, per-op chain or\n"
      "                forward passes): for `perf record` or `valgrind --tool=callgrind`\n");
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a.empty() ? "?" : a + " " + b + " " + c;
}

std::string fmt_ms(double v) {
  if (std::isnan(v)) return "-";
  if (v < 1) return fmt::format("{:.3f}", v);
  if (v < 100) return fmt::format("{:.2f}", v);
  return fmt::format("{:.0f}", v);
}
std::string fmt_ratio(double v) { return std::isnan(v) ? "-" : fmt::format("{:.2f}", v); }
std::string fmt_mb(double v) { return std::isnan(v) ? "-" : fmt::format("{:.1f}", v); }
std::string check(double v, double target) {
  if (std::isnan(v) || std::isnan(target)) return "";
  return v <= target ? " ✓" : " ✗";
}

}  // namespace

int main(int argc, char** argv) {
  // As the examples train: denormals flushed to zero on this thread (both sides run on it).
  xg::set_flush_denormals(true);
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "bench_rnn: {} needs a value\n", a);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--configs") {
      opt.configs = split_list(next());
    } else if (a == "--cells") {
      opt.cells = split_list(next());
    } else if (a == "--steps") {
      opt.steps = std::stoi(next());
    } else if (a == "--warmup") {
      opt.warmup = std::stoi(next());
    } else if (a == "--threads") {
      opt.threads.clear();
      for (auto& s : split_list(next())) opt.threads.push_back(std::stoi(s));
    } else if (a == "--rounds") {
      opt.rounds = std::max(1, std::stoi(next()));
    } else if (a == "--csv") {
      opt.csv = next();
    } else if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--only") {
      const std::string s = next();
      opt.run_xgrad = s == "xgrad";
      opt.run_torch = s == "torch" || s == "libtorch";
      if (!opt.run_xgrad && !opt.run_torch) {
        fmt::print(stderr, "bench_rnn: --only takes xgrad or torch, not {}\n", s);
        return 2;
      }
    } else if (a == "--no-fork") {
      g_fork = false;
    } else if (a == "--profile") {
      opt.profile = true;
      g_fork = false;
    } else if (a == "--chain") {
      opt.chain = std::max(1, std::stoi(next()));
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      fmt::print(stderr, "bench_rnn: unknown option {}\n", a);
      usage();
      return 2;
    }
  }
  std::vector<ConfigDefaults> configs;
  for (auto& name : opt.configs) {
    auto it = std::find_if(all_configs().begin(), all_configs().end(),
                           [&](const ConfigDefaults& c) { return c.w.name == name; });
    if (it == all_configs().end()) {
      fmt::print(stderr, "bench_rnn: unknown config {} (known: S, M, M2, L)\n", name);
      return 2;
    }
    // One row per config and cell, the cells of a config next to each other.
    for (auto& cell : opt.cells) {
      ConfigDefaults row = *it;
      row.w.cell = cell;
      // Targets (training step, 1 thread): the LSTM's per config (issue 14); the peephole cell's at M
      // (issue 12: at most 0.7x LibTorch). user_lstm's target is against xgrad's own LSTM
      // (cell_target) and GRU and RNN have none yet.
      row.target = cell == "lstm" ? it->target : cell == "peephole" && name == "M" ? 0.7 : std::nan("");
      configs.push_back(row);
    }
  }
  for (auto& cell : opt.cells) {
    if (!XgradBackend().has_cell(cell)) {
      fmt::print(stderr, "bench_rnn: unknown cell {} (known: lstm, user_lstm, peephole, gru, rnn)\n", cell);
      return 2;
    }
  }

  XgradBackend xgrad_side;
  std::string torch_why;
  std::unique_ptr<bench::Backend> torch_side = bench::make_torch_backend(torch_why);
  if (!opt.run_torch) torch_side.reset();
  if (!opt.run_torch && torch_why.empty()) torch_why = "not requested (--only xgrad)";
  const bool have_torch = torch_side != nullptr;

  fmt::print("# bench_rnn: {} + Linear head, Adam, float32, sequence-first\n\n",
             opt.cells == std::vector<std::string>{"lstm"} ? std::string("LSTM")
                                                          : fmt::format("recurrent cells {}", fmt::join(opt.cells, ", ")));
  fmt::print("- xgrad {} (OpenBLAS {} thread(s) set per run via xg::set_blas_threads)\n",
             xgrad_side.version(), fmt::join(opt.threads, "/"));
  fmt::print("- denormals flushed to zero on the timing thread (xg::set_flush_denormals)\n");
  {
    const char* forced = std::getenv("OPENBLAS_CORETYPE");
    fmt::print("- OpenBLAS: {}; sgemm kernels for core {} ({})\n", openblas_get_config(),
               openblas_get_corename(),
               forced ? fmt::format("forced by OPENBLAS_CORETYPE={} in the environment", forced)
                      : std::string("detected"));
  }
  if (have_torch)
    fmt::print("- LibTorch {} (torch::set_num_threads, at::set_num_interop_threads; its sgemm is the "
               "same OpenBLAS)\n",
               torch_side->version());
  else
    fmt::print("- LibTorch: skipped: {}\n", torch_why);
  fmt::print("- isolation: {}\n", g_fork ? "one fork()ed child per side, config and thread count"
                                         : "none (--no-fork): everything in one process");
  fmt::print("- per config and cell: MSE of head(rnn(x)[T-1]) against a random [B, 10] target; both sides "
             "start from the same inputs and weights\n");
  if (opt.cells != std::vector<std::string>{"lstm"})
    fmt::print("- cells: lstm = nn::LSTM vs torch::nn::LSTM; user_lstm = a user's LSTM cell (bench/user_lstm.hpp) "
               "through nn::Recurrent, no LibTorch side (reference: xgrad's nn::LSTM); peephole = "
               "nn::PeepholeLSTMCell through nn::Recurrent vs the same cell in LibTorch ops (one matmul for the "
               "input projection of all steps, then per step addmm, chunk and the gate arithmetic, in a C++ "
               "loop); gru, rnn = nn::GRU, nn::RNN (tanh) vs torch::nn::GRU, torch::nn::RNN\n");
  fmt::print("\n");

  std::ofstream csv;
  if (!opt.csv.empty()) {
    csv.open(opt.csv);
    csv << "threads,config,side,B,T,I,H,L,warmup,steps,step_ms_median,step_ms_min,fwd_ms_median,"
           "fwd_ms_min,step_cpu_ms_median,fwd_cpu_ms_median,peak_growth_mb,child_maxrss_mb,loss_first,loss_last,gemm_gflop_step,"
           "lb_step_ms,lb_step_shapes_ms,lb_fwd_ms,per_op_us,cell,mixed_op_us\n";
  }

  const auto bench_start = Clock::now();
  bool failed = false;  // a run failed or a loss check did not hold: exit status 1
  // Best over thread counts, per config and side: (ms, threads).
  std::map<std::string, std::pair<double, int>> best_x, best_t;
  for (const int threads : opt.threads) {
    const std::string load_before = loadavg();
    auto child_setup = [threads](bench::Backend& b) {
      xg::set_blas_threads(threads);
      b.set_threads(threads);
      // OpenBLAS's pool threads spin (sched_yield) for about 0.2 s after they were last woken,
      // here by the thread-count change; a short config timed inside that window would be
      // charged a second core's CPU time. Let them park first.
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    };

    // -- sgemm rates on every shape the selected configs use, plus a large reference shape.
    std::map<std::string, double> rate;  // key -> GFLOP/s
    std::vector<Gemm> shapes;
    {
      std::map<std::string, Gemm> uniq;
      Gemm ref{"reference", 3200, 2048, 256, false, true, 1, true};
      uniq.emplace(ref.key(), ref);
      for (auto& c : configs)
        for (auto& g : step_gemms(c.w)) uniq.emplace(g.key(), g);
      for (auto& [k, g] : uniq) shapes.push_back(g);
      const double budget = opt.quick ? 0.02 : 0.15;
      if (opt.profile) shapes.clear();
      ChildOutput co = isolated([&] {
        xg::set_blas_threads(threads);
        std::string s;
        for (auto& g : shapes)
          s += fmt::format("{} {:.6g}\n", g.key(), sgemm_gflops(g.M, g.N, g.K, g.ta, g.tb, budget, threads == 1));
        return s;
      });
      if (!co.error.empty()) fmt::print("sgemm timing failed: {}\n", co.error);
      for (auto& [k, v] : parse(co.text))
        if (!v.empty()) rate[k] = v[0];
    }
    double peak = 0;
    for (auto& [k, v] : rate) peak = std::max(peak, v);

    // -- Per-op overhead.
    const int per_op_reps = opt.quick ? 10 : 100;
    auto per_op = [&](bench::Backend& b) {
      ChildOutput co = isolated([&] {
        child_setup(b);
        b.prime();
        return fmt::format("us {:.6g}\nmixed {:.6g}\n", b.per_op_us(opt.chain, per_op_reps),
                           b.mixed_op_us(opt.chain, per_op_reps));
      });
      auto m = parse(co.text);
      const bool ok = co.error.empty() && !m["us"].empty() && !m["mixed"].empty();
      return ok ? std::pair{m["us"][0], m["mixed"][0]} : std::pair{std::nan(""), std::nan("")};
    };
    const std::pair<double, double> no_op{std::nan(""), std::nan("")};
    const auto [xg_op, xg_mixed] = opt.run_xgrad && !opt.profile ? per_op(xgrad_side) : no_op;
    const auto [th_op, th_mixed] = have_torch && !opt.profile ? per_op(*torch_side) : no_op;

    // -- The configs, alternating sides; a config's cells alternate too (the order reverses every
    // round), so that the cells compared with each other (user_lstm with lstm) run close in time.
    std::vector<std::pair<SideResult, SideResult>> results(configs.size());
    auto measure_row = [&](std::size_t ci, int round) {
      const ConfigDefaults& c = configs[ci];
      bench::RunSpec spec;
      spec.warmup = opt.warmup.value_or(opt.quick ? 1 : c.warmup);
      spec.steps = opt.steps.value_or(opt.quick ? 3 : c.steps);
      spec.fwd_warmup = opt.quick ? 1 : std::max(1, spec.warmup / 2);
      spec.fwd_steps = opt.profile ? 0 : spec.steps;
      if (opt.profile) spec.fwd_warmup = 0;
      auto measure = [&](bench::Backend& b, SideResult& r) {
        ChildOutput co = isolated([&] {
          child_setup(b);
          if (!opt.profile) b.prime();
          const bench::InitData d = make_data(c.w);
          const bool exact = bench::reset_peak_rss();
          const long base = bench::proc_status_kb("VmRSS");
          bench::RunResult rr = b.run(c.w, d, spec);
          const long hwm = bench::proc_status_kb("VmHWM");
          return fmt::format("step{}\nfwd{}\nstepcpu{}\nfwdcpu{}\nloss {:.9g} {:.9g}\nmem {} {} {}\n",
                             join(rr.step_ms), join(rr.fwd_ms), join(rr.step_cpu_ms), join(rr.fwd_cpu_ms),
                             rr.loss_first, rr.loss_last, base, hwm, exact ? 1 : 0);
        });
        r.ran = true;
        if (!co.error.empty()) {
          r.error = co.error;
          return;
        }
        auto m = parse(co.text);
        r.step_ms.insert(r.step_ms.end(), m["step"].begin(), m["step"].end());
        r.fwd_ms.insert(r.fwd_ms.end(), m["fwd"].begin(), m["fwd"].end());
        r.step_cpu_ms.insert(r.step_cpu_ms.end(), m["stepcpu"].begin(), m["stepcpu"].end());
        r.fwd_cpu_ms.insert(r.fwd_cpu_ms.end(), m["fwdcpu"].begin(), m["fwdcpu"].end());
        if (m["loss"].size() == 2) {
          r.loss_first = m["loss"][0];
          r.loss_last = m["loss"][1];
        }
        if (m["mem"].size() == 3) {
          const double g = std::max(0.0, (m["mem"][1] - m["mem"][0]) / 1024.0);
          r.mem_growth_mb = std::isnan(r.mem_growth_mb) ? g : std::max(r.mem_growth_mb, g);
          r.mem_exact = m["mem"][2] != 0;
        }
        r.child_maxrss_mb = co.maxrss_kb / 1024.0;
      };
      auto& [xr, tr] = results[ci];
      const bool xgrad_first = round % 2 == 0;
      for (int k = 0; k < 2; ++k) {
        const bool do_xgrad = (k == 0) == xgrad_first;
        if (do_xgrad && opt.run_xgrad) measure(xgrad_side, xr);
        if (!do_xgrad && have_torch && torch_side->has_cell(c.w.cell)) measure(*torch_side, tr);
      }
    };
    for (std::size_t c0 = 0, c1 = 0; c0 < configs.size(); c0 = c1) {
      while (c1 < configs.size() && configs[c1].w.name == configs[c0].w.name) ++c1;
      for (int round = 0; round < opt.rounds; ++round)
        for (std::size_t j = 0; j < c1 - c0; ++j) measure_row(round % 2 == 0 ? c0 + j : c1 - 1 - j, round);
      for (std::size_t ci = c0; ci < c1; ++ci) {
        const auto& [xr, tr] = results[ci];
        fmt::print(stderr, "[{} {} threads={}] ms/step wall (CPU): xgrad {} ({}), LibTorch {} ({})\n",
                   configs[ci].w.name, configs[ci].w.cell, threads, fmt_ms(median(xr.step_ms)),
                   fmt_ms(median(xr.step_cpu_ms)), fmt_ms(median(tr.step_ms)), fmt_ms(median(tr.step_cpu_ms)));
      }
    }

    // -- Report.
    fmt::print("## {} thread{}\n\n", threads, threads == 1 ? "" : "s");
    fmt::print("Load average (1, 5, 15 min) before: {}; after: {} (on {} CPUs; other jobs on the machine "
               "inflate wall-clock times; see the CPU-time columns).\n\n",
               load_before, loadavg(), std::thread::hardware_concurrency());
    struct Derived {
      double flops_step = 0, flops_fwd = 0, lb_step = 0, lb_step_shapes = 0, lb_fwd = 0, lb_fwd_shapes = 0;
    };
    std::vector<Derived> der(configs.size());
    for (std::size_t ci = 0; ci < configs.size(); ++ci) {
      Derived& d = der[ci];
      for (auto& g : step_gemms(configs[ci].w)) {
        const double r = rate.count(g.key()) ? rate[g.key()] : std::nan("");
        d.flops_step += g.flops();
        d.lb_step_shapes += g.flops() / (r * 1e6);
        if (g.forward) {
          d.flops_fwd += g.flops();
          d.lb_fwd_shapes += g.flops() / (r * 1e6);
        }
      }
      d.lb_step = peak > 0 ? d.flops_step / (peak * 1e6) : std::nan("");
      d.lb_fwd = peak > 0 ? d.flops_fwd / (peak * 1e6) : std::nan("");
    }

    // Each cell against its reference in the same run: user_lstm against xgrad's own nn::LSTM (the
    // same math through the generic driver), every other cell against its LibTorch counterpart.
    auto cells_table = [&] {
      bool any = false;
      for (auto& c : configs) any = any || c.w.cell != "lstm";
      if (!any) return;
      fmt::print("### Cells (training step; ms per step, median; ratio to the reference in this run)\n\n");
      fmt::print("| config | cell | xgrad CPU | reference | reference CPU | ratio (CPU) | ratio (wall) | target "
                 "| xgrad / xgrad LSTM (CPU) |\n");
      fmt::print("|---|---|---|---|---|---|---|---|---|\n");
      for (std::size_t ci = 0; ci < configs.size(); ++ci) {
        const auto& w = configs[ci].w;
        const auto& [xr, tr] = results[ci];
        const SideResult* lstm = nullptr;  // xgrad's nn::LSTM at this config, when measured
        for (std::size_t cj = 0; cj < configs.size(); ++cj)
          if (configs[cj].w.name == w.name && configs[cj].w.cell == "lstm") lstm = &results[cj].first;
        const double vs_lstm = lstm ? median(xr.step_cpu_ms) / median(lstm->step_cpu_ms) : std::nan("");
        const bool user = w.cell == "user_lstm";
        const SideResult* ref = user ? lstm : &tr;
        const std::string ref_name = user ? "xgrad nn::LSTM"
                                     : w.cell == "peephole" ? "LibTorch ops, C++ loop"
                                     : w.cell == "lstm"     ? "torch::nn::LSTM"
                                     : w.cell == "gru"      ? "torch::nn::GRU"
                                                            : "torch::nn::RNN";
        const double rc = ref ? median(xr.step_cpu_ms) / median(ref->step_cpu_ms) : std::nan("");
        const double rw = ref ? median(xr.step_ms) / median(ref->step_ms) : std::nan("");
        const double target = threads != 1 ? std::nan("") : user ? (w.name == "M" ? 1.05 : std::nan("")) : configs[ci].target;
        fmt::print("| {} | {} | {} | {} | {} | {}{} | {}{} | {} | {} |\n", w.name, w.cell, fmt_ms(median(xr.step_cpu_ms)),
                   ref_name, fmt_ms(ref ? median(ref->step_cpu_ms) : std::nan("")), fmt_ratio(rc), check(rc, target),
                   fmt_ratio(rw), check(rw, target), std::isnan(target) ? std::string("-") : "≤ " + fmt_ratio(target),
                   fmt_ratio(vs_lstm));
      }
      fmt::print("\nTargets (1 thread): lstm as in the training-step table (issue 14); user_lstm within 5% of "
                 "nn::LSTM at M and peephole at most 0.7x LibTorch at M (issue 12). GRU and RNN have no targets.\n\n");
    };

    // One table per pass: wall time (median [min]) and process CPU time (median), their ratios,
    // the GEMM lower bound and each side's distance to it.
    auto pass_table = [&](bool training) {
      fmt::print("### {} (ms per {}; wall = median [min] of wall-clock times, CPU = median of process "
                 "CPU times)\n\n",
                 training ? "Training step" : "Forward pass, no grad", training ? "step" : "pass");
      fmt::print("| config | cell | B,T,I,H,L | n | xgrad wall | LibTorch wall | ratio (wall) | xgrad CPU "
                 "| LibTorch CPU | ratio (CPU) | target | GEMM GFLOP | LB ms (peak) | LB ms (shapes) "
                 "| xgrad/LB (wall, CPU) | LibTorch/LB (wall, CPU) |\n");
      fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
      for (std::size_t ci = 0; ci < configs.size(); ++ci) {
        const auto& w = configs[ci].w;
        const Derived& d = der[ci];
        const auto& [xr, tr] = results[ci];
        const auto& xw = training ? xr.step_ms : xr.fwd_ms;
        const auto& tw = training ? tr.step_ms : tr.fwd_ms;
        const auto& xc = training ? xr.step_cpu_ms : xr.fwd_cpu_ms;
        const auto& tc = training ? tr.step_cpu_ms : tr.fwd_cpu_ms;
        const double xs = median(xw), ts = median(tw), xcs = median(xc), tcs = median(tc);
        const double lb = training ? d.lb_step : d.lb_fwd;
        const double target = training && threads == 1 ? configs[ci].target : std::nan("");
        const bool lb_target = training && threads == 1 && w.name == "L" && w.cell == "lstm";
        fmt::print("| {} | {} | {},{},{},{},{} | {} | {} [{}] | {} [{}] | {}{} | {} | {} | {}{} | {} | {:.3g} | {} "
                   "| {} | {}{}, {}{} | {}, {} |\n",
                   w.name, w.cell, w.B, w.T, w.I, w.H, w.L, std::max(xw.size(), tw.size()), fmt_ms(xs), fmt_ms(min_of(xw)),
                   fmt_ms(ts), fmt_ms(min_of(tw)), fmt_ratio(xs / ts), check(xs / ts, target), fmt_ms(xcs),
                   fmt_ms(tcs), fmt_ratio(xcs / tcs), check(xcs / tcs, target),
                   std::isnan(target) ? std::string("-") : "≤ " + fmt_ratio(target),
                   (training ? d.flops_step : d.flops_fwd) / 1e9, fmt_ms(lb),
                   fmt_ms(training ? d.lb_step_shapes : d.lb_fwd_shapes), fmt_ratio(xs / lb),
                   lb_target ? check(xs / lb, kLowerBoundTarget) : "", fmt_ratio(xcs / lb),
                   lb_target ? check(xcs / lb, kLowerBoundTarget) : "",
                   fmt_ratio(ts / lb), fmt_ratio(tcs / lb));
      }
      fmt::print("\n");
    };
    pass_table(true);
    fmt::print("Targets (1 thread, issue 14): xgrad/LibTorch ≤ the target column, and for L (lstm) xgrad within "
               "{:.2f}x of the lower bound; ✓/✗ on both the wall and the CPU ratio. With one thread a step's process CPU "
               "time is its work (no helper threads run), so CPU time does not grow when other jobs preempt "
               "the benchmark; wall-clock medians do, and more for longer steps. "
               "LB ms (peak) = GEMM FLOPs / best sgemm rate measured ({:.1f} GFLOP/s); "
               "LB ms (shapes) = each GEMM at its own shape's measured rate.\n\n",
               kLowerBoundTarget, peak);
    cells_table();
    pass_table(false);
    fmt::print("\n### Peak resident memory growth during training + forward (MB)\n\n");
    fmt::print("| config | cell | xgrad | LibTorch | xgrad/LibTorch | target | xgrad child peak RSS "
               "| LibTorch child peak RSS |\n");
    fmt::print("|---|---|---|---|---|---|---|---|\n");
    bool inexact = false;
    for (std::size_t ci = 0; ci < configs.size(); ++ci) {
      const auto& [xr, tr] = results[ci];
      inexact = inexact || !xr.mem_exact || !tr.mem_exact;
      const bool has_target = threads == 1 && configs[ci].w.cell == "lstm" &&
                              (configs[ci].w.name == "M" || configs[ci].w.name == "L");
      const double ratio = xr.mem_growth_mb / tr.mem_growth_mb;
      fmt::print("| {} | {} | {} | {} | {}{} | {} | {} | {} |\n", configs[ci].w.name, configs[ci].w.cell,
                 fmt_mb(xr.mem_growth_mb),
                 fmt_mb(tr.mem_growth_mb), fmt_ratio(ratio), has_target ? check(ratio, 1.0) : "",
                 has_target ? "≤ 1" : "", fmt_mb(xr.child_maxrss_mb), fmt_mb(tr.child_maxrss_mb));
    }
    fmt::print("\nGrowth = VmHWM after the run − VmRSS before building the model, in a fresh child per "
               "side after a tiny priming step{}. Child peak RSS = ru_maxrss of that child "
               "(includes libraries and the inherited parent).\n\n",
               inexact ? " (clear_refs unavailable: HWM could not be reset, numbers approximate)" : "");

    fmt::print("### Loss check (same inputs and initial weights on both sides)\n\n");
    fmt::print("| config | cell | training steps | xgrad first → last | reference | reference first → last "
               "| rel. diff (last) |\n");
    fmt::print("|---|---|---|---|---|---|---|\n");
    for (std::size_t ci = 0; ci < configs.size(); ++ci) {
      const auto& w = configs[ci].w;
      const auto& xr = results[ci].first;
      // user_lstm has no LibTorch side: it starts from the LSTM's numbers, so its reference is
      // xgrad's nn::LSTM at the same config.
      const SideResult* ref = &results[ci].second;
      if (w.cell == "user_lstm") {
        ref = nullptr;
        for (std::size_t cj = 0; cj < configs.size(); ++cj)
          if (configs[cj].w.name == w.name && configs[cj].w.cell == "lstm") ref = &results[cj].first;
      }
      const double rl = ref ? ref->loss_last : std::nan(""), rf = ref ? ref->loss_first : std::nan("");
      const double rel = std::abs(xr.loss_last - rl) / std::max(1e-30, std::abs(rl));
      const int warm = opt.warmup.value_or(opt.quick ? 1 : configs[ci].warmup);
      const int st = opt.steps.value_or(opt.quick ? 3 : configs[ci].steps);
      fmt::print("| {} | {} | {} | {:.6g} → {:.6g} | {} | {:.6g} → {:.6g} | {:.1e} |\n", w.name, w.cell, warm + st,
                 xr.loss_first, xr.loss_last, w.cell == "user_lstm" ? "xgrad nn::LSTM" : "LibTorch", rf, rl, rel);
      const SideResult& tr = results[ci].second;
      if (!xr.error.empty()) fmt::print("\nxgrad failed on {} {}: {}\n", w.name, w.cell, xr.error);
      if (!tr.error.empty()) fmt::print("\nLibTorch failed on {} {}: {}\n", w.name, w.cell, tr.error);
      // Both sides start from the same numbers, so the first step's losses must agree to float
      // rounding; a larger gap means the two sides do not compute the same network.
      const double rel_first = std::abs(xr.loss_first - rf) / std::max(1e-30, std::abs(rf));
      if (xr.ran && ref && ref->ran && xr.error.empty() && ref->error.empty() && !(rel_first <= 1e-4)) {
        fmt::print("\n{} {}: the first losses differ (xgrad {:.9g}, reference {:.9g}): not the same network\n",
                   w.name, w.cell, xr.loss_first, rf);
        failed = true;
      }
      failed = failed || !xr.error.empty() || !tr.error.empty();
    }
    if (std::any_of(configs.begin(), configs.end(), [](const ConfigDefaults& c) { return c.w.cell == "user_lstm"; }))
      fmt::print("\nuser_lstm has one bias where nn::LSTM has two with the same sum: the first losses agree, then "
                 "Adam moves the two biases' sum twice as far, so the later losses differ a little.\n");

    fmt::print("\n### Per-op overhead: record + backward of a chain of {} ops (µs per op, median of {})\n\n",
               opt.chain, per_op_reps);
    fmt::print("| chain | xgrad µs/op | LibTorch µs/op | xgrad/LibTorch | target (xgrad) |\n|---|---|---|---|---|\n");
    fmt::print("| add: y = y + c on [1, 32] | {:.3f} | {:.3f} | {} | ≤ {}{} |\n", xg_op, th_op,
               fmt_ratio(xg_op / th_op), kAddChainTarget, threads == 1 ? check(xg_op, kAddChainTarget) : "");
    fmt::print("| mixed: y * w, sigmoid, tanh, y + b on [1, 14] | {:.3f} | {:.3f} | {} | ≤ {}{} |\n\n", xg_mixed,
               th_mixed, fmt_ratio(xg_mixed / th_mixed), kMixedChainTarget,
               threads == 1 ? check(xg_mixed, kMixedChainTarget) : "");
    fmt::print("Each chain ends in a sum and one backward; the time covers recording and backward. c is a "
               "constant; w and b in the mixed chain are leaves that need gradients (as the LSTM objective's "
               "weights and biases do), and each of the four ops counts as one. Targets: issue 14, 1 thread.\n\n");

    fmt::print("### sgemm rates measured with xg::gemm_raw (best single call, {}; GFLOP/s)\n\n",
               threads == 1 ? "process CPU time" : "wall-clock");
    fmt::print("| M x N x K (op(A) op(B)) | used for | GFLOP/s |\n|---|---|---|\n");
    for (auto& g : shapes) {
      std::string uses;
      for (auto& c : configs)
        for (auto& h : step_gemms(c.w))
          if (h.key() == g.key() && uses.find(c.w.name + " " + h.what) == std::string::npos)
            uses += fmt::format("{}{} {}", uses.empty() ? "" : ", ", c.w.name, h.what);
      fmt::print("| {} | {} | {:.1f} |\n", g.key(), uses.empty() ? g.what : uses,
                 rate.count(g.key()) ? rate[g.key()] : std::nan(""));
    }
    fmt::print("\n");

    for (std::size_t ci = 0; ci < configs.size(); ++ci) {
      const auto& [xr, tr] = results[ci];
      auto upd = [&](std::map<std::string, std::pair<double, int>>& m, double v) {
        const std::string key = configs[ci].w.name + " " + configs[ci].w.cell;
        auto it = m.find(key);
        if (!std::isnan(v) && (it == m.end() || v < it->second.first)) m[key] = {v, threads};
      };
      upd(best_x, median(xr.step_ms));
      upd(best_t, median(tr.step_ms));
    }

    if (csv) {
      for (std::size_t ci = 0; ci < configs.size(); ++ci) {
        const auto& w = configs[ci].w;
        const auto& [xr, tr] = results[ci];
        for (int side = 0; side < 2; ++side) {
          const SideResult& r = side == 0 ? xr : tr;
          if (!r.ran) continue;
          csv << fmt::format("{},{},{},{},{},{},{},{},{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.9g},{:.9g},"
                             "{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},{:.6g}\n",
                             threads, w.name, side == 0 ? "xgrad" : "libtorch", w.B, w.T, w.I, w.H, w.L,
                             opt.warmup.value_or(opt.quick ? 1 : configs[ci].warmup), r.step_ms.size(),
                             median(r.step_ms), min_of(r.step_ms), median(r.fwd_ms), min_of(r.fwd_ms),
                             median(r.step_cpu_ms), median(r.fwd_cpu_ms),
                             r.mem_growth_mb, r.child_maxrss_mb, r.loss_first, r.loss_last,
                             der[ci].flops_step / 1e9, der[ci].lb_step, der[ci].lb_step_shapes, der[ci].lb_fwd,
                             side == 0 ? xg_op : th_op, w.cell, side == 0 ? xg_mixed : th_mixed);
        }
      }
    }
  }
  if (opt.threads.size() > 1) {
    fmt::print("## Each side at its best thread count (training step, median ms)\n\n");
    fmt::print("| config | cell | xgrad (threads) | LibTorch (threads) | xgrad/LibTorch |\n|---|---|---|---|---|\n");
    for (auto& c : configs) {
      auto get = [&](std::map<std::string, std::pair<double, int>>& m) {
        auto it = m.find(c.w.name + " " + c.w.cell);
        return it == m.end() ? std::pair<double, int>{std::nan(""), 0} : it->second;
      };
      const auto [xm, xt] = get(best_x);
      const auto [tm, tt] = get(best_t);
      fmt::print("| {} | {} | {} ({}) | {} ({}) | {} |\n", c.w.name, c.w.cell, fmt_ms(xm), xt, fmt_ms(tm), tt, fmt_ratio(xm / tm));
    }
    fmt::print("\n");
  }
  fmt::print("Total benchmark time: {:.1f} s\n", ms_since(bench_start) / 1000.0);
  if (failed) fmt::print(stderr, "bench_rnn: a run failed or a loss check did not hold (see the report)\n");
  return failed ? 1 : 0;
}
