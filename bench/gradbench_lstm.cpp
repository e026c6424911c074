// gradbench_lstm: the LSTM objective of ADBench (Microsoft's AD benchmark, now part of GradBench):
// the time of its gradient with xgrad divided by the time of the plain C++ objective, on the same
// machine in one run, beside the ratios published for other tools.
//
//   gradbench_lstm [--configs 2x1024,4x1024,2x4096] [--reps N] [--seed S] [--csv FILE]
//
// The objective, written here from the published definition (b = 14 wide vectors, l layers, a
// sequence of c characters, every input uniform in [0, 1), float64 like the benchmark):
//   one "diagonal" LSTM layer (weights and biases are vectors; products are elementwise):
//     f = sigmoid(x w_0 + b_0)   i = sigmoid(h w_1 + b_1)   o = sigmoid(x w_2 + b_2)
//     g = tanh(h w_3 + b_3)      c' = c f + i g             h' = o tanh(c')
//   predict: x = input * w_in; through the l layers (each layer's input is the previous one's h);
//            y = x * w_out + b_out
//   objective: state carried over the sequence; for t = 0 .. c-2, y = predict(seq[t]),
//            total += sum(seq[t+1] * (y - logsumexp(y))); loss = -total / ((c - 1) b)
// The gradient is taken with respect to every weight and bias (main and extra parameters).
// Published ratios (gradient / objective) for this eval: Enzyme 2.3, CoDiPack 2.2, Tapenade 3.2,
// Adept 3.4, hand-written 5.3, TensorFlow 59, PyTorch 294 (from the issue that asked for this).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <xgrad/xgrad.hpp>

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kB = 14;

struct Inputs {
  std::size_t l = 2, c = 1024;
  std::vector<double> main;   // [l][2][4][b]: per layer, weights then biases, gates f, i, o, g
  std::vector<double> extra;  // [3][b]: w_in, w_out, b_out
  std::vector<double> state;  // [l][2][b]: per layer, h then c
  std::vector<double> seq;    // [c][b]
};

