#include <algorithm>
#include <cmath>
#include <limits>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/tensor/random.hpp>

namespace xg {

std::string GradcheckReport::str() const {
  std::string s =
      fmt::format("gradcheck ({}, random mixed-sign seeds): {}\n",
                  full ? "full Jacobian" : "random projections", pass ? "PASS" : "FAIL");
  for (const auto& w : warnings) s += fmt::format("  warning: {}\n", w);
  for (const auto& r : inputs) {
    s += fmt::format("  input {} {}: {}", r.input, shape_str(r.shape), r.pass ? "ok  " : "FAIL");
    if (!r.reached) {
      s += !r.all_within_atol
               ? fmt::format(
                     " no gradient reached this input, but the numeric gradient is up to {:.3e}\n",
                     r.max_numeric)
               : std::string(" no gradient reached this input; its numeric gradient is zero too\n");
      continue;
    }
    const bool any_rel = r.max_rel_error > 0 || !r.all_within_atol;
    s += fmt::format(
        " max abs err {:.3e}, max rel err {} (atol {:.1e}, rtol {:.0e})", r.max_abs_error,
        any_rel ? fmt::format("{:.3e}", r.max_rel_error) : std::string("-"), r.atol, rtol);
    if (!r.where.empty())
      s += fmt::format("; worst at {} (analytic {:.10g}, numeric {:.10g})", r.where, r.analytic,
                       r.numeric);
    s += "\n";
  }
  for (const auto& f : failures) s += fmt::format("  FAIL {}\n", f);
  return s;
}

namespace {

// The finite-difference noise floor of an output element is this many roundings of the largest
// value it took, divided by eps.
constexpr double kNoiseRoundings = 100;

// Random upstream gradients: magnitudes in [0.5, 2) but never within 0.15 of 1, signs random, or
// the opposite of `opposite`'s (so that every element is seen with both signs).
template <class T>
Array<T> random_seed(const Shape& s, Generator& gen, const Array<T>* opposite = nullptr) {
  Array<T> u = empty<T>(s);
  for (std::size_t k = 0; k < u.size(); ++k) {
    double mag = 0.5 + 1.5 * gen.uniform01();
    if (std::abs(mag - 1.0) < 0.15) mag += 0.3;
    const bool neg = opposite ? opposite->data()[k] > 0 : gen.uniform01() < 0.5;
    u.data()[k] = static_cast<T>(neg ? -mag : mag);
  }
  return u;
}

template <class T>
double max_abs(const Array<T>& a) {
  double m = 0;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (std::isfinite(static_cast<double>(a.data()[k])))
      m = std::max(m, std::abs(static_cast<double>(a.data()[k])));
  return m;
}

// The entries of one check of one input: analytic and numeric values side by side, where each
// is in words, and each one's finite-difference noise floor.
struct Entries {
  std::vector<double> analytic, numeric, floor;
  std::vector<std::size_t> out_idx, elem;
  std::string label;  // "output {}, element {}" (full), "seed {}, element {}", "projection {}"
  void push(double a, double n, double fl, std::size_t j, std::size_t k) {
    analytic.push_back(a);
    numeric.push_back(n);
    floor.push_back(fl);
    out_idx.push_back(j);
    elem.push_back(k);
  }
};

// Judges one check: |a - n| <= atol + rtol |n| entry by entry, with atol scaled to the check's
// largest numeric value unless the user set it.
double judge(GradcheckInputReport& r, const GradcheckOptions& o, const Entries& e,
             double& worst_ratio, bool main_check) {
  double scale = 0;
  for (double n : e.numeric)
    if (std::isfinite(n)) scale = std::max(scale, std::abs(n));
  const double scaled = o.atol() ? *o.atol() : o.atol_scale() * scale;
  double loosest = scaled;
  bool all_within = true;  // every numeric value within its atol of zero
  for (std::size_t t = 0; t < e.numeric.size(); ++t) {
    const double a = e.analytic[t], n = e.numeric[t];
    const double atol = o.atol() ? scaled : std::max(scaled, e.floor[t]);
    loosest = std::max(loosest, atol);
    if (std::abs(n) > atol) all_within = false;
    const double err = std::abs(a - n);
    const bool finite = std::isfinite(a) && std::isfinite(n);
    const double tol = atol + o.rtol() * std::abs(n);
    const bool ok = finite && err <= tol;
    if (!ok) r.pass = false;
    const double ratio = finite ? (tol > 0 ? err / tol : (err > 0 ? INFINITY : 0.0)) : INFINITY;
    if (finite) {
      r.max_abs_error = std::max(r.max_abs_error, err);
      if (std::max(std::abs(a), std::abs(n)) > atol)
        r.max_rel_error = std::max(r.max_rel_error, err / std::max(std::abs(a), std::abs(n)));
    } else {
      r.max_abs_error = INFINITY;
    }
    if (ratio > worst_ratio || r.where.empty()) {
      worst_ratio = ratio;
      r.worst_output = e.out_idx[t];
      r.worst_element = e.elem[t];
      r.where = fmt::format(fmt::runtime(e.label), e.out_idx[t], e.elem[t]);
      r.analytic = a;
      r.numeric = n;
    }
  }
  if (main_check) {
    r.atol = loosest;
    r.max_numeric = scale;
    r.all_within_atol = all_within;
  }
  return loosest;
}

template <class T>
class Checker {
 public:
  Checker(const GradcheckFn<T>& f, std::vector<Var<T>> leaves, bool substitutable,
          const GradcheckOptions& o)
      : f_(f), xs_(std::move(leaves)), substitutable_(substitutable), o_(o), gen_(o.seed()) {
    rep_.rtol = o.rtol();
  }

  GradcheckReport run();

 private:
  Array<T> eval(const std::vector<Var<T>>& args) {
    NoGradGuard ng;
    Array<T> y = f_(args).value();
    ymax_.resize(y.size(), 0.0);
    for (std::size_t j = 0; j < y.size() && j < ymax_.size(); ++j)
      if (std::isfinite(static_cast<double>(y.data()[j])))
        ymax_[j] = std::max(ymax_[j], std::abs(static_cast<double>(y.data()[j])));
    return y;
  }
  // f(x + d) and f(x - d) for a perturbation d = eps * dir of leaf i (restored after).
  std::pair<Array<T>, Array<T>> central(std::size_t i, const Array<T>& keep, std::size_t k,
                                        const Array<T>* dir);
  // One backward pass with `seed`: each leaf's gradient, less `preset` it started with.
  std::vector<Array<T>> vjp(const Array<T>& seed, const std::vector<Array<T>>* preset,
                            bool record_reach);
  void check_needs(const Array<T>& seed, const std::vector<Array<T>>& expected);
  void check_saves(const Array<T>& seed, const std::vector<Array<T>>& expected);
  void consistent(const char* what, std::size_t i, const Array<T>& got, const Array<T>& expected,
                  const Array<T>& seed);
  void full_mode(const Array<T>& y0);
  void fast_mode(const Array<T>& y0);
  // The noise floor of u^T (f(x + d) - f(x - d)) / (2 eps): output j's roundings weighted by
  // |u_j|, over the outputs that moved (`moved`, when given and not empty), so that large outputs
  // that do not depend on this input cannot hide a small gradient.
  double floor(const Array<T>* u, std::size_t j = 0,
               const std::vector<bool>* moved = nullptr) const {
    const double unit = kNoiseRoundings * std::numeric_limits<T>::epsilon() / o_.eps();
    if (!u) return unit * ymax_[j];
    double all = 0, some = 0;
    for (std::size_t t = 0; t < ymax_.size(); ++t) {
      const double w = std::abs(static_cast<double>(u->data()[t])) * ymax_[t];
      all += w;
      if (moved && (*moved)[t]) some += w;
    }
    return unit * (some > 0 ? some : all);
  }

