#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/autograd/ops_shape.hpp>

namespace xg {

namespace {
// For each outer row: dst[dst_start : dst_start+len] (+)= src[src_start : src_start+len] along
// the axis, `inner` contiguous elements per step.
template <class T>
void copy_block(const T* src, std::size_t src_dim, std::size_t src_start, T* dst, std::size_t dst_dim,
                std::size_t dst_start, std::size_t len, std::size_t outer, std::size_t inner,
                bool accumulate) {
  const std::size_t n = len * inner;
  for (std::size_t o = 0; o < outer; ++o) {
    const T* s = src + (o * src_dim + src_start) * inner;
    T* d = dst + (o * dst_dim + dst_start) * inner;
    if (accumulate) {
      for (std::size_t j = 0; j < n; ++j) d[j] += s[j];
    } else if (n) {
      std::memcpy(d, s, n * sizeof(T));
    }
  }
}

// s with `v` inserted before position a (svector::insert trips a GCC 12 false warning).
Shape inserted(const Shape& s, std::size_t a, std::size_t v) {
  Shape out(s.size() + 1);
  for (std::size_t i = 0, j = 0; i < out.size(); ++i) out[i] = i == a ? v : s[j++];
  return out;
}

void check_index(std::string_view op, std::int64_t v, std::size_t dim) {
  if (v < 0 || static_cast<std::size_t>(v) >= dim)
    throw ValueError(fmt::format("{}: index {} is out of range for a dim of size {}", op, v, dim));
}

// ---- views --------------------------------------------------------------------------------------

// y = x seen through window w of its row-major layout, with shape s: the output of reshape, slice
// and select.        dx = g in window w, zero elsewhere
// y shares x's storage when x is a recorded result (immutable); it is a copy when x is a leaf,
// whose value an optimizer may update in place. Ops that understand windows read y in place.
template <class T>
Var<T> view_op(const char* op, const Var<T>& x, Shape s, detail::Window w) {
  auto derivative = [w](Backward<T>& bw) {
    const Array<T>& g = bw.grad();
    if (g.size() != w.rows * w.cols)
      throw ShapeError(fmt::format("{} (backward): gradient {} does not fit its window", bw.op(),
                                   shape_str(g.shape())));
    bw.add(0, in_place([&](Array<T>& dx, bool accumulate) {
      if (!accumulate) dx.fill(T(0));
      detail::add_window(dx.data(), w, g.data());
    }));
  };
  if (x.is_leaf()) {
    Array<T> y = Array<T>::from_shape(s);
    detail::Runs<T>{x.value().data() + w.offset, w.rows, w.cols, w.ld}.copy_to(y.data());
    return record(op, std::move(y), {x}, std::move(derivative), saves_none);
  }
  const detail::NodePtr<T>& xn = x.node_ptr();
  detail::NodePtr<T> base = xn;
  detail::Window in_base = w;
  if (xn->is_view()) {
    const detail::Window& xw = xn->window();
    if (xn->reads_base() && !xn->retains_grad() && (xw.rows == 1 || xw.cols == xw.ld)) {
      base = xn->base();  // x is one contiguous run of its base: window into that base directly
      in_base.offset += xw.offset;
    } else {
      (void)xn->value();  // x becomes dense (materialised) and serves as the base
    }
  }
  const Var<T> inputs[] = {x};
  Tape<T>& tape = Tape<T>::current();
  detail::NodePtr<T> node = detail::make_node<T>(std::move(base), std::move(s), in_base);
  if (!tape.wants(op, inputs)) return Var<T>::from_node(std::move(node));
  return tape.append(op, std::move(node), inputs, typename Tape<T>::BackwardFn(std::move(derivative)),
                     saves_none);
}
}  // namespace

// ---- reshape ----------------------------------------------------------------------------------

// y = x with a new shape (a view of x's storage)        dx = reshape(g, x.shape)
template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
  if (shape_size(shape) != x.size())
    throw ShapeError(fmt::format("reshape: cannot view {} ({} elements) as {}", shape_str(x.shape()),
                                 x.size(), shape_str(shape)));
  return view_op("reshape", x, shape, detail::Window{0, 1, x.size(), x.size()});
}

template <class T>
Var<T> reshape(const Var<T>& x, const std::vector<std::ptrdiff_t>& dims) {
  Shape s(dims.size());
  std::size_t known = 1;
  std::ptrdiff_t infer = -1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1 && infer < 0) {
      infer = static_cast<std::ptrdiff_t>(i);
    } else if (dims[i] < 0) {
      throw ShapeError(fmt::format("reshape: invalid dims ({}) for {}", fmt::join(dims, ", "),
                                   shape_str(x.shape())));
    } else {
      s[i] = static_cast<std::size_t>(dims[i]);
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.size() % known != 0)
      throw ShapeError(fmt::format("reshape: cannot view {} as ({})", shape_str(x.shape()),
                                   fmt::join(dims, ", ")));
    s[static_cast<std::size_t>(infer)] = x.size() / known;
  }
  return reshape(x, s);
}

template <class T>
Var<T> reshape(const Var<T>& x, std::initializer_list<std::ptrdiff_t> dims) {
  return reshape(x, std::vector<std::ptrdiff_t>(dims));
}

template <class T>
Var<T> unsqueeze(const Var<T>& x, std::ptrdiff_t axis) {
  const std::size_t a = normalize_axis("unsqueeze", axis, x.dim() + 1);
  return reshape(x, inserted(x.shape(), a, 1));
}

template <class T>
Var<T> squeeze(const Var<T>& x, std::ptrdiff_t axis) {
  const std::size_t a = normalize_axis("squeeze", axis, x.dim());
  if (x.shape(a) != 1)
    throw ShapeError(fmt::format("squeeze: dim {} of {} is not 1", a, shape_str(x.shape())));
  Shape s = x.shape();
  s.erase(s.begin() + static_cast<std::ptrdiff_t>(a));
  return reshape(x, s);
}

// ---- slice / split ----------------------------------------------------------------------------

// y = x[.., start:start+length, ..] (a view of x's storage)      dx[.., start:start+length, ..] += g
template <class T>
Var<T> slice(const Var<T>& x, std::ptrdiff_t axis, std::size_t start, std::size_t length) {
  const std::size_t a = normalize_axis("slice", axis, x.dim());
  if (start + length > x.shape(a))
    throw ShapeError(fmt::format("slice: [{}, {}) is out of range for dim {} of {}", start,
                                 start + length, a, shape_str(x.shape())));
  const AxisLayout r = axis_layout(x.shape(), a);
  Shape s = x.shape();
  s[a] = length;
  return view_op("slice", x, s,
                           detail::Window{start * r.inner, r.outer, length * r.inner, r.dim * r.inner});
}

// y = x[.., index, ..] with the axis dropped (a view)     dx[.., index, ..] += g
template <class T>
Var<T> select(const Var<T>& x, std::ptrdiff_t axis, std::size_t index) {
  const std::size_t a = normalize_axis("select", axis, x.dim());
  if (index >= x.shape(a))
    throw ShapeError(fmt::format("select: index {} is out of range for dim {} of {}", index, a,
                                 shape_str(x.shape())));
  const AxisLayout r = axis_layout(x.shape(), a);
  Shape s;
  for (std::size_t d = 0; d < x.dim(); ++d)
    if (d != a) s.push_back(x.shape(d));
  return view_op("select", x, s,
                           detail::Window{index * r.inner, r.outer, r.inner, r.dim * r.inner});
}

template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis) {
  const std::size_t a = normalize_axis("split", axis, x.dim());
  std::size_t total = 0;
  for (auto s : sizes) total += s;
  if (total != x.shape(a))
    throw ShapeError(fmt::format("split: sizes ({}) add up to {} but dim {} of {} is {}",
                                 fmt::join(sizes, ", "), total, a, shape_str(x.shape()), x.shape(a)));
  std::vector<Var<T>> parts;
  parts.reserve(sizes.size());
  std::size_t start = 0;
  for (auto s : sizes) {
    parts.push_back(slice(x, static_cast<std::ptrdiff_t>(a), start, s));
    start += s;
  }
  return parts;
}

template <class T>
std::vector<Var<T>> chunk(const Var<T>& x, std::size_t n, std::ptrdiff_t axis) {
  const std::size_t a = normalize_axis("chunk", axis, x.dim());
  if (n == 0) throw ValueError("chunk: the number of chunks must be positive");
  const std::size_t dim = x.shape(a);
  const std::size_t step = (dim + n - 1) / n;
  std::vector<std::size_t> sizes;
  for (std::size_t start = 0; start < dim; start += step) sizes.push_back(std::min(step, dim - start));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, static_cast<std::ptrdiff_t>(a));
}

// ---- concat / stack ---------------------------------------------------------------------------

namespace {
// Joins inputs laid out as [outer, dims[i], inner] into [outer, sum(dims), inner].
template <class T>
Var<T> join(const char* op, std::span<const Var<T>> xs, Shape out_shape, std::size_t outer,
            std::size_t inner, PoolVector<std::size_t> dims) {
  std::size_t total = 0;
  for (auto d : dims) total += d;
  Array<T> y = empty<T>(out_shape);
  std::size_t off = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    copy_block(xs[i].value().data(), dims[i], 0, y.data(), total, off, dims[i], outer, inner, false);
    off += dims[i];
  }
  return record<T>(op, std::move(y), xs,
                   [dims = std::move(dims), total, outer, inner](Backward<T>& bw) {
                     std::size_t start = 0;
                     for (std::size_t i = 0; i < dims.size(); ++i) {
                       if (bw.needs(i))
                         bw.add(i, in_place([&](Array<T>& dx, bool accumulate) {
                           copy_block(bw.grad().data(), total, start, dx.data(), dims[i], 0, dims[i],
                                      outer, inner, accumulate);
                         }));
                       start += dims[i];
                     }
                   },
                   saves_none);
}
}  // namespace

// y = [x_0, x_1, ...] along axis          dx_i = the i-th block of g
template <class T>
Var<T> concat(std::span<const Var<T>> xs, std::ptrdiff_t axis) {
  if (xs.empty()) throw ValueError("concat: needs at least one input");
  const Shape& s0 = xs[0].shape();
  const std::size_t a = normalize_axis("concat", axis, s0.size());
  PoolVector<std::size_t> dims;
  Shape out = s0;
  out[a] = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool ok = s.size() == s0.size();
    for (std::size_t d = 0; ok && d < s.size(); ++d) ok = d == a || s[d] == s0[d];
    if (!ok)
      throw ShapeError(fmt::format("concat: input {} has shape {} but input 0 has {} (only dim {} may "
                                   "differ)",
                                   i, shape_str(s), shape_str(s0), a));
    dims.push_back(s[a]);
    out[a] += s[a];
  }
  const AxisLayout r = axis_layout(s0, a);
  return join<T>("concat", xs, out, r.outer, r.inner, std::move(dims));
}

// y = [x_0, x_1, ...] along a new axis
template <class T>
Var<T> stack(std::span<const Var<T>> xs, std::ptrdiff_t axis) {
  if (xs.empty()) throw ValueError("stack: needs at least one input");
  const Shape& s0 = xs[0].shape();
  const std::size_t a = normalize_axis("stack", axis, s0.size() + 1);
  for (std::size_t i = 1; i < xs.size(); ++i)
    if (xs[i].shape() != s0)
      throw ShapeError(fmt::format("stack: input {} has shape {} but input 0 has {}", i,
                                   shape_str(xs[i].shape()), shape_str(s0)));
  Shape out = inserted(s0, a, xs.size());
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < s0.size(); ++d) (d < a ? outer : inner) *= s0[d];
  return join<T>("stack", xs, out, outer, inner, PoolVector<std::size_t>(xs.size(), 1));
}

// ---- indexing ---------------------------------------------------------------------------------

// y[.., k, ..] = x[.., index[k], ..]      dx[.., index[k], ..] += g[.., k, ..]
template <class T>
Var<T> index_select(const Var<T>& x, std::ptrdiff_t axis, const IndexArray& index) {
  const std::size_t a = normalize_axis("index_select", axis, x.dim());
  if (index.dimension() != 1)
    throw ShapeError(fmt::format("index_select: index must be 1-D, got {}", shape_str(index.shape())));
  const AxisLayout r = axis_layout(x.shape(), a);
  for (auto v : index) check_index("index_select", v, r.dim);
  Shape s = x.shape();
  s[a] = index.size();
  Array<T> y = empty<T>(s);
  const std::size_t n = index.size();
  for (std::size_t o = 0; o < r.outer; ++o)
    for (std::size_t k = 0; k < n; ++k)
      copy_block(x.value().data() + o * r.dim * r.inner, r.dim, static_cast<std::size_t>(index(k)),
                 y.data() + o * n * r.inner, n, k, 1, 1, r.inner, false);
  return record("index_select", std::move(y), {x}, [index, r](Backward<T>& bw) {
    bw.add(0, in_place([&](Array<T>& dx, bool accumulate) {
      if (!accumulate) dx.fill(T(0));
      const std::size_t n = index.size();
      for (std::size_t o = 0; o < r.outer; ++o)
        for (std::size_t k = 0; k < n; ++k)
          copy_block(bw.grad().data() + o * n * r.inner, n, k, dx.data() + o * r.dim * r.inner, r.dim,
                     static_cast<std::size_t>(index(k)), 1, 1, r.inner, true);
    }));
  }, saves_none);
}

template <class T>
Var<T> embedding(const Var<T>& weight, const IndexArray& ids) {
  if (weight.dim() != 2)
    throw ShapeError(fmt::format("embedding: weight must be [num_embeddings, dim], got {}",
                                 shape_str(weight.shape())));
  IndexArray flat = ids;
  flat.reshape({ids.size()});
  for (auto v : flat) check_index("embedding", v, weight.shape(0));
  Var<T> rows = index_select(weight, 0, flat);
  Shape s = ids.shape();
  s.push_back(weight.shape(1));
  return reshape(rows, s);
}

// y[p] = w[ids[p]]      dw[ids[p]] += g[p] except where ids[p] == padding_idx
template <class T>
Var<T> embedding(const Var<T>& weight, const IndexArray& ids, std::int64_t padding_idx) {
  if (weight.dim() != 2)
    throw ShapeError(fmt::format("embedding: weight must be [num_embeddings, dim], got {}",
                                 shape_str(weight.shape())));
  const std::size_t V = weight.shape(0), D = weight.shape(1);
  const auto v = static_cast<std::int64_t>(V);
  if (padding_idx < -v || padding_idx >= v)
    throw ValueError(fmt::format("embedding: padding_idx {} is out of range for {} embeddings",
                                 padding_idx, V));
  const std::int64_t pad = padding_idx < 0 ? padding_idx + v : padding_idx;
  for (auto id : ids) check_index("embedding", id, V);
  Shape s = ids.shape();
  s.push_back(D);
  Array<T> y = empty<T>(s);
  const T* w = weight.value().data();
  for (std::size_t k = 0; k < ids.size(); ++k)
    std::copy_n(w + static_cast<std::size_t>(ids.data()[k]) * D, D, y.data() + k * D);
  return record("embedding", std::move(y), {weight}, [ids, pad, D](Backward<T>& bw) {
    bw.add(0, in_place([&](Array<T>& dw, bool accumulate) {
      if (!accumulate) dw.fill(T(0));
      const T* g = bw.grad().data();
      for (std::size_t k = 0; k < ids.size(); ++k) {
        if (ids.data()[k] == pad) continue;
        T* row = dw.data() + static_cast<std::size_t>(ids.data()[k]) * D;
        for (std::size_t j = 0; j < D; ++j) row[j] += g[k * D + j];
      }
    }));
  }, saves_none);
}

// y[p] = x[p with coordinate `axis` replaced by index[p]]
template <class T>
Var<T> gather(const Var<T>& x, std::ptrdiff_t axis, const IndexArray& index) {
  const std::size_t a = normalize_axis("gather", axis, x.dim());
  const Shape& xs = x.shape();
  const Shape& is = index.shape();
  bool ok = is.size() == xs.size();
  for (std::size_t d = 0; ok && d < xs.size(); ++d) ok = d == a || is[d] <= xs[d];
  if (!ok)
    throw ShapeError(fmt::format("gather: index {} does not fit input {} along axis {}", shape_str(is),
                                 shape_str(xs), a));
  for (auto v : index) check_index("gather", v, xs[a]);
  // Offsets into x of every output element.
  std::vector<std::size_t> offsets(index.size());
  std::vector<std::size_t> xstride(xs.size(), 1), coord(xs.size(), 0);
  for (std::size_t d = xs.size(); d-- > 1;) xstride[d - 1] = xstride[d] * xs[d];
  for (std::size_t p = 0; p < index.size(); ++p) {
    std::size_t off = 0;
    for (std::size_t d = 0; d < xs.size(); ++d)
      off += (d == a ? static_cast<std::size_t>(index.data()[p]) : coord[d]) * xstride[d];
    offsets[p] = off;
    for (std::size_t d = xs.size(); d-- > 0;) {  // next coordinate in the index's shape
      if (++coord[d] < is[d]) break;
      coord[d] = 0;
    }
  }
  Array<T> y = empty<T>(is);
  for (std::size_t p = 0; p < offsets.size(); ++p) y.data()[p] = x.value().data()[offsets[p]];
  return record("gather", std::move(y), {x}, [offsets = std::move(offsets)](Backward<T>& bw) {
    bw.add(0, in_place([&](Array<T>& dx, bool accumulate) {
      if (!accumulate) dx.fill(T(0));
      const T* g = bw.grad().data();
      for (std::size_t p = 0; p < offsets.size(); ++p) dx.data()[offsets[p]] += g[p];
    }));
  }, saves_none);
}

namespace {
// Calls f(inner_offset, outer_offset) for each last-dim row of `inner` placed at `before` inside
// `outer` (both row-major).
template <class F>
void for_each_row(const Shape& inner, const Shape& outer, const std::vector<std::size_t>& before, F&& f) {
  const std::size_t rank = inner.size();
  if (rank == 0) {
    f(0, 0);
    return;
  }
  if (shape_size(inner) == 0) return;
  std::vector<std::size_t> ostride(rank, 1);
  for (std::size_t d = rank - 1; d-- > 0;) ostride[d] = ostride[d + 1] * outer[d + 1];
  std::vector<std::size_t> coord(rank, 0);
  const std::size_t rows = shape_size(inner) / inner[rank - 1];
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t off = before[rank - 1];
    for (std::size_t d = 0; d + 1 < rank; ++d) off += (coord[d] + before[d]) * ostride[d];
    f(r * inner[rank - 1], off);
    for (std::size_t d = rank - 1; d-- > 0;) {
      if (++coord[d] < inner[d]) break;
      coord[d] = 0;
    }
  }
}
}  // namespace

// y = x surrounded by `value`             dx = the interior block of g
template <class T>
Var<T> pad(const Var<T>& x, const std::vector<std::pair<std::size_t, std::size_t>>& widths, T value) {
  if (widths.size() != x.dim())
    throw ShapeError(fmt::format("pad: {} (before, after) pairs given for {} of rank {}", widths.size(),
                                 shape_str(x.shape()), x.dim()));
  Shape s = x.shape();
  std::vector<std::size_t> before;
  for (std::size_t d = 0; d < s.size(); ++d) {
    before.push_back(widths[d].first);
    s[d] += widths[d].first + widths[d].second;
  }
  Array<T> y = full<T>(s, value);
  const std::size_t row = x.dim() ? x.shape(x.dim() - 1) : 1;
  const T* src = x.value().data();
  for_each_row(x.shape(), s, before, [&](std::size_t i, std::size_t o) {
    std::copy(src + i, src + i + row, y.data() + o);
  });
  return record("pad", std::move(y), {x}, [before, row](Backward<T>& bw) {
    Array<T> dx = empty<T>(bw.in(0).shape());
    const T* g = bw.grad().data();
    for_each_row(dx.shape(), bw.grad().shape(), before, [&](std::size_t i, std::size_t o) {
      std::copy(g + o, g + o + row, dx.data() + i);
    });
    bw.add(0, std::move(dx));
  });
}

#define XG_INSTANTIATE(T)                                                                        \
  template Var<T> reshape(const Var<T>&, std::initializer_list<std::ptrdiff_t>);                  \
  template Var<T> reshape(const Var<T>&, const std::vector<std::ptrdiff_t>&);                     \
  template Var<T> reshape(const Var<T>&, const Shape&);                                           \
  template Var<T> unsqueeze(const Var<T>&, std::ptrdiff_t);                                       \
  template Var<T> squeeze(const Var<T>&, std::ptrdiff_t);                                         \
  template Var<T> slice(const Var<T>&, std::ptrdiff_t, std::size_t, std::size_t);                \
  template Var<T> select(const Var<T>&, std::ptrdiff_t, std::size_t);                             \
  template std::vector<Var<T>> split(const Var<T>&, const std::vector<std::size_t>&, std::ptrdiff_t); \
  template std::vector<Var<T>> chunk(const Var<T>&, std::size_t, std::ptrdiff_t);                 \
  template Var<T> concat(std::span<const Var<T>>, std::ptrdiff_t);                                 \
  template Var<T> stack(std::span<const Var<T>>, std::ptrdiff_t);                                  \
  template Var<T> index_select(const Var<T>&, std::ptrdiff_t, const IndexArray&);                 \
  template Var<T> embedding(const Var<T>&, const IndexArray&);                                    \
  template Var<T> embedding(const Var<T>&, const IndexArray&, std::int64_t);                      \
  template Var<T> gather(const Var<T>&, std::ptrdiff_t, const IndexArray&);                       \
  template Var<T> pad(const Var<T>&, const std::vector<std::pair<std::size_t, std::size_t>>&, T);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg
