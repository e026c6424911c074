// cell_speed: the training-step time of every registered cell at bench config M, as a ratio to the
// built-in "lstm" measured in the same run.
//
//   cell_speed [--rounds N] [--steps N] [--warmup N] [--cells a,b,..] [--csv FILE]
//   cell_speed --list      # the registered cells, one per line
//
// Config M: B = 32, T = 50, I = 128, H = 256, one layer. A step is
//   opt.zero_grad(); y = head(net(x).output[T-1]); loss = mse(y, target); loss.backward();
//   opt.step()
// with nn::Recurrent over the cell, a Linear head to 10 outputs and Adam, on random inputs and
// targets (N(0, 1)). One BLAS thread; the time is the process CPU time of each step, so other jobs
// on the machine slow the wall clock but not the figure. The cells take turns: every round times
// `--steps` steps of each cell, in an order that rotates from round to round, so slow drifts in
// load or clock speed hit every cell alike. A cell's figure is the median over all its timed
// steps; its ratio is that over the lstm's median. The spread is the range of the per-round ratios.
#include <fmt/format.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#include <xgrad/xgrad.hpp>

#include "bench_backend.hpp"

namespace {

using namespace xg;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t a = 0;
  while (a <= s.size()) {
    const std::size_t b = std::min(s.find(',', a), s.size());
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

constexpr std::size_t B = 32, T = 50, I = 128, H = 256, C = 10;

/// One cell's model, optimizer and inputs; step() is one timed training step.
struct Run {
  nn::Recurrent<float> net;
  nn::Linear<float> head;
  optim::Adam<float> opt;
  Var<float> x, y;

  Run(const std::string& cell, Generator& gen)
      : net(nn::RNNOptions(I, H), cell, gen),
        head(H, C),
        opt(nn::parameters(net, head), optim::AdamOptions(1e-3)),
        x(normal<float>({T, B, I}, 0.f, 1.f, gen)),
        y(normal<float>({B, C}, 0.f, 1.f, gen)) {}

  double step() {
    opt.zero_grad();
    Var<float> loss = mse_loss(head(select(net.forward(x).output, 0, T - 1)), y);
    loss.backward();
    opt.step();
    return static_cast<double>(loss.item());
  }
};

int run(int argc, char** argv) {
  int rounds = 5, steps = 5, warmup = 2;
  std::vector<std::string> cells = nn::cell_names();
  std::string csv;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("cell_speed: " + a + " needs a value");
      return argv[++i];
    };
    auto count = [&](int min) {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (end != v.c_str() + v.size() || v.empty() || n < min || n > 100000)
        throw std::invalid_argument(
            fmt::format("cell_speed: {} {}: expected an integer >= {}", a, v, min));
      return static_cast<int>(n);
    };
    if (a == "--rounds")
      rounds = count(1);
    else if (a == "--steps")
      steps = count(1);
    else if (a == "--warmup")
      warmup = count(0);
    else if (a == "--cells")
      cells = split(value());
    else if (a == "--csv")
      csv = value();
    else if (a == "--list") {
      for (const std::string& name : nn::cell_names()) fmt::print("{}\n", name);
      return 0;
    } else if (a == "--help" || a == "-h") {
      fmt::print(
          "usage: cell_speed [--rounds N] [--steps N] [--warmup N] [--cells a,b,..] [--csv FILE]\n"
          "       cell_speed --list\n"
          "Training-step CPU time of each cell at config M (B 32, T 50, I 128, H 256, 1 layer),\n"
          "as a ratio to lstm. Cells: {}\n",
          fmt::join(nn::cell_names(), " "));
      return 0;
    } else {
      throw std::invalid_argument("cell_speed: unknown argument " + a + " (see --help)");
    }
  }
  if (std::find(cells.begin(), cells.end(), "lstm") == cells.end())
    cells.insert(cells.begin(), "lstm");

  set_blas_threads(1);
  _mm_setcsr(_mm_getcsr() | 0x8040);  // flush-to-zero and denormals-are-zero, as the examples do

  std::map<std::string, std::unique_ptr<Run>> runs;
  std::map<std::string, std::vector<double>> times;          // every timed step
  std::map<std::string, std::vector<double>> round_medians;  // per round
  for (const std::string& cell : cells) {
    Generator gen(1234);  // the same inputs for every cell
    runs[cell] = std::make_unique<Run>(cell, gen);
    for (int i = 0; i < warmup; ++i) runs[cell]->step();
  }
  fmt::print(
      "cell_speed: config M (B {}, T {}, I {}, H {}, 1 layer, Linear to {}, MSE, Adam), 1 BLAS "
      "thread, {} rounds x {} steps per cell, {} warm-up steps\n",
      B, T, I, H, C, rounds, steps, warmup);
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t k = 0; k < cells.size(); ++k) {
      const std::string& cell = cells[(k + static_cast<std::size_t>(r)) % cells.size()];
      std::vector<double> t;
      for (int s = 0; s < steps; ++s) {
        const double c0 = bench::cpu_ms();
        const double loss = runs[cell]->step();
        t.push_back(bench::cpu_ms() - c0);
        if (!std::isfinite(loss))
          throw std::runtime_error("cell_speed: " + cell + ": the loss is not finite");
      }
      round_medians[cell].push_back(median(t));
      times[cell].insert(times[cell].end(), t.begin(), t.end());
    }
  }

  const double ref = median(times["lstm"]);
  std::FILE* out = nullptr;
  if (!csv.empty()) {
    out = std::fopen(csv.c_str(), "w");
    if (!out) throw std::runtime_error("cell_speed: cannot write " + csv);
    fmt::print(out,
               "cell,median_cpu_ms,ratio_to_lstm,round_ratio_min,round_ratio_max,parameters\n");
  }
  fmt::print("{:<14} {:>14} {:>9} {:>18} {:>11}\n", "cell", "CPU ms/step", "vs lstm",
             "per-round range", "parameters");
  for (const std::string& cell : cells) {
    const double m = median(times[cell]);
    double lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < rounds; ++r) {
      const double q = round_medians[cell][static_cast<std::size_t>(r)] /
                       round_medians["lstm"][static_cast<std::size_t>(r)];
      lo = std::min(lo, q), hi = std::max(hi, q);
    }
    const std::size_t n = runs[cell]->net.num_parameters() + runs[cell]->head.num_parameters();
    fmt::print("{:<14} {:>14.2f} {:>8.2f}x {:>10.2f} - {:.2f} {:>11}\n", cell, m, m / ref, lo, hi,
               n);
    if (out) fmt::print(out, "{},{:.4f},{:.4f},{:.4f},{:.4f},{}\n", cell, m, m / ref, lo, hi, n);
  }
  if (out && std::fclose(out) != 0) throw std::runtime_error("cell_speed: write failed: " + csv);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