  const GradcheckFn<T>& f_;
  std::vector<Var<T>> xs_;
  bool substitutable_;
  const GradcheckOptions& o_;
  Generator gen_;
  GradcheckReport rep_;
  std::vector<double> ymax_;  // the largest |y_j| f gave, per output element
};

template <class T>
std::pair<Array<T>, Array<T>> Checker<T>::central(std::size_t i, const Array<T>& keep,
                                                  std::size_t k, const Array<T>* dir) {
  const T eps = static_cast<T>(o_.eps());
  Array<T>& v = xs_[i].mutable_value();
  if (dir) {
    xt::noalias(v) = keep + eps * *dir;
  } else {
    v.data()[k] = keep.data()[k] + eps;
  }
  Array<T> yp = eval(xs_);
  if (dir) {
    xt::noalias(v) = keep - eps * *dir;
  } else {
    v.data()[k] = keep.data()[k] - eps;
  }
  Array<T> ym = eval(xs_);
  if (dir) {
    xt::noalias(v) = keep;
  } else {
    v.data()[k] = keep.data()[k];
  }
  return {std::move(yp), std::move(ym)};
}

template <class T>
std::vector<Array<T>> Checker<T>::vjp(const Array<T>& seed, const std::vector<Array<T>>* preset,
                                      bool record_reach) {
  for (std::size_t i = 0; i < xs_.size(); ++i) {
    xs_[i].zero_grad();
    if (preset && xs_[i].requires_grad()) {
      xs_[i].set_grad((*preset)[i]);
    }
  }
  Tape<T>::current().clear();  // what an earlier pass recorded but did not backpropagate
  Var<T> y = f_(xs_);
  if (y.requires_grad()) y.backward(seed);
  std::vector<Array<T>> g;
  for (std::size_t i = 0; i < xs_.size(); ++i) {
    if (!xs_[i].has_grad()) {
      g.push_back(zeros<T>(xs_[i].shape()));
      continue;
    }
    if (record_reach) rep_.inputs[i].reached = true;
    g.push_back(preset && xs_[i].requires_grad() ? Array<T>(xs_[i].grad() - (*preset)[i])
                                                 : xs_[i].grad());
  }
  return g;
}

// Two ways of computing the same gradient must agree to rounding.
template <class T>
void Checker<T>::consistent(const char* what, std::size_t i, const Array<T>& got,
                            const Array<T>& expected, const Array<T>& seed) {
  const double tol =
      std::sqrt(std::numeric_limits<T>::epsilon()) * std::max(max_abs(expected), floor(&seed));
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t k = 0; k < got.size(); ++k) {
    const double d = std::abs(static_cast<double>(got.data()[k]) - expected.data()[k]);
    if (!(d <= worst)) {
      worst = d;
      at = k;
    }
  }
  if (worst <= tol) return;
  rep_.inputs[i].pass = false;
  rep_.failures.push_back(fmt::format(
      "{}: input {}'s gradient differs at element {} ({:.10g} against "
      "{:.10g} with the same seed in the main check)",
      what, i, at, static_cast<double>(got.data()[at]), static_cast<double>(expected.data()[at])));
}

// Each input once more as the only one that requires grad: a backward that gets needs(i) wrong
// gives that input a different gradient.
template <class T>
void Checker<T>::check_needs(const Array<T>& seed, const std::vector<Array<T>>& expected) {
  if (xs_.size() < 2) return;
  for (std::size_t i = 0; i < xs_.size(); ++i) {
    for (std::size_t t = 0; t < xs_.size(); ++t) xs_[t].set_requires_grad(t == i);
    std::vector<Array<T>> g;
    try {
      g = vjp(seed, nullptr, false);
    } catch (...) {
      for (auto& x : xs_) x.set_requires_grad(true);
      throw;
    }
    for (auto& x : xs_) x.set_requires_grad(true);
    consistent("needs check (only this input requires grad)", i, g[i], expected[i], seed);
  }
}

// f once more with its inputs as freed intermediates: non-leaf copies of the inputs whose handles
// are dropped as soon as f has run, and an output that is freed too, so whatever a backward reads
// without declaring it in its Saves is gone. Results that are views are views here.
template <class T>
void Checker<T>::check_saves(const Array<T>& seed, const std::vector<Array<T>>& expected) {
  auto pass_through = [](Backward<T>& b) { b.add(0, b.take_grad()); };
  for (auto& x : xs_) x.zero_grad();
  Tape<T>::current().clear();
  try {
    Var<T> z;
    {
      std::vector<Var<T>> args;
      for (const auto& x : xs_)
        args.push_back(record("gradcheck_input", x.value(), {x}, pass_through, saves_none));
      Var<T> y = f_(args);
      if (!y.requires_grad()) return;
      z = record("gradcheck_output", y.value(), {y}, pass_through, saves_none);
    }  // args and y dropped here: values nobody declared are freed
    z.backward(seed);
  } catch (const TapeError& e) {
    throw TapeError(fmt::format(
        "gradcheck (saves check: the inputs passed as freed intermediates): {}", e.what()));
  }
  for (std::size_t i = 0; i < xs_.size(); ++i)
    consistent("saves check (inputs as freed intermediates)", i,
               xs_[i].has_grad() ? xs_[i].grad() : zeros<T>(xs_[i].shape()), expected[i], seed);
}

template <class T>
void Checker<T>::full_mode(const Array<T>& y0) {
  const std::size_t m = y0.size();
  // Numeric Jacobian of each input, column by column: J[i][k * m + j] = dy_j / dx_ik.
  std::vector<std::vector<double>> J(xs_.size());
  for (std::size_t i = 0; i < xs_.size(); ++i) {
    const Array<T> keep = xs_[i].value();
    J[i].resize(keep.size() * m);
    for (std::size_t k = 0; k < keep.size(); ++k) {
      auto [yp, ym] = central(i, keep, k, nullptr);
      for (std::size_t j = 0; j < m; ++j)
        J[i][k * m + j] = (static_cast<double>(yp.data()[j]) - ym.data()[j]) / (2.0 * o_.eps());
    }
  }
  // Two dense seeds of opposite signs; the first pass finds which inputs a gradient reaches.
  const Array<T> d1 = random_seed<T>(y0.shape(), gen_);
  const Array<T> d2 = random_seed<T>(y0.shape(), gen_, &d1);
  const std::vector<Array<T>> a1 = vjp(d1, nullptr, true);
  std::vector<Array<T>> preset;
  for (std::size_t i = 0; i < xs_.size(); ++i) {
    const double s = max_abs(a1[i]);
    preset.push_back(
        Array<T>(random_seed<T>(xs_[i].shape(), gen_) * static_cast<T>(s > 0 ? s : 1.0)));
  }
  const std::vector<Array<T>> a2 = vjp(d2, &preset, false);
  // One backward per output element, seeded with c_j e_j (c_j random, non-unit, either sign).
  const Array<T> c = random_seed<T>(Shape{m}, gen_);
  std::vector<Entries> jac(xs_.size()), dense(xs_.size());
  for (auto& e : jac) e.label = "output {}, element {}";
  for (auto& e : dense) e.label = "dense seed {}, element {}";
  for (std::size_t j = 0; j < m; ++j) {
    Array<T> seed = zeros<T>(y0.shape());
    seed.data()[j] = c(j);
    const std::vector<Array<T>> row = vjp(seed, &preset, false);
    for (std::size_t i = 0; i < xs_.size(); ++i)
      for (std::size_t k = 0; k < row[i].size(); ++k)
        jac[i].push(static_cast<double>(row[i].data()[k]) / c(j), J[i][k * m + j],
                    floor(nullptr, j), j, k);
  }
  for (std::size_t i = 0; i < xs_.size(); ++i) {
    const std::size_t n = xs_[i].size();
    std::vector<bool> moved(m, false);  // the outputs that depend on this input
    for (std::size_t k = 0; k < n; ++k)
      for (std::size_t j = 0; j < m; ++j)
        if (J[i][k * m + j] != 0) moved[j] = true;
    for (int s = 0; s < 2; ++s) {
      const Array<T>& d = s == 0 ? d1 : d2;
      const Array<T>& a = s == 0 ? a1[i] : a2[i];
      for (std::size_t k = 0; k < n; ++k) {
        double num = 0;
        for (std::size_t j = 0; j < m; ++j)
          num += static_cast<double>(d.data()[j]) * J[i][k * m + j];
        dense[i].push(a.data()[k], num, floor(&d, 0, &moved), static_cast<std::size_t>(s + 1), k);
      }
    }
    double worst = -1;
    judge(rep_.inputs[i], o_, jac[i], worst, true);
    judge(rep_.inputs[i], o_, dense[i], worst, false);
  }
  check_needs(d1, a1);
  if (substitutable_ && o_.check_saves()) check_saves(d1, a1);
}

template <class T>
void Checker<T>::fast_mode(const Array<T>& y0) {
  const std::size_t P = std::max<std::size_t>(2, o_.projections());
  std::vector<Entries> proj(xs_.size());
  for (auto& e : proj) e.label = "projection {}";
  Array<T> u_prev, u0;
  std::vector<Array<T>> a0, preset;
  for (std::size_t p = 0; p < P; ++p) {
    // odd projections flip the previous seed's signs: every output element sees both
    Array<T> u = random_seed<T>(y0.shape(), gen_, p % 2 ? &u_prev : nullptr);
    const std::vector<Array<T>> g = vjp(u, p == 0 ? nullptr : &preset, p == 0);
    if (p == 0) {
      a0 = g;
      u0 = u;
      for (std::size_t i = 0; i < xs_.size(); ++i) {
        const double s = max_abs(g[i]);
        preset.push_back(
            Array<T>(random_seed<T>(xs_[i].shape(), gen_) * static_cast<T>(s > 0 ? s : 1.0)));
      }
    }
    for (std::size_t i = 0; i < xs_.size(); ++i) {
      const Array<T> v = random_seed<T>(xs_[i].shape(), gen_);
      double analytic = 0;
      for (std::size_t k = 0; k < v.size(); ++k)
        analytic += static_cast<double>(g[i].data()[k]) * v.data()[k];
      const Array<T> keep = xs_[i].value();
      auto [yp, ym] = central(i, keep, 0, &v);
      double num = 0;
      std::vector<bool> moved(u.size());
      for (std::size_t j = 0; j < u.size(); ++j) {
        num +=
            static_cast<double>(u.data()[j]) * (static_cast<double>(yp.data()[j]) - ym.data()[j]);
        moved[j] = yp.data()[j] != ym.data()[j];
      }
      proj[i].push(analytic, num / (2.0 * o_.eps()), floor(&u, 0, &moved), p, 0);
    }
    u_prev = std::move(u);
  }
  for (std::size_t i = 0; i < xs_.size(); ++i) {
    double worst = -1;
    judge(rep_.inputs[i], o_, proj[i], worst, true);
  }
  check_needs(u0, a0);
  if (substitutable_ && o_.check_saves()) check_saves(u0, a0);
}

template <class T>
GradcheckReport Checker<T>::run() {
  if constexpr (std::is_same_v<T, float>)
    rep_.warnings.push_back(
        "float32 inputs: finite differences are too noisy for a tight check; use double");
  for (std::size_t i = 0; i < xs_.size(); ++i) {
    if (!xs_[i].defined() || !xs_[i].is_leaf() || !xs_[i].requires_grad())
      throw ValueError(fmt::format("gradcheck: input {} must be a leaf that requires grad", i));
    rep_.inputs.push_back({});
    rep_.inputs.back().input = i;
    rep_.inputs.back().shape = xs_[i].shape();
    rep_.inputs.back().reached = false;
  }
  // The caller's leaves get their values, gradients and requires_grad back, whatever happens.
  struct Restore {
    std::vector<Var<T>>& xs;
    std::vector<Array<T>> values, grads;
    std::vector<bool> had;
    explicit Restore(std::vector<Var<T>>& x) : xs(x) {
      for (auto& v : xs) {
        values.push_back(v.value());
        had.push_back(v.has_grad());
        grads.push_back(v.has_grad() ? v.grad() : detail::no_array<T>());
      }
    }
    ~Restore() {
      for (std::size_t i = 0; i < xs.size(); ++i) {
        xs[i].set_requires_grad(true);
        xs[i].mutable_value() = values[i];
        xs[i].zero_grad();
        if (had[i]) {
          xs[i].set_grad(std::move(grads[i]));
        }
      }
    }
  } restore(xs_);
  // A tape of its own: the caller's half-built graph stays as it is.
  Tape<T> tape;
  typename Tape<T>::Scope scope(tape);
  struct ClearAtEnd {
    Tape<T>& tape;
    ~ClearAtEnd() { tape.clear(); }
  } clear_at_end{tape};
  const Array<T> y0 = eval(xs_);
  std::size_t n_in = 0;
  for (const auto& x : xs_) n_in += x.size();
  rep_.full =
      o_.mode() == GradcheckOptions::Mode::Full ||
      (o_.mode() == GradcheckOptions::Mode::Auto && y0.size() * n_in <= o_.max_full_entries());
  if (rep_.full) {
    full_mode(y0);
  } else {
    fast_mode(y0);
  }
  for (auto& r : rep_.inputs) {
    if (!r.reached && !r.all_within_atol) r.pass = false;
    if (r.reached && r.max_numeric > 0 && r.all_within_atol)
      rep_.warnings.push_back(
          fmt::format("input {}: every numeric gradient is within the tolerance of zero (largest "
                      "{:.3e}, atol {:.3e}): "
                      "this check cannot tell a right derivative from a wrong one; scale the "
                      "function or its inputs up",
                      r.input, r.max_numeric, r.atol));
    rep_.pass = rep_.pass && r.pass;
  }
  if (!rep_.failures.empty()) rep_.pass = false;
  return rep_;
}

}  // namespace

template <class T>
GradcheckReport gradcheck(const std::function<Var<T>()>& f, const std::vector<Var<T>>& leaves,
                          const GradcheckOptions& o) {
  const GradcheckFn<T> g = [&f](const std::vector<Var<T>>&) { return f(); };
  return Checker<T>(g, leaves, false, o).run();
}

template <class T>
GradcheckReport gradcheck(const GradcheckFn<T>& f, const std::vector<Array<T>>& inputs,
                          const GradcheckOptions& o) {
  std::vector<Var<T>> leaves;
  for (const auto& x : inputs) leaves.emplace_back(x, true);
  return Checker<T>(f, leaves, true, o).run();
}

template GradcheckReport gradcheck<float>(const std::function<Var<float>()>&,
                                          const std::vector<Var<float>>&, const GradcheckOptions&);
template GradcheckReport gradcheck<double>(const std::function<Var<double>()>&,
                                           const std::vector<Var<double>>&,
                                           const GradcheckOptions&);
template GradcheckReport gradcheck<float>(const GradcheckFn<float>&,
                                          const std::vector<Array<float>>&,
                                          const GradcheckOptions&);
template GradcheckReport gradcheck<double>(const GradcheckFn<double>&,
                                           const std::vector<Array<double>>&,
                                           const GradcheckOptions&);

}  // namespace xg
