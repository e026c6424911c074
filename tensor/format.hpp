// Printing arrays: `fmt::print("{}\n", a)` and `std::cout << a`, laid out like NumPy and PyTorch.
//
//     [[ 0.5000, -1.2500],
//      [ 3.0000,  4.0000]]
//
// Floating-point values get 4 decimals, or scientific notation when the shown values span more
// than three orders of magnitude (or lie outside [1e-4, 1e8)); whole numbers print as `3.`.
// Arrays with more than 1000 elements show the first and last 3 entries of every long dim
// around a `...`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/tensor/tensor.hpp>

namespace xg {

/// How arrays print (NumPy's names): more than `threshold` elements are summarised to
/// `edgeitems` entries at each end of every dim; `precision` decimals.
struct PrintOptions {
  std::size_t threshold = 1000;
  std::size_t edgeitems = 3;
  int precision = 4;
};

/// "float32", "float64", "int64".
template <class T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, double>) return "float64";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "int64";
  else return "unknown";
}

/// The array as text. Lines after the first are indented by `indent` more spaces, so the text
/// can follow a prefix such as "Var(".
template <class T>
std::string to_string(const Array<T>& a, std::size_t indent = 0, const PrintOptions& o = {});

}  // namespace xg

// An Array is an iterable range, which fmt/ranges.h would print as one flat list; the formatter
// below prints it with its shape instead.
namespace fmt {
template <class T, class Char>
struct is_range<xg::Array<T>, Char> : std::false_type {};

/// `fmt::print("{}", array)`: xg::to_string(array).
template <class T>
struct formatter<xg::Array<T>> : formatter<std::string_view> {
  template <class Ctx>
  auto format(const xg::Array<T>& a, Ctx& ctx) const {
    const std::string s = xg::to_string(a);
    return formatter<std::string_view>::format(s, ctx);
  }
};
}  // namespace fmt

// In xtensor's namespace so that argument-dependent lookup finds it. It is more specialised than
// xtensor's own operator<< (xio.hpp), which it replaces for xgrad's arrays.
namespace xt {
template <class T>
std::ostream& operator<<(std::ostream& os, const xg::Array<T>& a) {
  return os << xg::to_string(a);
}
}  // namespace xt
