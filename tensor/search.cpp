#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include <xgrad/tensor/search.hpp>

namespace xg {

namespace {
// a comes before b in descending order (NaN first), for argmax and topk(largest).
template <class T>
bool greater(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
  }
  return a > b;
}

template <class T>
bool less(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
  }
  return a < b;
}

template <class T, class Better>
IndexArray arg_best(const char* op, const Array<T>& x, std::ptrdiff_t axis, bool keepdims,
                    Better better) {
  const std::size_t a = normalize_axis(op, axis, x.dimension());
  if (x.shape()[a] == 0)
    throw ShapeError(fmt::format("{}: axis {} of {} is empty", op, a, shape_str(x.shape())));
  const AxisLayout r = axis_layout(x.shape(), a);
  Shape s = x.shape();
  s[a] = 1;
  IndexArray out = IndexArray::from_shape(s);
  for (std::size_t o = 0; o < r.outer; ++o)
    for (std::size_t i = 0; i < r.inner; ++i) {
      const T* p = x.data() + o * r.dim * r.inner + i;
      std::size_t best = 0;
      for (std::size_t j = 1; j < r.dim; ++j)
        if (better(p[j * r.inner], p[best * r.inner])) best = j;
      out.data()[o * r.inner + i] = static_cast<std::int64_t>(best);
    }
  if (!keepdims) {
    Shape t;
    for (std::size_t d = 0; d < s.size(); ++d)
      if (d != a) t.push_back(s[d]);
    out.reshape(t);
  }
  return out;
}
}  // namespace

template <class T>
IndexArray argmax(const Array<T>& x, std::ptrdiff_t axis, bool keepdims) {
  return arg_best("argmax", x, axis, keepdims, greater<T>);
}

template <class T>
IndexArray argmin(const Array<T>& x, std::ptrdiff_t axis, bool keepdims) {
  return arg_best("argmin", x, axis, keepdims, less<T>);
}

template <class T>
TopK<T> topk(const Array<T>& x, std::size_t k, std::ptrdiff_t axis, bool largest) {
  const std::size_t a = normalize_axis("topk", axis, x.dimension());
  if (k > x.shape()[a])
    throw ValueError(fmt::format("topk: k = {} is larger than dim {} of {}", k, a, shape_str(x.shape())));
  const AxisLayout r = axis_layout(x.shape(), a);
  Shape s = x.shape();
  s[a] = k;
  TopK<T> out{Array<T>::from_shape(s), IndexArray::from_shape(s)};
  std::vector<std::size_t> order(r.dim);
  for (std::size_t o = 0; o < r.outer; ++o)
    for (std::size_t i = 0; i < r.inner; ++i) {
      const T* p = x.data() + o * r.dim * r.inner + i;
      std::iota(order.begin(), order.end(), std::size_t(0));
      auto before = [&](std::size_t u, std::size_t v) {
        return largest ? greater(p[u * r.inner], p[v * r.inner]) : less(p[u * r.inner], p[v * r.inner]);
      };
      std::stable_sort(order.begin(), order.end(), before);
      for (std::size_t j = 0; j < k; ++j) {
        const std::size_t dst = (o * k + j) * r.inner + i;
        out.values.data()[dst] = p[order[j] * r.inner];
        out.indices.data()[dst] = static_cast<std::int64_t>(order[j]);
      }
    }
  return out;
}

#define XG_INSTANTIATE(T)                                                   \
  template IndexArray argmax(const Array<T>&, std::ptrdiff_t, bool);        \
  template IndexArray argmin(const Array<T>&, std::ptrdiff_t, bool);        \
  template TopK<T> topk(const Array<T>&, std::size_t, std::ptrdiff_t, bool);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
XG_INSTANTIATE(std::int64_t)
#undef XG_INSTANTIATE

}  // namespace xg
