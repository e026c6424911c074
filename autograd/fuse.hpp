// Fused elementwise expressions: a chain of elementwise ops as one vectorised pass and one tape
// record, whose derivative comes from the expression itself.
//
//     // c' = f c + i g, with the gate activations inside: one record instead of six
//     Var<T> c_next = fuse("lstm_c", [](auto zf, auto c, auto zi, auto zg) {
//       return sigmoid(zf) * c + sigmoid(zi) * tanh(zg);
//     }, zf, c, zi, zg);
//
// The lambda is ordinary arithmetic. It is generic (`auto` parameters), and fuse calls it with
// two kinds of numbers, both plain values (nothing can dangle: `auto t = a * b;` is a copy):
//   - forward: `fx::Num`, a SIMD batch of values, so the whole chain runs in one pass over the
//     elements with no intermediate arrays;
//   - backward: `fx::Dual`, a batch of values with its partial derivatives with respect to the
//     operands it depends on (forward-mode dual numbers; the set of operands is part of the type,
//     so no zero partial is ever computed). Each operand's gradient is the upstream gradient
//     times its partial, added straight into its gradient buffer through Backward::add.
// Each function below keeps its value and its derivative side by side, like the ops do. The
// backward recomputes the chain from the operands (it saves no intermediate), as fused RNN
// kernels do; the record keeps the operands alive, not the output.
//
// What the lambda may use: + - * / between operands and with numbers, unary -, and sigmoid,
// tanh, exp, log, sqrt, relu, abs, square, pow(x, number). Anything else is a compile error.
// Operands: Vars of one element type, each of the output's shape, of its trailing dims (a bias
// [H] beside [B, H]), or of one element. Views (gate slices) are read in place.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <xsimd/xsimd.hpp>

#include <xgrad/autograd/var.hpp>

namespace xg {

namespace fx {

/// The forward's number: a batch of values.
template <class S>
struct Num {
  S v;
};

/// The backward's number: a batch of values and its partials with respect to the operands it
/// depends on, bit k of M for operand k. The mask is part of the type, so each intermediate
/// carries (and each op computes) only the partials that can be nonzero: sigmoid(zf) one,
/// f * c two, as a hand-written derivative would.
template <class S, std::uint64_t M>
struct Dual {
  static constexpr std::uint64_t mask = M;
  S v;
  std::array<S, std::popcount(M)> d;  // partials for the set bits of M, lowest bit first
};

template <class X>
struct is_fx : std::false_type {};
template <class S>
struct is_fx<Num<S>> : std::true_type {};
template <class S, std::uint64_t M>
struct is_fx<Dual<S, M>> : std::true_type {};
template <class X>
concept Number = is_fx<X>::value;
template <class A>
concept Scalar = std::is_arithmetic_v<A>;

namespace detail {
template <class S>
struct element;
template <class T, class A>
struct element<xsimd::batch<T, A>> {
  using type = T;
};
template <class X>
struct batch_of;
template <class S>
struct batch_of<Num<S>> {
  using type = S;
};
template <class S, std::uint64_t M>
struct batch_of<Dual<S, M>> {
  using type = S;
};
template <class X>
using batch_t = typename batch_of<X>::type;

template <class S, class A>
S splat(A a) {
  return S(static_cast<typename element<S>::type>(a));
}

/// Where operand k's partial sits in a Dual with mask M.
template <std::uint64_t M>
constexpr std::size_t slot(std::size_t k) {
  return static_cast<std::size_t>(std::popcount(M & ((std::uint64_t{1} << k) - 1)));
}
/// Calls f.template operator()<k>() for every set bit k of M, at compile time.
template <std::uint64_t M, class F, std::size_t... I>
void for_each_bit(F&& f, std::index_sequence<I...>) {
  (
      [&] {
        if constexpr (((M >> I) & 1) != 0) f.template operator()<I>();
      }(),
      ...);
}
template <std::uint64_t M, class F>
void for_each_bit(F&& f) {
  for_each_bit<M>(f, std::make_index_sequence<std::bit_width(M)>{});
}

/// r = a op b for duals: r.v = v and, for each operand, r's partial = a's partial * da + b's
/// partial * db (a partial a or b lacks is zero and is not computed).
template <class S, std::uint64_t Ma, std::uint64_t Mb, class Da, class Db>
Dual<S, Ma | Mb> combine(const Dual<S, Ma>& a, const Dual<S, Mb>& b, const S& v, Da da, Db db) {
  Dual<S, Ma | Mb> r;
  r.v = v;
  for_each_bit<Ma | Mb>([&]<std::size_t k>() {
    constexpr std::size_t i = slot<Ma | Mb>(k);
    if constexpr (((Ma >> k) & 1) && ((Mb >> k) & 1))
      r.d[i] = da(a.d[slot<Ma>(k)]) + db(b.d[slot<Mb>(k)]);
    else if constexpr ((Ma >> k) & 1)
      r.d[i] = da(a.d[slot<Ma>(k)]);
    else
      r.d[i] = db(b.d[slot<Mb>(k)]);
  });
  return r;
}

// y = F(x) with dy/dx = D(x, y): one definition serves both number kinds.
template <class F, class D, class S>
Num<S> unary(const Num<S>& x, F f, D) {
  return {f(x.v)};
}
template <class F, class D, class S, std::uint64_t M>
Dual<S, M> unary(const Dual<S, M>& x, F f, D df) {
  Dual<S, M> r;
  r.v = f(x.v);
  const S dy = df(x.v, r.v);
  for (std::size_t k = 0; k < r.d.size(); ++k) r.d[k] = x.d[k] * dy;
  return r;
}
/// A number as a constant of the same kind as `like` (no partials).
template <class S>
Num<S> constant(const Num<S>&, const S& c) {
  return {c};
}
template <class S, std::uint64_t M>
Dual<S, 0> constant(const Dual<S, M>&, const S& c) {
  return {c, {}};
}
}  // namespace detail

// ---- Arithmetic: value and partials side by side ---------------------------------------------

// a + b      da = 1, db = 1
template <class S>
Num<S> operator+(const Num<S>& a, const Num<S>& b) {
  return {a.v + b.v};
}
template <class S, std::uint64_t Ma, std::uint64_t Mb>
Dual<S, Ma | Mb> operator+(const Dual<S, Ma>& a, const Dual<S, Mb>& b) {
  return detail::combine(a, b, S(a.v + b.v), [](const S& d) { return d; }, [](const S& d) { return d; });
}
// a - b      da = 1, db = -1
template <class S>
Num<S> operator-(const Num<S>& a, const Num<S>& b) {
  return {a.v - b.v};
}
template <class S, std::uint64_t Ma, std::uint64_t Mb>
Dual<S, Ma | Mb> operator-(const Dual<S, Ma>& a, const Dual<S, Mb>& b) {
  return detail::combine(a, b, S(a.v - b.v), [](const S& d) { return d; }, [](const S& d) { return -d; });
}
// a b        da = b, db = a
template <class S>
Num<S> operator*(const Num<S>& a, const Num<S>& b) {
  return {a.v * b.v};
}
template <class S, std::uint64_t Ma, std::uint64_t Mb>
Dual<S, Ma | Mb> operator*(const Dual<S, Ma>& a, const Dual<S, Mb>& b) {
  return detail::combine(a, b, S(a.v * b.v), [&](const S& d) { return d * b.v; },
                         [&](const S& d) { return d * a.v; });
}
// a / b      da = 1 / b, db = -y / b
template <class S>
Num<S> operator/(const Num<S>& a, const Num<S>& b) {
  return {a.v / b.v};
}
template <class S, std::uint64_t Ma, std::uint64_t Mb>
Dual<S, Ma | Mb> operator/(const Dual<S, Ma>& a, const Dual<S, Mb>& b) {
  const S inv = S(1) / b.v, y = a.v * inv;
  return detail::combine(a, b, y, [&](const S& d) { return d * inv; }, [&](const S& d) { return -(d * y * inv); });
}
// -a         da = -1
template <Number X>
X operator-(const X& a) {
  X r = a;
  r.v = -a.v;
  if constexpr (requires { r.d; })
    for (auto& d : r.d) d = -d;
  return r;
}
// With a number: the number is a constant (zero partials).
template <Number X, Scalar A>
X operator+(const X& a, A s) {
  X r = a;
  r.v = a.v + detail::splat<detail::batch_t<X>>(s);
  return r;
}
template <Number X, Scalar A>
X operator+(A s, const X& a) {
  return a + s;
}
template <Number X, Scalar A>
X operator-(const X& a, A s) {
  X r = a;
  r.v = a.v - detail::splat<detail::batch_t<X>>(s);
  return r;
}
template <Number X, Scalar A>
X operator-(A s, const X& a) {
  X r = -a;
  r.v = r.v + detail::splat<detail::batch_t<X>>(s);
  return r;
}
template <Number X, Scalar A>
X operator*(const X& a, A s) {
  const auto c = detail::splat<detail::batch_t<X>>(s);
  X r = a;
  r.v = a.v * c;
  if constexpr (requires { r.d; })
    for (auto& d : r.d) d = d * c;
  return r;
}
template <Number X, Scalar A>
X operator*(A s, const X& a) {
  return a * s;
}
template <Number X, Scalar A>
X operator/(const X& a, A s) {
  return a * (1.0 / static_cast<double>(s));
}
template <Number X, Scalar A>
auto operator/(A s, const X& a) {
  return detail::constant(a, detail::splat<detail::batch_t<X>>(s)) / a;
}

// ---- Functions: value and derivative side by side --------------------------------------------

// y = 1 / (1 + e^-x)      dy = y (1 - y)
template <Number X>
X sigmoid(const X& x) {
  using S = detail::batch_t<X>;
  return detail::unary(
      x, [](const S& v) { return S(1) / (S(1) + xsimd::exp(-v)); },
      [](const S&, const S& y) { return y * (S(1) - y); });
}
// y = tanh x              dy = 1 - y^2
template <Number X>
X tanh(const X& x) {
  using S = detail::batch_t<X>;
  return detail::unary(
      x, [](const S& v) { return xsimd::tanh(v); }, [](const S&, const S& y) { return S(1) - y * y; });
}
// y = e^x                 dy = y
template <Number X>
X exp(const X& x) {
  using S = detail::batch_t<X>;
  return detail::unary(
      x, [](const S& v) { return xsimd::exp(v); }, [](const S&, const S& y) { return y; });
}
// y = ln x                dy = 1 / x
template <Number X>
X log(const X& x) {
  using S = detail::batch_t<X>;
  return detail::unary(
      x, [](const S& v) { return xsimd::log(v); }, [](const S& v, const S&) { return S(1) / v; });
}
// y = sqrt x              dy = 1 / (2 y)
template <Number X>
X sqrt(const X& x) {
  using S = detail::batch_t<X>;
  return detail::unary(
      x, [](const S& v) { return xsimd::sqrt(v); }, [](const S&, const S& y) { return S(0.5) / y; });
}
// y = max(x, 0)           dy = [x > 0]
template <Number X>
X relu(const X& x) {
  using S = detail::batch_t<X>;
  return detail::unary(
      x, [](const S& v) { return xsimd::max(v, S(0)); },
      [](const S& v, const S&) { return xsimd::select(v > S(0), S(1), S(0)); });
}
// y = |x|                 dy = sign x (0 at 0)
template <Number X>
X abs(const X& x) {
  using S = detail::batch_t<X>;
  return detail::unary(
      x, [](const S& v) { return xsimd::abs(v); },
      [](const S& v, const S&) {
        return xsimd::select(v > S(0), S(1), xsimd::select(v < S(0), S(-1), S(0)));
      });
}
// y = x^2                 dy = 2 x
template <Number X>
X square(const X& x) {
  using S = detail::batch_t<X>;
  return detail::unary(
      x, [](const S& v) { return v * v; }, [](const S& v, const S&) { return S(2) * v; });
}
// y = x^p                 dy = p x^(p-1)
template <Number X, Scalar A>
X pow(const X& x, A p) {
  using S = detail::batch_t<X>;
  const S e = detail::splat<S>(p), em1 = detail::splat<S>(static_cast<double>(p) - 1.0);
  return detail::unary(
      x, [e](const S& v) { return xsimd::pow(v, e); },
      [e, em1](const S& v, const S&) { return e * xsimd::pow(v, em1); });
}

}  // namespace fx

namespace detail {

/// How a fused operand lines up with the output: the output's elements are walked as `rows`
/// runs of `cols`; this gives where run r of the operand starts.
template <class T>
struct FusedOperand {
  enum Kind { Full, Repeat, One } kind = Full;
  Runs<T> runs{nullptr, 0, 0, 0};  // Full: its runs (in place for a view); Repeat: one run
  const T* at(std::size_t e) const {  // the operand's element for output element e (run start)
    if (kind == Repeat) return runs.data + e % runs.cols;
    if (runs.rows == 1) return runs.data + e;
    return runs.data + (e / runs.cols) * runs.ld + e % runs.cols;
  }
};

template <class T, std::size_t K>
struct FusedLayout {
  Shape shape;
  std::size_t size = 0, cols = 0;
  std::array<FusedOperand<T>, K> ops;
};

/// Checks the operands' shapes against the output's (the largest operand's) and finds a run
/// length every operand's layout divides.
template <class T, std::size_t K>
FusedLayout<T, K> fused_layout(const char* op, const std::array<const Node<T>*, K>& nodes) {
  FusedLayout<T, K> l;
  std::size_t big = 0;
  for (std::size_t k = 1; k < K; ++k)
    if (nodes[k]->size() > nodes[big]->size()) big = k;
  l.shape = nodes[big]->shape();
  l.size = nodes[big]->size();
  std::size_t cols = l.size;
  for (std::size_t k = 0; k < K; ++k) {
    const Node<T>& n = *nodes[k];
    FusedOperand<T>& o = l.ops[k];
    const Shape& s = n.shape();
    if (n.size() == l.size && xg::detail::same_shape(s, l.shape)) {
      o.kind = FusedOperand<T>::Full;
      o.runs = n.runs();
      if (o.runs.rows == 1) o.runs.cols = l.size;
      cols = std::gcd(cols, o.runs.cols);
      continue;
    }
    // Trailing dims of the output (leading 1s allowed), or one element.
    std::size_t lead = 0;
    while (lead < s.size() && s[lead] == 1) ++lead;
    const std::size_t rank = s.size() - lead;
    bool suffix = rank <= l.shape.size();
    for (std::size_t i = 0; suffix && i < rank; ++i)
      suffix = s[lead + i] == l.shape[l.shape.size() - rank + i];
    if (!suffix || s.size() > l.shape.size())
      throw ShapeError(fmt::format("{} (fused): operand {} has shape {}, which is neither the "
                                   "output's shape {}, its trailing dims, nor one element",
                                   op, k, shape_str(s), shape_str(l.shape)));
    const Array<T>& v = n.value();
    if (n.size() == 1) {
      o.kind = FusedOperand<T>::One;
      o.runs = Runs<T>{v.data(), 1, 1, 1};
    } else {
      o.kind = FusedOperand<T>::Repeat;
      o.runs = Runs<T>{v.data(), 1, v.size(), v.size()};
      cols = std::gcd(cols, v.size());
    }
  }
  l.cols = l.size == 0 ? 0 : cols;
  return l;
}

/// Walks the output in runs of l.cols elements and each run in batches: calls
/// `body(p, e, c, n)` for output elements e .. e + n - 1 (n at most one batch), where p[k] points
/// at operand k's element for the run's start (so its batch starts at p[k] + c).
template <class S, class T, std::size_t K, class Body>
void for_each_batch(const FusedLayout<T, K>& l, Body&& body) {
  constexpr std::size_t W = S::size;
  std::array<const T*, K> p;
  for (std::size_t base = 0; base < l.size; base += l.cols) {
    for (std::size_t k = 0; k < K; ++k)
      p[k] = l.ops[k].kind == FusedOperand<T>::One ? l.ops[k].runs.data : l.ops[k].at(base);
    for (std::size_t c = 0; c < l.cols; c += W) body(p, base + c, c, std::min(W, l.cols - c));
  }
}

/// n contiguous elements at p as a batch (the lanes past n are padding).
template <class S, class T>
S load_n(const T* p, std::size_t n) {
  if (n == S::size) return S::load_unaligned(p);
  alignas(64) T buf[S::size];
  for (std::size_t j = 0; j < n; ++j) buf[j] = p[j];
  for (std::size_t j = n; j < S::size; ++j) buf[j] = T(0.5);  // a value every function accepts
  return S::load_aligned(buf);
}

/// Operand k's batch: its n elements from the run pointer, or its one element everywhere.
template <class S, class T>
S load(const FusedOperand<T>& o, const T* run, std::size_t c, std::size_t n) {
  if (o.kind == FusedOperand<T>::One) return S(*run);
  return load_n<S>(run + c, n);
}

template <class S, class T>
void store(const S& v, T* p, std::size_t n) {
  if (n == S::size) {
    v.store_unaligned(p);
    return;
  }
  alignas(64) T buf[S::size];
  v.store_aligned(buf);
  for (std::size_t j = 0; j < n; ++j) p[j] = buf[j];
}

template <class, class X>
using as = X;

/// The expression with dual numbers: operand I seeded with dI/dI = 1.
template <class S, class T, std::size_t K, class F>
auto dual_call(F& f, const FusedLayout<T, K>& l, const std::array<const T*, K>& p, std::size_t c, std::size_t n) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return f(fx::Dual<S, std::uint64_t{1} << I>{load<S>(l.ops[I], p[I], c, n), {S(T(1))}}...);
  }(std::make_index_sequence<K>{});
}

/// Where operand k's gradient goes during the backward pass: the buffer add() hands an in_place
/// kernel (the input's own gradient, or a temporary that add() then routes to a view's base).
template <class T>
struct GradSink {
  T* data = nullptr;
  bool accumulate = false;
};

/// The backward pass: recompute the expression with dual numbers and add g * dy/d(operand k)
/// into each operand's sink. `dense`: every sink is an output-shaped array (no broadcasting).
template <std::uint64_t M, class T, std::size_t K, class F>
void fused_pass(F& f, const FusedLayout<T, K>& l, const Array<T>& g, const std::array<GradSink<T>, K>& sinks,
                bool dense) {
  using S = xsimd::batch<T>;
  for_each_batch<S>(l, [&](const std::array<const T*, K>& p, std::size_t e, std::size_t c, std::size_t n) {
    const S gb = load_n<S>(g.data() + e, n);
    const auto y = dual_call<S>(f, l, p, c, n);
    fx::detail::for_each_bit<M>([&]<std::size_t k>() {
      const GradSink<T>& sink = sinks[k];
      if (!sink.data) return;
      const S v = gb * y.d[fx::detail::slot<M>(k)];
      switch (dense ? FusedOperand<T>::Full : l.ops[k].kind) {
        case FusedOperand<T>::Full: {
          T* q = sink.data + e;
          store(sink.accumulate ? load_n<S>(q, n) + v : v, q, n);
          break;
        }
        case FusedOperand<T>::Repeat: {  // the operand repeats every runs.cols output elements
          T* q = sink.data + e % l.ops[k].runs.cols;
          store(load_n<S>(q, n) + v, q, n);
          break;
        }
        case FusedOperand<T>::One: {
          alignas(64) T buf[S::size];
          v.store_aligned(buf);
          T total = 0;
          for (std::size_t j = 0; j < n; ++j) total += buf[j];
          sink.data[0] += total;
          break;
        }
      }
    });
  });
}

/// Asks add() for the buffer of every operand that needs a gradient and that the expression
/// depends on (bit k of M), then runs the pass into all of them.
template <std::uint64_t M, class T, std::size_t K, std::size_t k, class Run>
void with_sinks(Backward<T>& b, const FusedLayout<T, K>& l, std::array<GradSink<T>, K>& sinks, Run& run) {
  if constexpr (k == K) {
    run();
  } else if (((M >> k) & 1) == 0 || !b.needs(k)) {
    with_sinks<M, T, K, k + 1>(b, l, sinks, run);
  } else {
    b.add(k, in_place([&](Array<T>& dst, bool accumulate) {
      if (!accumulate && l.ops[k].kind != FusedOperand<T>::Full) {
        dst.fill(T(0));  // a broadcast operand's gradient sums over the output's rows
        accumulate = true;
      }
      sinks[k] = {dst.data(), accumulate};
      with_sinks<M, T, K, k + 1>(b, l, sinks, run);
    }));
  }
}

template <class T, std::size_t K, class F>
void fused_backward(Backward<T>& b, F& f) {
  using S = xsimd::batch<T>;
  // Which operands the expression depends on: the mask of its dual result's type.
  constexpr std::uint64_t M =
      decltype(dual_call<S>(f, std::declval<const FusedLayout<T, K>&>(),
                            std::declval<const std::array<const T*, K>&>(), 0, 0))::mask;
  std::array<const Node<T>*, K> nodes;
  for (std::size_t k = 0; k < K; ++k) nodes[k] = &b.in_node(k);
  const FusedLayout<T, K> l = fused_layout<T, K>(b.op(), nodes);
  const Array<T>& g = b.grad();
  std::array<GradSink<T>, K> sinks{};
  // Straight into the gradient buffers, unless a node is two operands at once (or one operand
  // is the base of another's view): its buffer could change while the pass writes into it.
  bool shared = false;
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j)
      shared = shared || (i != j && (nodes[i] == nodes[j] ||
                                     (nodes[j]->is_view() && nodes[j]->base().get() == nodes[i])));
  if (!shared) {
    auto run = [&] { fused_pass<M>(f, l, g, sinks, false); };
    with_sinks<M, T, K, 0>(b, l, sinks, run);
    return;
  }
  std::array<Array<T>, K> d;  // d[k] = g * dy/d(operand k) in the output's shape; add() reduces
  for (std::size_t k = 0; k < K; ++k) {
    if (((M >> k) & 1) == 0 || !b.needs(k)) continue;
    d[k] = empty<T>(l.shape);
    sinks[k] = {d[k].data(), false};
  }
  fused_pass<M>(f, l, g, sinks, true);
  for (std::size_t k = 0; k < K; ++k)
    if (sinks[k].data) b.add(k, std::move(d[k]));
}

}  // namespace detail

/// Evaluates the elementwise expression `f` over `operands` in one pass and records it as one op
/// named `op` (see the top of this file). Returns a Var of the largest operand's shape.
template <class F, class T, class... V>
Var<T> fuse(const char* op, F f, const Var<T>& first, const V&... rest) {
  constexpr std::size_t K = 1 + sizeof...(V);
  static_assert(K <= 64, "fuse: at most 64 operands");
  static_assert((std::is_same_v<V, Var<T>> && ...), "fuse: every operand is a Var of one element type");
  using S = xsimd::batch<T>;
  static_assert(std::is_same_v<std::invoke_result_t<F&, fx::Num<S>, detail::as<V, fx::Num<S>>...>,
                               fx::Num<S>>,
                "fuse: the lambda must take one auto parameter per operand and return an expression of them");
  const std::array<Var<T>, K> vars{first, rest...};
  std::array<const detail::Node<T>*, K> nodes;
  for (std::size_t k = 0; k < K; ++k) {
    if (!vars[k].defined()) throw TapeError(fmt::format("{}: operand {} is an undefined Var", op, k));
    nodes[k] = vars[k].node_ptr().get();
  }
  const detail::FusedLayout<T, K> l = detail::fused_layout<T, K>(op, nodes);
  Array<T> out = empty<T>(l.shape);
  T* o = out.data();
  detail::for_each_batch<S>(l, [&](const std::array<const T*, K>& p, std::size_t e, std::size_t c, std::size_t n) {
    const fx::Num<S> y = [&]<std::size_t... I>(std::index_sequence<I...>) {
      return f(fx::Num<S>{detail::load<S>(l.ops[I], p[I], c, n)}...);
    }(std::make_index_sequence<K>{});
    detail::store(y.v, o + e, n);
  });
  return record<T>(op, std::move(out), std::span<const Var<T>>(vars),
                   [f](Backward<T>& b) mutable { detail::fused_backward<T, K>(b, f); },
                   saves_inputs(K >= 32 ? 0xffffffffu : (1u << K) - 1u));
}

}  // namespace xg
