#include <algorithm>
#include <cmath>
#include <vector>

#include <xgrad/tensor/format.hpp>

namespace xg {

namespace {

constexpr std::size_t kSkip = static_cast<std::size_t>(-1);

// The indices shown along a dim of size n: all of them, or the edges around kSkip.
std::vector<std::size_t> shown(std::size_t n, bool summarize, std::size_t edge) {
  std::vector<std::size_t> idx;
  if (summarize && n > 2 * edge) {
    for (std::size_t i = 0; i < edge; ++i) idx.push_back(i);
    idx.push_back(kSkip);
    for (std::size_t i = n - edge; i < n; ++i) idx.push_back(i);
  } else {
    for (std::size_t i = 0; i < n; ++i) idx.push_back(i);
  }
  return idx;
}

// Visits the flat offsets of the shown elements.
template <class F>
void each_shown(const Shape& s, std::size_t dim, std::size_t offset, bool summarize, std::size_t edge,
                F&& f) {
  if (dim == s.size()) {
    f(offset);
    return;
  }
  std::size_t stride = 1;
  for (std::size_t d = dim + 1; d < s.size(); ++d) stride *= s[d];
  for (std::size_t i : shown(s[dim], summarize, edge))
    if (i != kSkip) each_shown(s, dim + 1, offset + i * stride, summarize, edge, f);
}

// How one element becomes text: chosen once per array from the shown values, as PyTorch does.
template <class T>
struct ElementFormat {
  enum { Int, Whole, Fixed, Sci } mode = Int;
  int precision = 4;
  std::string operator()(T v) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      switch (mode) {
        case Whole: return fmt::format("{:.0f}.", v);
        case Sci: return fmt::format("{:.{}e}", v, precision);
        default: return fmt::format("{:.{}f}", v, precision);
      }
    } else {
      return fmt::format("{}", v);
    }
  }
};

template <class T>
ElementFormat<T> choose_format(const Array<T>& a, bool summarize, const PrintOptions& o) {
  ElementFormat<T> f;
  f.precision = o.precision;
  if constexpr (std::is_floating_point_v<T>) {
    bool whole = true;
    double lo = INFINITY, hi = 0;
    each_shown(a.shape(), 0, 0, summarize, o.edgeitems, [&](std::size_t i) {
      const double v = std::abs(static_cast<double>(a.data()[i]));
      if (!std::isfinite(v)) return;
      whole = whole && v == std::floor(v);
      if (v != 0) lo = std::min(lo, v);
      hi = std::max(hi, v);
    });
    const bool sci = hi >= 1e8 || (lo != INFINITY && (lo < 1e-4 || hi / lo > 1000));
    f.mode = whole ? (hi >= 1e8 ? ElementFormat<T>::Sci : ElementFormat<T>::Whole)
                   : (sci ? ElementFormat<T>::Sci : ElementFormat<T>::Fixed);
  }
  return f;
}

template <class T>
void put(std::string& out, const Array<T>& a, std::size_t dim, std::size_t offset, bool summarize,
         std::size_t indent, const PrintOptions& o, const ElementFormat<T>& f, std::size_t width) {
  const Shape& s = a.shape();
  std::size_t stride = 1;
  for (std::size_t d = dim + 1; d < s.size(); ++d) stride *= s[d];
  const bool last = dim + 1 == s.size();
  out += '[';
  bool first = true;
  for (std::size_t i : shown(s[dim], summarize, o.edgeitems)) {
    if (!first) {
      out += ',';
      if (last) {
        out += ' ';
      } else {
        out.append(s.size() - dim - 1, '\n');
        out.append(indent + dim + 1, ' ');
      }
    }
    first = false;
    if (i == kSkip) {
      out += "...";
    } else if (last) {
      const std::string e = f(a.data()[offset + i]);
      out.append(width - std::min(width, e.size()), ' ');
      out += e;
    } else {
      put(out, a, dim + 1, offset + i * stride, summarize, indent, o, f, width);
    }
  }
  out += ']';
}

}  // namespace

template <class T>
std::string to_string(const Array<T>& a, std::size_t indent, const PrintOptions& o) {
  const bool summarize = a.size() > o.threshold;
  const ElementFormat<T> f = choose_format(a, summarize, o);
  if (a.dimension() == 0) return f(a());
  std::size_t width = 0;
  each_shown(a.shape(), 0, 0, summarize, o.edgeitems,
             [&](std::size_t i) { width = std::max(width, f(a.data()[i]).size()); });
  std::string out;
  put(out, a, 0, 0, summarize, indent, o, f, width);
  return out;
}

template std::string to_string(const Array<float>&, std::size_t, const PrintOptions&);
template std::string to_string(const Array<double>&, std::size_t, const PrintOptions&);
template std::string to_string(const Array<std::int64_t>&, std::size_t, const PrintOptions&);

}  // namespace xg
