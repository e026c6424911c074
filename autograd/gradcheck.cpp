#include <cmath>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/tensor/random.hpp>

namespace xg {

std::string GradcheckReport::str() const {
  std::string s = fmt::format("gradcheck ({}): {}\n", full ? "full Jacobian" : "random projections",
                              pass ? "PASS" : "FAIL");
  for (const auto& w : warnings) s += fmt::format("  warning: {}\n", w);
  for (const auto& r : inputs)
    s += fmt::format("  input {} {}: {} max abs err {:.3e}, max rel err {:.3e}; worst at "
                     "{} {} (analytic {:.10g}, numeric {:.10g})\n",
                     r.input, shape_str(r.shape), r.pass ? "ok  " : "FAIL", r.max_abs_error,
                     r.max_rel_error, full ? "output" : "projection", full ? fmt::format("{}, element {}", r.worst_output, r.worst_element) : fmt::format("{}", r.worst_output),
                     r.analytic, r.numeric);
  return s;
}

namespace {
template <class T>
Array<T> eval_no_grad(const std::function<Var<T>()>& f) {
  NoGradGuard ng;
  return f().value();
}

void compare(GradcheckInputReport& r, const GradcheckOptions& o, double a, double n,
             std::size_t out_idx, std::size_t elem) {
  const double abs_err = std::abs(a - n);
  const double rel_err = abs_err / std::max({std::abs(n), std::abs(a), 1e-12});
  const bool ok = abs_err <= o.atol + o.rtol * std::abs(n) && std::isfinite(a) == std::isfinite(n);
  if (abs_err > r.max_abs_error || (!ok && r.pass) || !std::isfinite(abs_err)) {
    r.worst_output = out_idx;
    r.worst_element = elem;
    r.analytic = a;
    r.numeric = n;
  }
  r.max_abs_error = std::max(r.max_abs_error, abs_err);
  r.max_rel_error = std::max(r.max_rel_error, rel_err);
  if (!ok) r.pass = false;
}
}  // namespace

template <class T>
GradcheckReport gradcheck(const std::function<Var<T>()>& f, const std::vector<Var<T>>& leaves,
                          const GradcheckOptions& o) {
  GradcheckReport rep;
  if constexpr (std::is_same_v<T, float>)
    rep.warnings.push_back("float32 inputs: finite differences are too noisy for a tight check; use double");
  std::vector<Var<T>> xs = leaves;  // handles: values are perturbed in place
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined() || !xs[i].is_leaf() || !xs[i].requires_grad())
      throw ValueError(fmt::format("gradcheck: input {} must be a leaf that requires grad", i));
    rep.inputs.push_back({});
    rep.inputs.back().input = i;
    rep.inputs.back().shape = xs[i].shape();
  }
  auto zero_all = [&] {
    for (auto& x : xs) x.zero_grad();
  };
  auto grad_or_zeros = [](const Var<T>& x) { return x.has_grad() ? x.grad() : zeros<T>(x.shape()); };
  const T eps = static_cast<T>(o.eps);
  const Array<T> y0 = eval_no_grad(f);
  const std::size_t m = y0.size();
  std::size_t n_in = 0;
  for (const auto& x : xs) n_in += x.size();
  rep.full = o.mode == GradcheckOptions::Mode::Full ||
             (o.mode == GradcheckOptions::Mode::Auto && m * n_in <= o.max_full_entries);
  if (rep.full) {
    // Analytic rows: one backward per output element.
    std::vector<std::vector<Array<T>>> rows(m);
    for (std::size_t j = 0; j < m; ++j) {
      zero_all();
      Var<T> y = f();
      Array<T> seed = zeros<T>(y.shape());
      seed.data()[j] = T(1);
      if (y.requires_grad()) y.backward(seed);
      for (auto& x : xs) rows[j].push_back(grad_or_zeros(x));
    }
    // Numeric columns: two forwards per input element.
    for (std::size_t i = 0; i < xs.size(); ++i) {
      for (std::size_t k = 0; k < xs[i].size(); ++k) {
        T* v = xs[i].mutable_value().data() + k;
        const T keep = *v;
        *v = keep + eps;
        const Array<T> yp = eval_no_grad(f);
        *v = keep - eps;
        const Array<T> ym = eval_no_grad(f);
        *v = keep;
        for (std::size_t j = 0; j < m; ++j) {
          const double num = (static_cast<double>(yp.data()[j]) - ym.data()[j]) / (2.0 * o.eps);
          compare(rep.inputs[i], o, rows[j][i].data()[k], num, j, k);
        }
      }
    }
  } else {
    Generator gen(o.seed);
    for (std::size_t p = 0; p < o.projections; ++p) {
      Array<T> u = normal<T>(y0.shape(), T(0), T(1), gen);
      zero_all();
      Var<T> y = f();
      if (y.requires_grad()) y.backward(u);
      std::vector<Array<T>> grads;
      for (auto& x : xs) grads.push_back(grad_or_zeros(x));
      for (std::size_t i = 0; i < xs.size(); ++i) {
        Array<T> v = normal<T>(xs[i].shape(), T(0), T(1), gen);
        double analytic = 0;
        for (std::size_t k = 0; k < v.size(); ++k)
          analytic += static_cast<double>(grads[i].data()[k]) * v.data()[k];
        const Array<T> keep = xs[i].value();
        xs[i].mutable_value() = keep + eps * v;
        const Array<T> yp = eval_no_grad(f);
        xs[i].mutable_value() = keep - eps * v;
        const Array<T> ym = eval_no_grad(f);
        xs[i].mutable_value() = keep;
        double num = 0;
        for (std::size_t j = 0; j < m; ++j)
          num += static_cast<double>(u.data()[j]) * (static_cast<double>(yp.data()[j]) - ym.data()[j]);
        num /= 2.0 * o.eps;
        compare(rep.inputs[i], o, analytic, num, p, 0);
      }
    }
  }
  zero_all();
  for (const auto& r : rep.inputs) rep.pass = rep.pass && r.pass;
  return rep;
}

template <class T>
GradcheckReport gradcheck(const GradcheckFn<T>& f, const std::vector<Array<T>>& inputs,
                          const GradcheckOptions& o) {
  std::vector<Var<T>> leaves;
  for (const auto& x : inputs) leaves.emplace_back(x, true);
  return gradcheck<T>(std::function<Var<T>()>([&] { return f(leaves); }), leaves, o);
}

template GradcheckReport gradcheck<float>(const std::function<Var<float>()>&, const std::vector<Var<float>>&,
                                          const GradcheckOptions&);
template GradcheckReport gradcheck<double>(const std::function<Var<double>()>&, const std::vector<Var<double>>&,
                                           const GradcheckOptions&);
template GradcheckReport gradcheck<float>(const GradcheckFn<float>&, const std::vector<Array<float>>&,
                                          const GradcheckOptions&);
template GradcheckReport gradcheck<double>(const GradcheckFn<double>&, const std::vector<Array<double>>&,
                                           const GradcheckOptions&);

}  // namespace xg
