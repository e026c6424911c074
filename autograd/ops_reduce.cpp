#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xtensor/xbroadcast.hpp>

#include <xgrad/autograd/ops_reduce.hpp>

namespace xg {

namespace {
// Sorted, unique, normalised axes; throws naming `op`.
std::vector<std::size_t> norm_axes(std::string_view op, const Axes& axes, std::size_t rank) {
  std::vector<std::size_t> out;
  for (auto a : axes) out.push_back(normalize_axis(op, a, rank));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    throw ShapeError(fmt::format("{}: repeated axis in ({})", op, fmt::join(axes, ", ")));
  return out;
}
// The shape with the reduced axes kept as size 1.
Shape kept_shape(const Shape& s, const std::vector<std::size_t>& axes) {
  Shape k = s;
  for (auto a : axes) k[a] = 1;
  return k;
}
Shape dropped_shape(const Shape& s, const std::vector<std::size_t>& axes) {
  Shape d;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (!std::binary_search(axes.begin(), axes.end(), i)) d.push_back(s[i]);
  return d;
}
// Reductions accumulate in double, for float values too: a float accumulator loses about
// n * 6e-8 (relative) over n terms, 30 times PyTorch's error on a 1e6-element loss. Four
// accumulators keep the loop as fast as the float one it replaced.
template <class T, class Term>
double accumulate(const Array<T>& a, Term term) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const T* p = a.data();
  const std::size_t n = a.size();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += term(p[i]);
    s1 += term(p[i + 1]);
    s2 += term(p[i + 2]);
    s3 += term(p[i + 3]);
  }
  for (; i < n; ++i) s0 += term(p[i]);
  return (s0 + s1) + (s2 + s3);
}
template <class T>
double total(const Array<T>& a) {
  return accumulate(a, [](T v) { return static_cast<double>(v); });
}
template <class T>
double total_sq(const Array<T>& a) {
  return accumulate(a, [](T v) { return static_cast<double>(v) * static_cast<double>(v); });
}
// sum_axes with a double accumulator (for float; double values use sum_axes as it is), times
// `scale`, rounded once.
template <class T>
Array<T> sum_axes_acc(const Array<T>& a, const std::vector<std::size_t>& axes, double scale = 1.0) {
  if constexpr (std::is_same_v<T, double>) {
    Array<T> out = sum_axes(a, axes);
    if (scale != 1.0) out *= scale;
    return out;
  } else {
    Array<double> wide = xt::cast<double>(a);
    Array<double> out = sum_axes(wide, axes);
    Array<T> r = Array<T>::from_shape(out.shape());
    for (std::size_t k = 0; k < out.size(); ++k) r.data()[k] = static_cast<T>(out.data()[k] * scale);
    return r;
  }
}

// g (of the reduced shape) reshaped to keepdims form, ready to broadcast against the input.
template <class T>
Array<T> as_kept(const Array<T>& g, const Shape& kept) {
  Array<T> k = g;
  k.reshape(kept);
  return k;
}
}  // namespace

// y = sum over axes         dx = broadcast(g)
template <class T>
Var<T> sum(const Var<T>& x, const Axes& axes, bool keepdims) {
  const auto ax = norm_axes("sum", axes, x.dim());
  const Shape kept = kept_shape(x.shape(), ax);
  Array<T> y = sum_axes_acc(x.value(), ax);
  y.reshape(keepdims ? kept : dropped_shape(x.shape(), ax));
  return record("sum", std::move(y), {x}, [kept](Backward<T>& bw) {
    bw.add(0, xt::broadcast(as_kept(bw.grad(), kept), bw.in(0).shape()));
  });
}

template <class T>
Var<T> sum(const Var<T>& x) {
  Array<T> y = empty<T>(Shape{});
  y() = static_cast<T>(total(x.value()));
  return record("sum", std::move(y), {x}, [](Backward<T>& bw) {
    bw.add(0, full<T>(bw.in(0).shape(), bw.grad()()));
  });
}

// y = sum / n               dx = broadcast(g) / n
template <class T>
Var<T> mean(const Var<T>& x, const Axes& axes, bool keepdims) {
  const auto ax = norm_axes("mean", axes, x.dim());
  std::size_t n = 1;
  for (auto a : ax) n *= x.shape(a);
  if (n == 0) throw ShapeError(fmt::format("mean: reducing empty axes of {}", shape_str(x.shape())));
  const Shape kept = kept_shape(x.shape(), ax);
  Array<T> y = sum_axes_acc(x.value(), ax, 1.0 / static_cast<double>(n));
  y.reshape(keepdims ? kept : dropped_shape(x.shape(), ax));
  const T inv = T(1) / static_cast<T>(n);
  return record("mean", std::move(y), {x}, [kept, inv](Backward<T>& bw) {
    bw.add(0, xt::broadcast(as_kept(bw.grad(), kept) * inv, bw.in(0).shape()));
  });
}

template <class T>
Var<T> mean(const Var<T>& x) {
  if (x.size() == 0) throw ShapeError("mean: the mean of an empty tensor is undefined");
  const T inv = T(1) / static_cast<T>(x.size());
  Array<T> y = empty<T>(Shape{});
  y() = static_cast<T>(total(x.value()) / static_cast<double>(x.size()));
  return record("mean", std::move(y), {x}, [inv](Backward<T>& bw) {
    bw.add(0, full<T>(bw.in(0).shape(), bw.grad()() * inv));
  });
}

// y = max along axis        dx = g at the first arg-max
template <class T>
Var<T> max(const Var<T>& x, std::ptrdiff_t axis, bool keepdims) {
  const std::size_t a = normalize_axis("max", axis, x.dim());
  const AxisLayout r = axis_layout(x.shape(), a);
  if (r.dim == 0) throw ShapeError(fmt::format("max: axis {} of {} is empty", a, shape_str(x.shape())));
  Shape kept = x.shape();
  kept[a] = 1;
  Array<T> y = empty<T>(keepdims ? kept : dropped_shape(x.shape(), {a}));
  std::vector<std::size_t> arg(r.outer * r.inner);
  const T* p = x.value().data();
  for (std::size_t o = 0; o < r.outer; ++o)
    for (std::size_t i = 0; i < r.inner; ++i) {
      std::size_t best = o * r.dim * r.inner + i;
      for (std::size_t d = 1; d < r.dim; ++d) {
        const std::size_t off = (o * r.dim + d) * r.inner + i;
        if (p[off] > p[best] || std::isnan(p[off])) best = off;
      }
      arg[o * r.inner + i] = best;
      y.data()[o * r.inner + i] = p[best];
    }
  return record("max", std::move(y), {x}, [arg = std::move(arg)](Backward<T>& bw) {
    bw.add(0, in_place([&](Array<T>& dx, bool accumulate) {
      if (!accumulate) dx.fill(T(0));
      for (std::size_t k = 0; k < arg.size(); ++k) dx.data()[arg[k]] += bw.grad().data()[k];
    }));
  });
}

template <class T>
Var<T> max(const Var<T>& x) {
  if (x.size() == 0) throw ShapeError("max: the maximum of an empty tensor is undefined");
  const T* p = x.value().data();
  std::size_t best = 0;
  for (std::size_t k = 1; k < x.size(); ++k)
    if (p[k] > p[best] || std::isnan(p[k])) best = k;
  Array<T> y = full<T>(Shape{}, p[best]);
  return record("max", std::move(y), {x}, [best](Backward<T>& bw) {
    bw.add(0, in_place([&](Array<T>& dx, bool accumulate) {
      if (!accumulate) dx.fill(T(0));
      dx.data()[best] += bw.grad()();
    }));
  });
}

// y = sqrt(sum x^2)         dx = g x / y   (0 where y = 0)
template <class T>
Var<T> norm(const Var<T>& x) {
  Array<T> y = empty<T>(Shape{});
  y() = static_cast<T>(std::sqrt(total_sq(x.value())));
  return record("norm", std::move(y), {x}, [](Backward<T>& bw) {
    const T n = bw.out()();
    const T s = n > T(0) ? bw.grad()() / n : T(0);
    bw.add(0, bw.in(0) * s);
  });
}

template <class T>
Var<T> norm(const Var<T>& x, const Axes& axes, bool keepdims) {
  const auto ax = norm_axes("norm", axes, x.dim());
  const Shape kept = kept_shape(x.shape(), ax);
  Array<T> y = xt::sqrt(sum_axes_acc(Array<T>(x.value() * x.value()), ax));
  y.reshape(keepdims ? kept : dropped_shape(x.shape(), ax));
  return record("norm", std::move(y), {x}, [kept](Backward<T>& bw) {
    Array<T> n = as_kept(bw.out(), kept);
    Array<T> s = xt::where(n > T(0), as_kept(bw.grad(), kept) / n, T(0));
    bw.add(0, bw.in(0) * s);
  });
}

// ---- softmax family: raw loops over [outer, dim, inner] ---------------------------------------

namespace {
// out = x - logsumexp(x) along the axis (log softmax), stable.
template <class T>
void log_softmax_kernel(const T* x, T* out, const AxisLayout& r) {
  for (std::size_t o = 0; o < r.outer; ++o)
    for (std::size_t i = 0; i < r.inner; ++i) {
      const T* px = x + o * r.dim * r.inner + i;
      T* po = out + o * r.dim * r.inner + i;
      T m = -std::numeric_limits<T>::infinity();
      for (std::size_t d = 0; d < r.dim; ++d) m = std::max(m, px[d * r.inner]);
      if (!std::isfinite(m)) m = T(0);
      double s = 0;  // in double for float values too (long class dims)
      for (std::size_t d = 0; d < r.dim; ++d) s += std::exp(px[d * r.inner] - m);
      const T lse = m + static_cast<T>(std::log(s));
      for (std::size_t d = 0; d < r.dim; ++d) po[d * r.inner] = px[d * r.inner] - lse;
    }
}
}  // namespace

// y = softmax(x)            dx = y (g - sum(g y))
template <class T>
Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis) {
  const AxisLayout r = axis_layout(x.shape(), normalize_axis("softmax", axis, x.dim()));
  Array<T> y = empty<T>(x.shape());
  log_softmax_kernel(x.value().data(), y.data(), r);
  xt::noalias(y) = xt::exp(y);  // elementwise, no overlap issue
  return record("softmax", std::move(y), {x}, [r](Backward<T>& bw) {
    Array<T> dx = empty<T>(bw.out().shape());
    const T* y = bw.out().data();
    const T* g = bw.grad().data();
    for (std::size_t o = 0; o < r.outer; ++o)
      for (std::size_t i = 0; i < r.inner; ++i) {
        const std::size_t base = o * r.dim * r.inner + i;
        T dot = 0;
        for (std::size_t d = 0; d < r.dim; ++d) dot += g[base + d * r.inner] * y[base + d * r.inner];
        for (std::size_t d = 0; d < r.dim; ++d) {
          const std::size_t k = base + d * r.inner;
          dx.data()[k] = y[k] * (g[k] - dot);
        }
      }
    bw.add(0, std::move(dx));
  }, saves_out);
}

// y = x - logsumexp(x)      dx = g - e^y sum(g)
template <class T>
Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis) {
  const AxisLayout r = axis_layout(x.shape(), normalize_axis("log_softmax", axis, x.dim()));
  Array<T> y = empty<T>(x.shape());
  log_softmax_kernel(x.value().data(), y.data(), r);
  return record("log_softmax", std::move(y), {x}, [r](Backward<T>& bw) {
    Array<T> dx = empty<T>(bw.out().shape());
    const T* y = bw.out().data();
    const T* g = bw.grad().data();
    for (std::size_t o = 0; o < r.outer; ++o)
      for (std::size_t i = 0; i < r.inner; ++i) {
        const std::size_t base = o * r.dim * r.inner + i;
        T s = 0;
        for (std::size_t d = 0; d < r.dim; ++d) s += g[base + d * r.inner];
        for (std::size_t d = 0; d < r.dim; ++d) {
          const std::size_t k = base + d * r.inner;
          dx.data()[k] = g[k] - std::exp(y[k]) * s;
        }
      }
    bw.add(0, std::move(dx));
  }, saves_out);
}

// y = log sum e^x           dx = g e^(x - y)
template <class T>
Var<T> logsumexp(const Var<T>& x, std::ptrdiff_t axis, bool keepdims) {
  const std::size_t a = normalize_axis("logsumexp", axis, x.dim());
  const AxisLayout r = axis_layout(x.shape(), a);
  Shape kept = x.shape();
  kept[a] = 1;
  Array<T> y = empty<T>(keepdims ? kept : dropped_shape(x.shape(), {a}));
  const T* px = x.value().data();
  for (std::size_t o = 0; o < r.outer; ++o)
    for (std::size_t i = 0; i < r.inner; ++i) {
      const std::size_t base = o * r.dim * r.inner + i;
      T m = -std::numeric_limits<T>::infinity();
      for (std::size_t d = 0; d < r.dim; ++d) m = std::max(m, px[base + d * r.inner]);
      const T mm = std::isfinite(m) ? m : T(0);
      double s = 0;
      for (std::size_t d = 0; d < r.dim; ++d) s += std::exp(px[base + d * r.inner] - mm);
      y.data()[o * r.inner + i] = mm + static_cast<T>(std::log(s));
    }
  return record("logsumexp", std::move(y), {x}, [kept](Backward<T>& bw) {
    Array<T> yk = as_kept(bw.out(), kept);
    Array<T> gk = as_kept(bw.grad(), kept);
    bw.add(0, gk * xt::exp(bw.in(0) - yk));
  });
}

#define XG_INSTANTIATE(T)                                                 \
  template Var<T> sum(const Var<T>&);                                     \
  template Var<T> sum(const Var<T>&, const Axes&, bool);                  \
  template Var<T> mean(const Var<T>&);                                    \
  template Var<T> mean(const Var<T>&, const Axes&, bool);                 \
  template Var<T> max(const Var<T>&, std::ptrdiff_t, bool);               \
  template Var<T> max(const Var<T>&);                                     \
  template Var<T> norm(const Var<T>&);                                    \
  template Var<T> norm(const Var<T>&, const Axes&, bool);                 \
  template Var<T> softmax(const Var<T>&, std::ptrdiff_t);                 \
  template Var<T> log_softmax(const Var<T>&, std::ptrdiff_t);             \
  template Var<T> logsumexp(const Var<T>&, std::ptrdiff_t, bool);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg
