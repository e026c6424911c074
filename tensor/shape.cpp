#include <cmath>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/tensor/tensor.hpp>

namespace xg {

std::string shape_str(const Shape& s) {
  if (s.size() == 1) return fmt::format("({},)", s[0]);
  return fmt::format("({})", fmt::join(s, ", "));
}

std::size_t shape_size(const Shape& s) {
  std::size_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::size_t normalize_axis(std::string_view op, std::ptrdiff_t axis, std::size_t rank) {
  const auto r = static_cast<std::ptrdiff_t>(rank);
  if (axis < -r || axis >= r)
    throw ShapeError(fmt::format("{}: axis {} is out of range for a tensor of rank {}", op, axis, rank));
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

AxisLayout axis_layout(const Shape& s, std::size_t axis) {
  AxisLayout a;
  for (std::size_t i = 0; i < axis && i < s.size(); ++i) a.outer *= s[i];
  a.dim = axis < s.size() ? s[axis] : 1;
  for (std::size_t i = axis + 1; i < s.size(); ++i) a.inner *= s[i];
  return a;
}

Shape broadcast_shapes(std::string_view op, const Shape& a, const Shape& b) {
  if (a == b) return a;
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::size_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError(fmt::format("{}: shapes {} and {} cannot be broadcast (dim {}: {} vs {})", op,
                                   shape_str(a), shape_str(b), i, da, db));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void check_same_shape(std::string_view op, std::string_view what, const Shape& got,
                      const Shape& expected) {
  if (got != expected)
    throw ShapeError(fmt::format("{}: {} has shape {} but {} was expected", op, what, shape_str(got),
                                 shape_str(expected)));
}

template <class T>
Array<T> sum_to(const Array<T>& g, const Shape& shape) {
  const Shape& gs = g.shape();
  if (gs == shape) return g;
  if (shape.size() > gs.size())
    throw ShapeError(fmt::format("sum_to: cannot reduce {} to the larger rank shape {}", shape_str(gs),
                                 shape_str(shape)));
  const std::size_t lead = gs.size() - shape.size();
  // Fast path: only leading dims were broadcast (a bias [N] added to [B, N]): sum rows.
  bool suffix = true;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] != gs[lead + i]) {
      if (shape[i] != 1)
        throw ShapeError(fmt::format("sum_to: {} is not a broadcast of {}", shape_str(gs), shape_str(shape)));
      suffix = false;
    }
  }
  Array<T> out = zeros<T>(shape);
  if (suffix) {
    const std::size_t cols = out.size();
    const std::size_t rows = cols == 0 ? 0 : g.size() / cols;
    T* o = out.data();
    const T* p = g.data();
    for (std::size_t r = 0; r < rows; ++r, p += cols)
      for (std::size_t j = 0; j < cols; ++j) o[j] += p[j];
    return out;
  }
  std::vector<std::size_t> axes;
  for (std::size_t i = 0; i < gs.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && gs[i] != 1)) axes.push_back(i);
  Array<T> summed = sum_axes(g, axes);
  summed.reshape(shape);
  return summed;
}

template <class T>
Array<T> sum_axes(const Array<T>& a, const std::vector<std::size_t>& axes) {
  const Shape& s = a.shape();
  const std::size_t rank = s.size();
  Shape kept = s;
  for (auto ax : axes) kept[ax] = 1;
  Array<T> out = zeros<T>(kept);
  if (a.size() == 0) return out;
  if (rank == 0) {
    out() = a();
    return out;
  }
  // Row-major strides of `out`, with 0 on reduced axes: every input element adds into
  // out[sum_d coord_d * ostride_d].
  std::vector<std::size_t> ostride(rank, 0);
  std::size_t st = 1;
  for (std::size_t d = rank; d-- > 0;) {
    ostride[d] = kept[d] == 1 && s[d] != 1 ? 0 : st;
    st *= kept[d];
  }
  const std::size_t last = s[rank - 1], ls = ostride[rank - 1];
  std::vector<std::size_t> coord(rank, 0);
  const T* p = a.data();
  T* o = out.data();
  for (std::size_t done = 0, n = a.size(); done < n; done += last, p += last) {
    std::size_t base = 0;
    for (std::size_t d = 0; d + 1 < rank; ++d) base += coord[d] * ostride[d];
    if (ls == 0) {
      T acc = 0;
      for (std::size_t j = 0; j < last; ++j) acc += p[j];
      o[base] += acc;
    } else {
      for (std::size_t j = 0; j < last; ++j) o[base + j] += p[j];
    }
    for (std::size_t d = rank - 1; d-- > 0;) {
      if (++coord[d] < s[d]) break;
      coord[d] = 0;
    }
  }
  return out;
}

template <class T>
bool all_finite(const Array<T>& a) {
  const T* p = a.data();
  for (std::size_t i = 0, n = a.size(); i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

template Array<float> sum_to(const Array<float>&, const Shape&);
template Array<double> sum_to(const Array<double>&, const Shape&);
template bool all_finite(const Array<float>&);
template Array<float> sum_axes(const Array<float>&, const std::vector<std::size_t>&);
template Array<double> sum_axes(const Array<double>&, const std::vector<std::size_t>&);
template bool all_finite(const Array<double>&);

}  // namespace xg
