#include <cmath>

#include <fmt/format.h>

#include <xgrad/autograd/ops_elementwise.hpp>
#include <xgrad/autograd/ops_norm.hpp>

namespace xg {

namespace {
// x^ = (x - mean) s, s = 1 / sqrt(var + eps), row by row over the last axis: the op without its
// affine part. Its backward reads the output x^ and the per-row s.
//   dx = s (g - mean(g) - x^ mean(g x^))
template <class T>
Var<T> normalize_last(const Var<T>& x, double eps) {
  if (x.dim() == 0 || x.shape().back() == 0)
    throw ShapeError(fmt::format("layer_norm: input must have a non-empty last axis, got {}", shape_str(x.shape())));
  if (!(eps > 0) || !std::isfinite(eps))
    throw ValueError(fmt::format("layer_norm: eps = {} must be positive and finite", eps));
  const std::size_t D = x.shape().back(), rows = x.size() / D;
  Array<T> y = empty<T>(x.shape());
  Array<T> inv_std = empty<T>(Shape{rows});
  const T* px = x.value().data();
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = px + r * D;
    double m = 0, v = 0;  // accumulated in double: rows can be long
    for (std::size_t j = 0; j < D; ++j) m += row[j];
    m /= static_cast<double>(D);
    for (std::size_t j = 0; j < D; ++j) v += (row[j] - m) * (row[j] - m);
    v /= static_cast<double>(D);
    const double s = 1.0 / std::sqrt(v + eps);
    inv_std(r) = static_cast<T>(s);
    for (std::size_t j = 0; j < D; ++j) y.data()[r * D + j] = static_cast<T>((row[j] - m) * s);
  }
  return record("layer_norm", std::move(y), {x}, [inv_std = std::move(inv_std), D, rows](Backward<T>& bw) {
    Array<T> dx = empty<T>(bw.out().shape());
    const T* xh = bw.out().data();
    const T* g = bw.grad().data();
    for (std::size_t r = 0; r < rows; ++r) {
      const T* gr = g + r * D;
      const T* xr = xh + r * D;
      double mg = 0, mgx = 0;
      for (std::size_t j = 0; j < D; ++j) {
        mg += gr[j];
        mgx += gr[j] * xr[j];
      }
      mg /= static_cast<double>(D);
      mgx /= static_cast<double>(D);
      const double s = inv_std(r);
      for (std::size_t j = 0; j < D; ++j) dx.data()[r * D + j] = static_cast<T>(s * (gr[j] - mg - xr[j] * mgx));
    }
    bw.add(0, std::move(dx));
  }, saves_out);
}

void check_affine(const char* what, const Shape& p, std::size_t D, const Shape& x) {
  if (p != Shape{D})
    throw ShapeError(fmt::format("layer_norm: {} must be ({},) for input {}, got {}", what, D, shape_str(x),
                                 shape_str(p)));
}
}  // namespace

template <class T>
Var<T> layer_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps) {
  if (x.dim() > 0) {
    if (weight.defined()) check_affine("weight", weight.shape(), x.shape().back(), x.shape());
    if (bias.defined()) check_affine("bias", bias.shape(), x.shape().back(), x.shape());
  }
  Var<T> y = normalize_last(x, eps);
  if (weight.defined()) y = y * weight;  // the affine part is ordinary broadcasting ops
  if (bias.defined()) y = y + bias;
  return y;
}

template Var<float> layer_norm(const Var<float>&, const Var<float>&, const Var<float>&, double);
template Var<double> layer_norm(const Var<double>&, const Var<double>&, const Var<double>&, double);

}  // namespace xg
