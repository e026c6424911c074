// xtensor-blas's gemm wrapper against xgrad's direct cblas call, in one run.
//
// Both compute C = alpha op(A) op(B) + beta C on the same row-major float32 arrays; xgrad's path
// is matmul_into (tensor/blas.cpp: cblas_sgemm with transpose flags), the other is
// xt::blas::gemm(A, B, C, transA, transB, alpha, beta). The shapes are the GEMMs of an LSTM
// training step (bench config M: B 32, T 50, I 128, H 256) plus the single-row product of config
// S. Rounds alternate which path goes first; the report gives the median CPU time per call of
// each and their ratio, and checks that both give the same numbers.
//
//     build/bench/bench_blas_wrappers [--rounds 15]
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <xtensor-blas/xblas.hpp>

#include <xgrad/xgrad.hpp>

using namespace xg;

namespace {
struct Case {
  const char* what;
  std::size_t m, n, k;
  bool ta, tb;
  float alpha, beta;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

// Microseconds per call of f: this thread's CPU time, which other jobs on a shared machine
// disturb far less than wall time (with one BLAS thread, OpenBLAS computes on the caller's).
template <class F>
double time_us(F&& f, std::size_t reps) {
  const double t0 = thread_cpu_us();
  for (std::size_t i = 0; i < reps; ++i) f();
  return (thread_cpu_us() - t0) / static_cast<double>(reps);
}
}  // namespace

int main(int argc, char** argv) {
  int rounds = 15;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--rounds N]\n", argv[0]);
      return 2;
    }
  }
  set_blas_threads(1);
  const std::vector<Case> cases = {
      {"x W_ih^T, all steps (1600x1024x128)", 1600, 1024, 128, false, true, 1.f, 0.f},
      {"h W_hh^T + gates (32x1024x256, beta 1)", 32, 1024, 256, false, true, 1.f, 1.f},
      {"dW_hh += dZ^T h (1024x256x32, beta 1)", 1024, 256, 32, true, false, 1.f, 1.f},
      {"dh = dZ W_hh (32x256x1024)", 32, 256, 1024, false, false, 1.f, 0.f},
      {"alpha 0.5, both transposed (256x256x256)", 256, 256, 256, true, true, 0.5f, 0.f},
      {"config S: h W_hh^T (1x128x32, beta 1)", 1, 128, 32, false, true, 1.f, 1.f},
  };
  Generator gen(1);
  std::printf("| GEMM | cblas (µs CPU) | xtensor-blas (µs CPU) | xtensor-blas / cblas | same result |\n");
  std::printf("|---|---:|---:|---:|---|\n");
  for (const Case& c : cases) {
    const Shape sa = c.ta ? Shape{c.k, c.m} : Shape{c.m, c.k};
    const Shape sb = c.tb ? Shape{c.n, c.k} : Shape{c.k, c.n};
    const Array<float> a = normal<float>(sa, 0.f, 1.f, gen), b = normal<float>(sb, 0.f, 1.f, gen);
    const Array<float> c0 = normal<float>(Shape{c.m, c.n}, 0.f, 1.f, gen);
    Array<float> c1 = c0, c2 = c0;
    const Trans ta = c.ta ? DoTrans : NoTrans, tb = c.tb ? DoTrans : NoTrans;
    auto direct = [&] { matmul_into<float>(a, b, c1, ta, tb, c.alpha, c.beta); };
    auto wrapped = [&] { xt::blas::gemm(a, b, c2, c.ta, c.tb, c.alpha, c.beta); };
    // Same numbers from the same start (with beta 1 both accumulate from c0 once).
    direct();
    wrapped();
    const bool same = c1 == c2;
    const double flops = 2.0 * static_cast<double>(c.m * c.n * c.k);
    const std::size_t reps = std::max<std::size_t>(1, static_cast<std::size_t>(2e8 / flops));
    std::vector<double> td, tw;
    for (int r = 0; r < rounds; ++r) {
      if (r % 2 == 0) {
        td.push_back(time_us(direct, reps));
        tw.push_back(time_us(wrapped, reps));
      } else {
        tw.push_back(time_us(wrapped, reps));
        td.push_back(time_us(direct, reps));
      }
    }
    const double d = median(td), w = median(tw);
    std::printf("| %s | %.2f | %.2f | %.3f | %s |\n", c.what, d, w, w / d, same ? "yes" : "NO");
  }
  return 0;
}
