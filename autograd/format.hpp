// Printing Vars: `fmt::print("{}\n", v)` and `std::cout << v`.
//
//     Var([[1.0000, 2.0000],
//          [3.0000, 4.0000]], shape=(2, 2), dtype=float32, requires_grad=true, op=matmul)
//
// The values print as arrays do (tensor/format.hpp); `op` appears for recorded results. An
// intermediate whose value was already freed prints `<freed>` in place of the values.
#pragma once

#include <ostream>
#include <string>

#include <xgrad/autograd/var.hpp>
#include <xgrad/tensor/format.hpp>

namespace xg {

/// The Var as text (see above).
template <class T>
std::string to_string(const Var<T>& v, const PrintOptions& o = {}) {
  if (!v.defined()) return "Var(undefined)";
  const auto& n = *v.node_ptr();
  std::string s = "Var(";
  s += n.released() ? std::string("<freed>") : to_string(v.value(), 4, o);
  s += fmt::format(", shape={}, dtype={}, requires_grad={}", shape_str(v.shape()), dtype_name<T>(),
                   v.requires_grad());
  if (!v.is_leaf()) s += fmt::format(", op={}", v.op());
  s += ')';
  return s;
}

template <class T>
std::ostream& operator<<(std::ostream& os, const Var<T>& v) {
  return os << to_string(v);
}

}  // namespace xg

namespace fmt {
/// `fmt::print("{}", var)`: xg::to_string(var).
template <class T>
struct formatter<xg::Var<T>> : formatter<std::string_view> {
  template <class Ctx>
  auto format(const xg::Var<T>& v, Ctx& ctx) const {
    const std::string s = xg::to_string(v);
    return formatter<std::string_view>::format(s, ctx);
  }
};
}  // namespace fmt
