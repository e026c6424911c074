// gradcheck: compares the tape's gradients with central finite differences.
//
//     auto f = [](const std::vector<Var<double>>& v) { return tanh(matmul(v[0], v[1])); };
//     GradcheckReport r = gradcheck<double>(f, {x, w});
//     fmt::print("{}\n", r);            // per input: max errors, worst element, pass/fail
//     assert(r.pass);
//
// What it runs, so that a wrong backward cannot pass:
// - every backward is seeded with random, non-unit, mixed-sign upstream gradients (never 1), and
//   each output element sees both signs, so a backward that ignores grad(), takes its absolute
//   value or squares it fails in full and fast mode alike;
// - leaves start every pass but the first with a random gradient already in them, so a backward
//   that assigns instead of adding fails;
// - each input is checked once more as the only one that requires grad (misused needs(i));
// - the values overload runs f once more with its inputs as freed intermediates (non-leaf values
//   whose handles were dropped), so a backward that reads a value its Saves does not declare, or
//   a view path that disagrees with the copy path, fails;
// - it runs on a tape of its own and leaves the caller's tape, leaves and gradients as they were.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <xgrad/autograd/var.hpp>
#include <xgrad/tensor/options.hpp>

namespace xg {

/// `GradcheckOptions().mode(GradcheckOptions::Mode::Fast).projections(6).seed(3)`
struct GradcheckOptions {
  enum class Mode { Auto, Full, Fast };
  /// The finite-difference step.
  XG_OPTION(double, eps, 1e-6);
  /// An entry passes when |analytic - numeric| <= atol + rtol |numeric|. Unset, atol is
  /// `atol_scale` times the largest numeric gradient of that input, and never below the
  /// finite-difference noise (100 roundings of the output element's value, divided by eps): a
  /// gradient of 1e-6 is judged against its own scale, not against a fixed 1e-5.
  XG_OPTION(std::optional<double>, atol, std::nullopt);
  XG_OPTION(double, atol_scale, 1e-5);
  XG_OPTION(double, rtol, 1e-3);
  /// Full: the whole Jacobian (one backward per output element, two forwards per input element).
  /// Fast: `projections` (at least 2) random projections u^T J v per input. Auto: Full up to
  /// `max_full_entries` Jacobian entries, else Fast.
  XG_OPTION(Mode, mode, Mode::Auto);
  XG_OPTION(std::size_t, max_full_entries, 20000);
  XG_OPTION(std::size_t, projections, 4);
  /// Seeds the upstream gradients, the projections and the gradients leaves start with.
  XG_OPTION(std::uint64_t, seed, 0);
  /// Also run f with its inputs as freed intermediates (the values overload only).
  XG_OPTION(bool, check_saves, true);
};

struct GradcheckInputReport {
  std::size_t input = 0;
  Shape shape;
  double max_abs_error = 0;  ///< over every compared entry
  double max_rel_error = 0;  ///< over the entries that matter (analytic or numeric above atol)
  double atol = 0;           ///< the absolute tolerance of the main check (its loosest entry)
  double max_numeric = 0;    ///< the largest |numeric| entry: the gradient's scale
  bool all_within_atol = true;  ///< every numeric entry is within atol of zero: nothing to check
  bool reached = true;       ///< whether any backward produced a gradient for this input
  /// Worst entry (the largest error against its tolerance): (output element, input element)
  /// in full mode, the projection in fast mode; `where` says it in words.
  std::size_t worst_output = 0, worst_element = 0;
  std::string where;
  double analytic = 0, numeric = 0;  ///< the two values at the worst entry
  bool pass = true;
};

struct GradcheckReport {
  bool pass = true;
  bool full = true;  ///< full Jacobian (true) or random projections (false)
  double rtol = 0;
  std::vector<GradcheckInputReport> inputs;
  std::vector<std::string> warnings;
  /// Failed checks that are not one entry: the saves check, the needs check.
  std::vector<std::string> failures;
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
/// in place and restored, and their gradients are restored too. Every leaf must require grad.
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
