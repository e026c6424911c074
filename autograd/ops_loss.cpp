#include <fmt/format.h>

#include <xgrad/autograd/ops_elementwise.hpp>
#include <xgrad/autograd/ops_loss.hpp>
#include <xgrad/autograd/ops_reduce.hpp>

namespace xg {

namespace {
template <class T>
Var<T> reduce(const Var<T>& v, Reduction r) {
  switch (r) {
    case Reduction::Mean: return mean(v);
    case Reduction::Sum: return sum(v);
    default: return v;
  }
}
}  // namespace

template <class T>
Var<T> mse_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction) {
  check_same_shape("mse_loss", "target", target.shape(), pred.shape());
  return reduce(square(pred - target), reduction);
}

// loss = -sum_i m_i logp[i, t_i] / sum_i m_i
template <class T>
Var<T> nll_loss(const Var<T>& logp, const IndexArray& targets, const CrossEntropyOptions& opts,
                const Array<T>* mask) {
  if (logp.dim() < 1 || logp.dim() != targets.dimension() + 1 ||
      !std::equal(targets.shape().begin(), targets.shape().end(), logp.shape().begin()))
    throw ShapeError(fmt::format("nll_loss: scores {} need targets of shape {} without the class dim, "
                                 "got targets {}",
                                 shape_str(logp.shape()), shape_str(logp.shape()), shape_str(targets.shape())));
  if (mask) check_same_shape("nll_loss", "mask", mask->shape(), targets.shape());
  const std::size_t C = logp.shape(logp.dim() - 1), n = targets.size();
  std::vector<T> w(n);
  double total = 0;  // sums in double, for float values too
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t t = targets.data()[i];
    if (t == opts.ignore_index) {
      w[i] = 0;
      continue;
    }
    if (t < 0 || static_cast<std::size_t>(t) >= C)
      throw ValueError(fmt::format("nll_loss: target {} at position {} is out of range for {} classes",
                                   t, i, C));
    w[i] = mask ? mask->data()[i] : T(1);
    total += w[i];
  }
  const double dscale = opts.reduction == Reduction::Mean ? (total > 0 ? 1.0 / total : 0.0) : 1.0;
  const T scale = static_cast<T>(dscale);
  const T* lp = logp.value().data();
  Array<T> loss = opts.reduction == Reduction::None ? zeros<T>(targets.shape()) : zeros<T>(Shape{});
  double acc = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (w[i] == T(0)) continue;
    const T li = -w[i] * lp[i * C + static_cast<std::size_t>(targets.data()[i])];
    if (opts.reduction == Reduction::None) loss.data()[i] = li;
    else acc += static_cast<double>(li);
  }
  if (opts.reduction != Reduction::None) loss() = static_cast<T>(acc * dscale);
  const bool none = opts.reduction == Reduction::None;
  return record("nll_loss", std::move(loss), {logp},
                [targets, w = std::move(w), scale, C, none](Backward<T>& bw) {
                  bw.add(0, in_place([&](Array<T>& dx, bool accumulate) {
                    if (!accumulate) dx.fill(T(0));
                    const T* g = bw.grad().data();
                    for (std::size_t i = 0; i < w.size(); ++i) {
                      if (w[i] == T(0)) continue;
                      const T gi = none ? g[i] : g[0] * scale;
                      dx.data()[i * C + static_cast<std::size_t>(targets.data()[i])] -= gi * w[i];
                    }
                  }));
                });
}

template <class T>
Var<T> cross_entropy(const Var<T>& logits, const IndexArray& targets, const CrossEntropyOptions& opts,
                     const Array<T>* mask) {
  if (logits.dim() < 1)
    throw ShapeError(fmt::format("cross_entropy: logits must have a class dim, got {}",
                                 shape_str(logits.shape())));
  return nll_loss(log_softmax(logits, -1), targets, opts, mask);
}

// loss = sum_i m_i (softplus(x_i) - x_i t_i) / sum_i m_i
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets,
                                        Reduction reduction, const Array<T>* mask) {
  check_same_shape("binary_cross_entropy_with_logits", "targets", targets.shape(), logits.shape());
  Var<T> l = softplus(logits) - logits * targets;
  if (!mask) return reduce(l, reduction);
  check_same_shape("binary_cross_entropy_with_logits", "mask", mask->shape(), logits.shape());
  l = l * Var<T>(*mask);
  if (reduction != Reduction::Mean) return reduce(l, reduction);
  double total = 0;  // in double, for float masks too
  for (const T* m = mask->data(); m != mask->data() + mask->size(); ++m) total += *m;
  return sum(l) * (total > 0 ? static_cast<T>(1.0 / total) : T(0));
}

template <class T>
Var<T> dropout(const Var<T>& x, double p, bool training, Generator& gen) {
  if (!(p >= 0.0 && p < 1.0)) throw ValueError(fmt::format("dropout: p = {} must be in [0, 1)", p));
  if (!training || p == 0.0) return x;
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  Array<T> mask = empty<T>(x.shape());
  for (T* m = mask.data(); m != mask.data() + mask.size(); ++m) *m = gen.uniform01() < p ? T(0) : scale;
  return x * Var<T>(std::move(mask));
}

#define XG_INSTANTIATE(T)                                                                        \
  template Var<T> mse_loss(const Var<T>&, const Var<T>&, Reduction);                             \
  template Var<T> nll_loss(const Var<T>&, const IndexArray&, const CrossEntropyOptions&,          \
                           const Array<T>*);                                                     \
  template Var<T> cross_entropy(const Var<T>&, const IndexArray&, const CrossEntropyOptions&,     \
                                const Array<T>*);                                                \
  template Var<T> binary_cross_entropy_with_logits(const Var<T>&, const Var<T>&, Reduction,      \
                                                   const Array<T>*);                             \
  template Var<T> dropout(const Var<T>&, double, bool, Generator&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg
