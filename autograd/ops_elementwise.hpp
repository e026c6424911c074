// Elementwise ops with NumPy broadcasting. Gradients of broadcast inputs are summed back to the
// input's shape (sum_to). Every op here is defined for Var<float> and Var<double>.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include <xgrad/autograd/var.hpp>

namespace xg {

template <class T>
using Scalar = std::type_identity_t<T>;  // scalars never drive template deduction

// ---- Binary (broadcasting) -------------------------------------------------------------------
/// a + b                      da = g, db = g (each summed to its shape)
template <class T> Var<T> add(const Var<T>& a, const Var<T>& b);
/// a - b                      da = g, db = -g
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b);
/// a * b                      da = g b, db = g a
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);
/// a / b                      da = g / b, db = -g a / b^2
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);
/// a ^ b                      da = g b a^(b-1), db = g a^b log(a)
template <class T> Var<T> pow(const Var<T>& a, const Var<T>& b);
/// max(a, b) elementwise      the gradient goes to the larger input (split in half on ties)
template <class T> Var<T> maximum(const Var<T>& a, const Var<T>& b);
/// min(a, b) elementwise      the gradient goes to the smaller input (split in half on ties)
template <class T> Var<T> minimum(const Var<T>& a, const Var<T>& b);
/// mask ? a : b (all three broadcast); call it as xg::where (xt::where also matches by ADL).
///   da = g where mask, db = g elsewhere
template <class T> Var<T> where(const Array<bool>& mask, const Var<T>& a, const Var<T>& b);

// ---- With a scalar ---------------------------------------------------------------------------
/// a + s
template <class T> Var<T> add(const Var<T>& a, Scalar<T> s);
/// a * s
template <class T> Var<T> mul(const Var<T>& a, Scalar<T> s);
/// s - a
template <class T> Var<T> rsub(const Var<T>& a, Scalar<T> s);
/// s / a                      da = -g s / a^2
template <class T> Var<T> rdiv(const Var<T>& a, Scalar<T> s);
/// a ^ p                      da = g p a^(p-1)
template <class T> Var<T> pow(const Var<T>& a, Scalar<T> p);
/// clamp(x, lo, hi)           dx = g where lo <= x <= hi
template <class T> Var<T> clamp(const Var<T>& x, Scalar<T> lo, Scalar<T> hi);
/// x > 0 ? x : slope x
template <class T> Var<T> leaky_relu(const Var<T>& x, Scalar<T> slope = Scalar<T>(0.01));

// ---- Unary: one table (ops_elementwise.cpp); each row is an op, its derivative and a domain --
/// -x
template <class T> Var<T> neg(const Var<T>& x);
/// e^x                        dx = g y
template <class T> Var<T> exp(const Var<T>& x);
/// ln x                       dx = g / x
template <class T> Var<T> log(const Var<T>& x);
/// sqrt x                     dx = g / (2 y)
template <class T> Var<T> sqrt(const Var<T>& x);
/// |x|                        dx = g sign(x)
template <class T> Var<T> abs(const Var<T>& x);
/// tanh x                     dx = g (1 - y^2)
template <class T> Var<T> tanh(const Var<T>& x);
/// 1 / (1 + e^-x)             dx = g y (1 - y)
template <class T> Var<T> sigmoid(const Var<T>& x);
/// max(x, 0)                  dx = g [x > 0]
template <class T> Var<T> relu(const Var<T>& x);
/// ln(1 + e^x), computed stably     dx = g sigmoid(x)
template <class T> Var<T> softplus(const Var<T>& x);
/// x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (the tanh approximation)
template <class T> Var<T> gelu(const Var<T>& x);
/// x^2                        dx = 2 g x
template <class T> Var<T> square(const Var<T>& x);

/// One row of the unary table, for tests and docs: the op, and the open interval of inputs on
/// which it is smooth enough for a finite-difference check.
template <class T>
struct UnaryOpInfo {
  std::string name;
  Var<T> (*fn)(const Var<T>&);
  double lo, hi;
  double (*reference)(double);  // the forward in plain double math
};
template <class T>
const std::vector<UnaryOpInfo<T>>& unary_ops();

// ---- Operators ------------------------------------------------------------------------------
template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b) { return add(a, b); }
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b) { return sub(a, b); }
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b) { return mul(a, b); }
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b) { return div(a, b); }
template <class T> Var<T> operator-(const Var<T>& a) { return neg(a); }
template <class T> Var<T> operator+(const Var<T>& a, Scalar<T> s) { return add(a, s); }
template <class T> Var<T> operator+(Scalar<T> s, const Var<T>& a) { return add(a, s); }
template <class T> Var<T> operator-(const Var<T>& a, Scalar<T> s) { return add(a, -s); }
template <class T> Var<T> operator-(Scalar<T> s, const Var<T>& a) { return rsub(a, s); }
template <class T> Var<T> operator*(const Var<T>& a, Scalar<T> s) { return mul(a, s); }
template <class T> Var<T> operator*(Scalar<T> s, const Var<T>& a) { return mul(a, s); }
template <class T> Var<T> operator/(const Var<T>& a, Scalar<T> s) { return mul(a, Scalar<T>(1) / s); }
template <class T> Var<T> operator/(Scalar<T> s, const Var<T>& a) { return rdiv(a, s); }

}  // namespace xg