Inputs make_inputs(std::size_t l, std::size_t c, std::uint64_t seed) {
  std::mt19937_64 eng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Inputs in;
  in.l = l, in.c = c;
  auto fill = [&](std::vector<double>& v, std::size_t n) {
    v.resize(n);
    for (auto& x : v) x = u(eng);
  };
  fill(in.main, l * 2 * 4 * kB);
  fill(in.extra, 3 * kB);
  fill(in.state, l * 2 * kB);
  fill(in.seq, c * kB);
  return in;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// ---- The plain C++ objective: the baseline every ratio divides by --------------------------------
double objective(const Inputs& in) {
  const std::size_t b = kB;
  std::vector<double> state = in.state;
  double x[kB], y[kB];
  double total = 0;
  for (std::size_t t = 0; t + 1 < in.c; ++t) {
    const double* input = &in.seq[t * b];
    for (std::size_t j = 0; j < b; ++j) x[j] = input[j] * in.extra[j];
    for (std::size_t layer = 0; layer < in.l; ++layer) {
      const double* w = &in.main[layer * 8 * b];
      const double* bias = w + 4 * b;
      double* h = &state[layer * 2 * b];
      double* cell = h + b;
      for (std::size_t j = 0; j < b; ++j) {
        const double f = sigmoid(x[j] * w[j] + bias[j]);
        const double i = sigmoid(h[j] * w[b + j] + bias[b + j]);
        const double o = sigmoid(x[j] * w[2 * b + j] + bias[2 * b + j]);
        const double g = std::tanh(h[j] * w[3 * b + j] + bias[3 * b + j]);
        cell[j] = cell[j] * f + i * g;
        h[j] = o * std::tanh(cell[j]);
        x[j] = h[j];
      }
    }
    double m = -1e300;
    for (std::size_t j = 0; j < b; ++j) {
      y[j] = x[j] * in.extra[b + j] + in.extra[2 * b + j];
      m = std::max(m, y[j]);
    }
    double s = 0;
    for (std::size_t j = 0; j < b; ++j) s += std::exp(y[j] - m);
    const double lse = m + std::log(s);
    const double* gold = &in.seq[(t + 1) * b];
    for (std::size_t j = 0; j < b; ++j) total += gold[j] * (y[j] - lse);
  }
  return -total / static_cast<double>((in.c - 1) * b);
}

// ---- The same objective from xgrad's ops; backward() gives the gradient ----------------------------
struct Params {
  std::vector<xg::Var<double>> w, bias;  // [layer * 4 + gate], each [b]
  xg::Var<double> w_in, w_out, b_out;
};

xg::Var<double> vec(const double* p) {
  xg::Array<double> a = xg::empty<double>(xg::Shape{kB});
  std::copy(p, p + kB, a.data());
  return xg::Var<double>(std::move(a));
}
xg::Var<double> leaf(const double* p) { return vec(p).set_requires_grad(true); }

Params make_params(const Inputs& in) {
  Params p;
  for (std::size_t layer = 0; layer < in.l; ++layer)
    for (std::size_t g = 0; g < 4; ++g) {
      p.w.push_back(leaf(&in.main[layer * 8 * kB + g * kB]));
      p.bias.push_back(leaf(&in.main[layer * 8 * kB + (4 + g) * kB]));
    }
  p.w_in = leaf(&in.extra[0]);
  p.w_out = leaf(&in.extra[kB]);
  p.b_out = leaf(&in.extra[2 * kB]);
  return p;
}

// Each layer's h and c at the start of the sequence.
void initial_state(const Inputs& in, std::vector<xg::Var<double>>& h, std::vector<xg::Var<double>>& c) {
  for (std::size_t layer = 0; layer < in.l; ++layer) {
    h.push_back(vec(&in.state[layer * 2 * kB]));
    c.push_back(vec(&in.state[layer * 2 * kB + kB]));
  }
}

xg::Var<double> xgrad_objective(const Inputs& in, const Params& p) {
  using xg::sigmoid;
  using xg::tanh;
  std::vector<xg::Var<double>> h, c;
  initial_state(in, h, c);
  xg::Var<double> total;
  for (std::size_t t = 0; t + 1 < in.c; ++t) {
    xg::Var<double> x = vec(&in.seq[t * kB]) * p.w_in;
    for (std::size_t l = 0; l < in.l; ++l) {
      const auto* w = &p.w[l * 4];
      const auto* b = &p.bias[l * 4];
      xg::Var<double> forget = sigmoid(x * w[0] + b[0]);
      xg::Var<double> ingate = sigmoid(h[l] * w[1] + b[1]);
      xg::Var<double> outgate = sigmoid(x * w[2] + b[2]);
      xg::Var<double> change = tanh(h[l] * w[3] + b[3]);
      c[l] = c[l] * forget + ingate * change;
      h[l] = outgate * tanh(c[l]);
      x = h[l];
    }
    xg::Var<double> y = x * p.w_out + p.b_out;
    xg::Var<double> ynorm = y - xg::logsumexp(y, 0, false);
    xg::Var<double> term = xg::sum(vec(&in.seq[(t + 1) * kB]) * ynorm);
    total = total.defined() ? total + term : term;
  }
  return total * (-1.0 / static_cast<double>((in.c - 1) * kB));
}

// The same objective written the way a custom cell is: each layer step is two fused records
// (autograd/fuse.hpp), the input map, the output map and the log-likelihood one each; the
// derivative comes from the expressions. Same ops in the same order, so the loss agrees with the plain objective.
xg::Var<double> xgrad_objective_fused(const Inputs& in, const Params& p) {
  std::vector<xg::Var<double>> h, c;
  initial_state(in, h, c);
  xg::Var<double> total;
  for (std::size_t t = 0; t + 1 < in.c; ++t) {
    xg::Var<double> x = xg::fuse("input", [](auto s, auto w) { return s * w; }, vec(&in.seq[t * kB]), p.w_in);
    for (std::size_t l = 0; l < in.l; ++l) {
      const auto* w = &p.w[l * 4];
      const auto* b = &p.bias[l * 4];
      xg::Var<double> c_next = xg::fuse("lstm_c", [](auto xt, auto ht, auto ct, auto wf, auto bf, auto wi, auto bi,
                                                     auto wg, auto bg) {
        auto forget = sigmoid(xt * wf + bf), ingate = sigmoid(ht * wi + bi), change = tanh(ht * wg + bg);
        return ct * forget + ingate * change;
      }, x, h[l], c[l], w[0], b[0], w[1], b[1], w[3], b[3]);
      h[l] = xg::fuse("lstm_h", [](auto xt, auto wo, auto bo, auto ct) { return sigmoid(xt * wo + bo) * tanh(ct); },
                      x, w[2], b[2], c_next);
      c[l] = c_next;
      x = h[l];
    }
    xg::Var<double> y = xg::fuse("output", [](auto xt, auto w, auto b) { return xt * w + b; }, x, p.w_out, p.b_out);
    xg::Var<double> lse = xg::logsumexp(y, 0, false);  // one element: a broadcast operand below
    xg::Var<double> term = xg::sum(xg::fuse("log_likelihood", [](auto target, auto yt, auto l) { return target * (yt - l); },
                                            vec(&in.seq[(t + 1) * kB]), y, lse));
    total = total.defined() ? total + term : term;
  }
  return total * (-1.0 / static_cast<double>((in.c - 1) * kB));
}

using Objective = xg::Var<double> (*)(const Inputs&, const Params&);
struct Variant {
  const char* name;
  Objective f;
};
constexpr Variant kVariants[] = {{"ops", xgrad_objective}, {"fused", xgrad_objective_fused}};

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::pair<std::size_t, std::size_t>> configs = {{2, 1024}, {4, 1024}, {2, 4096}};
  int reps = 5;
  std::uint64_t seed = 1;
  std::string csv_path;
  std::string only;  // one variant (for profiling)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "error: {} needs a value\n", a);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--reps") reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--seed") seed = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--csv") csv_path = next();
    else if (a == "--only") only = next();
    else if (a == "--configs") {
      configs.clear();
      std::string s = next();
      for (std::size_t pos = 0; pos <= s.size();) {
        const std::size_t end = std::min(s.find(',', pos), s.size());
        const std::string item = s.substr(pos, end - pos);
        const std::size_t x = item.find('x');
        if (x == std::string::npos) {
          fmt::print(stderr, "error: --configs takes LxC items such as 2x1024, got '{}'\n", item);
          return 2;
        }
        configs.emplace_back(std::stoul(item.substr(0, x)), std::stoul(item.substr(x + 1)));
        pos = end + 1;
      }
    } else if (a == "--help" || a == "-h") {
      fmt::print("usage: gradbench_lstm [--configs 2x1024,4x1024,2x4096] [--reps N] [--seed S] [--csv FILE]\n"
                 "The ADBench/GradBench LSTM objective (b = 14): gradient time with xgrad divided by\n"
                 "the plain C++ objective's time, medians of N repetitions (default 5), one thread.\n"
                 "First checks xgrad's gradient against central differences of the plain objective\n"
                 "(l = 2, c = 12) and exits 1 if they disagree.\n"
                 "  --configs  LxC items: l layers, c characters (default 2x1024,4x1024,2x4096)\n"
                 "  --csv FILE one row per config and variant: l,c,reps,objective_ms,gradient_ms,ratio,\n"
                 "             loss_plain,loss_xgrad,tape_records,gradcheck_max_abs_err,variant\n"
                 "  --only V   time one variant only, ops or fused (for profiling)\n"
                 "Variants: 'ops' writes the objective with one op per operation; 'fused' writes each\n"
                 "layer step as two fuse() expressions and each elementwise map around them as one,\n"
                 "as a user of fuse() would.\n");
      return 0;
    } else {
      fmt::print(stderr, "error: unknown flag {} (see --help)\n", a);
      return 2;
    }
  }
  xg::set_blas_threads(1);
  std::ofstream csv;
  if (!csv_path.empty()) {
    csv.open(csv_path);
    if (!csv) {
      fmt::print(stderr, "error: cannot write {}\n", csv_path);
      return 2;
    }
    csv << "l,c,reps,objective_ms,gradient_ms,ratio,loss_plain,loss_xgrad,tape_records,gradcheck_max_abs_err,variant\n";
  }
  double gradcheck_err = 0;
  for (const Variant& variant : kVariants) {  // the gradient, against central differences (l = 2, c = 12)
    Inputs in = make_inputs(2, 12, seed + 1);
    Params p = make_params(in);
    variant.f(in, p).backward();
    double worst = 0;
    auto check = [&](std::vector<double>& store, std::size_t at, const xg::Var<double>& v, std::size_t j) {
      const double keep = store[at], eps = 1e-6;
      store[at] = keep + eps;
      const double up = objective(in);
      store[at] = keep - eps;
      const double down = objective(in);
      store[at] = keep;
      worst = std::max(worst, std::abs((up - down) / (2 * eps) - v.grad()(j)));
    };
    for (std::size_t l = 0; l < 2; ++l)
      for (std::size_t g = 0; g < 4; ++g)
        for (std::size_t j = 0; j < kB; ++j) {
          check(in.main, l * 8 * kB + g * kB + j, p.w[l * 4 + g], j);
          check(in.main, l * 8 * kB + (4 + g) * kB + j, p.bias[l * 4 + g], j);
        }
    for (std::size_t j = 0; j < kB; ++j) {
      check(in.extra, j, p.w_in, j);
      check(in.extra, kB + j, p.w_out, j);
      check(in.extra, 2 * kB + j, p.b_out, j);
    }
    fmt::print("gradient check, {} (l = 2, c = 12, every parameter): max |xgrad - central difference| = {:.1e}\n",
               variant.name, worst);
    gradcheck_err = std::max(gradcheck_err, worst);
    if (!(worst < 1e-7)) {
      fmt::print(stderr, "error: xgrad's gradient disagrees with the plain objective's central differences\n");
      return 1;
    }
  }
  fmt::print("### GradBench/ADBench LSTM objective (b = 14, float64, 1 thread, medians of {} runs)\n\n", reps);
  fmt::print("| l | c | objective | objective (ms) | xgrad gradient (ms) | ratio | loss (plain) | loss (xgrad) | tape records |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|\n");
  for (auto [l, c] : configs) {
    const Inputs in = make_inputs(l, c, seed);
    // The variants alternate within each round, so load on the machine hits them alike.
    constexpr std::size_t V = std::size(kVariants);
    std::vector<double> obj_ms, grad_ms[V];
    double plain = 0, mine[V] = {};
    std::size_t records[V] = {};
    const int inner = std::max(1, static_cast<int>(20000 / c));  // the objective is short: repeat it
    for (int r = 0; r < reps + 1; ++r) {  // the first round warms up and is dropped
      auto t0 = Clock::now();
      for (int k = 0; k < inner; ++k) plain = objective(in);
      const double o = ms_since(t0) / inner;
      if (r > 0) obj_ms.push_back(o);
      for (std::size_t v = 0; v < V; ++v) {
        if (!only.empty() && only != kVariants[v].name) continue;
        Params p = make_params(in);
        t0 = Clock::now();
        xg::Var<double> loss = kVariants[v].f(in, p);
        records[v] = xg::Tape<double>::current().size();
        loss.backward();
        const double g = ms_since(t0);
        mine[v] = loss.item();
        if (r > 0) grad_ms[v].push_back(g);
      }
    }
    for (std::size_t v = 0; v < V; ++v) {
      if (grad_ms[v].empty()) continue;
      const double ratio = median(grad_ms[v]) / median(obj_ms);
      fmt::print("| {} | {} | {} | {:.3f} | {:.2f} | {:.1f}x | {:.12f} | {:.12f} | {} |\n", l, c, kVariants[v].name,
                 median(obj_ms), median(grad_ms[v]), ratio, plain, mine[v], records[v]);
      if (csv)
        csv << fmt::format("{},{},{},{:.6g},{:.6g},{:.6g},{:.12g},{:.12g},{},{:.3g},{}\n", l, c, reps, median(obj_ms),
                           median(grad_ms[v]), ratio, plain, mine[v], records[v], gradcheck_err, kVariants[v].name);
      if (std::abs(plain - mine[v]) > 1e-9 * std::abs(plain)) {
        fmt::print(stderr, "error: the plain objective and xgrad's ({}) disagree ({} vs {})\n", kVariants[v].name,
                   plain, mine[v]);
        return 1;
      }
    }
  }
  fmt::print("\nPublished ratios for the same eval: Enzyme 2.3x, CoDiPack 2.2x, Tapenade 3.2x, Adept 3.4x,\n"
             "hand-written 5.3x, TensorFlow 59x, PyTorch 294x. Target for xgrad (issue 14): 10x.\n");
  return 0;
}
