// gradcheck: compares the tape's gradients with central finite differences.
//
//     auto f = [](const std::vector<Var<double>>& v) { return tanh(matmul(v[0], v[1])); };
//     GradcheckReport r = gradcheck<double>(f, {x, w});
//     fmt::print("{}\n", r);            // per input: max errors, worst element, pass/fail
//     assert(r.pass);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <xgrad/autograd/tape.hpp>

namespace xg {

struct GradcheckOptions {
  enum class Mode { Auto, Full, Fast };
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< an entry passes when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  /// Full: the whole Jacobian (one backward per output element, two forwards per input element).
  /// Fast: `projections` random projections u^T J v per input. Auto: Full up to
  /// `max_full_entries` Jacobian entries, else Fast.
  Mode mode = Mode::Auto;
  std::size_t max_full_entries = 20000;
  std::size_t projections = 4;
  std::uint64_t seed = 0;
};

struct GradcheckInputReport {
  std::size_t input = 0;
  Shape shape;
  double max_abs_error = 0;
  double max_rel_error = 0;
  /// Worst entry: (output element, input element) in full mode, the projection in fast mode.
  std::size_t worst_output = 0, worst_element = 0;
  double analytic = 0, numeric = 0;  ///< the two values at the worst entry
  bool pass = true;
};

struct GradcheckReport {
  bool pass = true;
  bool full = true;  ///< full Jacobian (true) or random projections (false)
  std::vector<GradcheckInputReport> inputs;
  std::vector<std::string> warnings;
  std::string str() const;
};

template <class T>
using GradcheckFn = std::function<Var<T>(const std::vector<Var<T>>&)>;

/// Checks `f` at `inputs`; every input gets a gradient (requires_grad is set on copies).
/// Use T = double: float32 differences are too noisy (the report warns).
template <class T>
GradcheckReport gradcheck(const GradcheckFn<T>& f, const std::vector<Array<T>>& inputs,
                          const GradcheckOptions& options = {});

/// Checks a function of existing leaves (a module's parameters, say): their values are perturbed
/// in place and restored; their gradients are reset. Every leaf must require grad.
///     gradcheck<double>([&] { return sum(lstm.forward(x).output); }, lstm.parameters());
template <class T>
GradcheckReport gradcheck(const std::function<Var<T>()>& f, const std::vector<Var<T>>& leaves,
                          const GradcheckOptions& options = {});

}  // namespace xg

namespace fmt {
template <>
struct formatter<xg::GradcheckReport> : formatter<std::string> {
  template <class Ctx>
  auto format(const xg::GradcheckReport& r, Ctx& ctx) const {
    return formatter<std::string>::format(r.str(), ctx);
  }
};
}  // namespace fmt
