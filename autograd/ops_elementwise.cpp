// Elementwise ops: each forward with its vector-Jacobian product beside it.
// Names in backward: b.grad() = g (upstream), b.in(i) = inputs, b.out() = y (output).
#include <array>
#include <cmath>

#include <fmt/format.h>

#include <xtensor/xadapt.hpp>

#include <xgrad/autograd/ops_elementwise.hpp>

namespace xg {

namespace {
// out = f(a, b) for equal shapes, one contiguous run at a time, reading views in place. Each
// operand is either split into runs of the shorter run length or already has it; false (and
// nothing written) when the two layouts do not line up.
template <class T, class F>
bool map2_runs(const detail::Node<T>& a, const detail::Node<T>& b, Array<T>& out, F& f) {
  detail::Runs<T> ra = a.runs(), rb = b.runs();
  const std::size_t cols = std::min(ra.cols, rb.cols);
  auto split = [cols](detail::Runs<T>& r) {
    if (r.cols == cols) return true;
    if (r.rows != 1 || r.cols % cols != 0) return false;
    r = detail::Runs<T>{r.data, r.cols / cols, cols, cols};
    return true;
  };
  if (cols == 0 || !split(ra) || !split(rb) || ra.rows != rb.rows) return false;
  const std::array<std::size_t, 1> shape{cols};
  for (std::size_t i = 0; i < ra.rows; ++i) {
    auto x = xt::adapt(ra.row(i), cols, xt::no_ownership(), shape);
    auto y = xt::adapt(rb.row(i), cols, xt::no_ownership(), shape);
    auto dst = xt::adapt(out.data() + i * cols, cols, xt::no_ownership(), shape);
    xt::noalias(dst) = f(x, y);
  }
  return true;
}

// c = f(a, b) with NumPy broadcasting. Equal shapes with a view among them (gate slices) are
// read in place instead of being copied out of their base first.
template <class T, class F>
Array<T> binary(std::string_view op, const Var<T>& a, const Var<T>& b, F f) {
  if ((a.is_view() || b.is_view()) && a.shape() == b.shape()) {
    Array<T> out = empty<T>(a.shape());
    if (map2_runs(*a.node_ptr(), *b.node_ptr(), out, f)) return out;
  }
  const Array<T>& x = a.value();
  const Array<T>& y = b.value();
  Array<T> out = empty<T>(broadcast_shapes(op, x.shape(), y.shape()));
  xt::noalias(out) = f(x, y);
  return out;
}
}  // namespace

// ---- Binary ---------------------------------------------------------------------------------

// c = a + b        da = g, db = g
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  auto f = [](const auto& x, const auto& y) { return x + y; };
  return record("add", binary<T>("add", a, b, f), {a, b}, [](Backward<T>& bw) {
    if (bw.needs(1)) bw.add(0, bw.grad());  // a copy only when both need it
    bw.add(bw.needs(1) ? 1 : 0, bw.take_grad());
  }, saves_none);
}

// c = a - b        da = g, db = -g
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  auto f = [](const auto& x, const auto& y) { return x - y; };
  return record("sub", binary<T>("sub", a, b, f), {a, b}, [](Backward<T>& bw) {
    if (bw.needs(1)) bw.add(1, -bw.grad());
    bw.add(0, bw.take_grad());
  }, saves_none);
}

// c = a * b        da = g b, db = g a
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  auto f = [](const auto& x, const auto& y) { return x * y; };
  return record("mul", binary<T>("mul", a, b, f), {a, b}, [](Backward<T>& bw) {
    if (bw.needs(0)) bw.add(0, bw.grad() * bw.in(1));
    if (bw.needs(1)) bw.add(1, bw.grad() * bw.in(0));
  }, saves_inputs(0b11));
}

// c = a / b        da = g / b, db = -g c / b
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  auto f = [](const auto& x, const auto& y) { return x / y; };
  return record("div", binary<T>("div", a, b, f), {a, b}, [](Backward<T>& bw) {
    if (bw.needs(0)) bw.add(0, bw.grad() / bw.in(1));
    if (bw.needs(1)) bw.add(1, -bw.grad() * bw.out() / bw.in(1));
  }, Saves{0b10, true});
}

// c = a^b          da = g b a^(b-1), db = g c ln a
template <class T>
Var<T> pow(const Var<T>& a, const Var<T>& b) {
  auto f = [](const auto& x, const auto& y) { return xt::pow(x, y); };
  return record("pow", binary<T>("pow", a, b, f), {a, b}, [](Backward<T>& bw) {
    if (bw.needs(0)) bw.add(0, bw.grad() * bw.in(1) * xt::pow(bw.in(0), bw.in(1) - T(1)));
    if (bw.needs(1)) bw.add(1, bw.grad() * bw.out() * xt::log(bw.in(0)));
  });
}

// c = max(a, b)    g goes to the larger; ties split it in half
template <class T>
Var<T> maximum(const Var<T>& a, const Var<T>& b) {
  auto f = [](const auto& x, const auto& y) { return xt::maximum(x, y); };
  return record("maximum", binary<T>("maximum", a, b, f), {a, b},
                [](Backward<T>& bw) {
                  const auto& p = bw.in(0);
                  const auto& q = bw.in(1);
                  if (bw.needs(0))
                    bw.add(0, bw.grad() * xt::where(xt::equal(p, q), T(0.5), xt::cast<T>(p > q)));
                  if (bw.needs(1))
                    bw.add(1, bw.grad() * xt::where(xt::equal(p, q), T(0.5), xt::cast<T>(q > p)));
                });
}

// c = min(a, b)    g goes to the smaller; ties split it in half
template <class T>
Var<T> minimum(const Var<T>& a, const Var<T>& b) {
  auto f = [](const auto& x, const auto& y) { return xt::minimum(x, y); };
  return record("minimum", binary<T>("minimum", a, b, f), {a, b},
                [](Backward<T>& bw) {
                  const auto& p = bw.in(0);
                  const auto& q = bw.in(1);
                  if (bw.needs(0))
                    bw.add(0, bw.grad() * xt::where(xt::equal(p, q), T(0.5), xt::cast<T>(p < q)));
                  if (bw.needs(1))
                    bw.add(1, bw.grad() * xt::where(xt::equal(p, q), T(0.5), xt::cast<T>(q < p)));
                });
}

// c = mask ? a : b     da = g [mask], db = g [!mask]
template <class T>
Var<T> where(const Array<bool>& mask, const Var<T>& a, const Var<T>& b) {
  const auto& x = a.value();
  const auto& y = b.value();
  Shape s = broadcast_shapes("where", broadcast_shapes("where", mask.shape(), x.shape()), y.shape());
  Array<T> out = empty<T>(s);
  xt::noalias(out) = xt::where(mask, x, y);
  return record("where", std::move(out), {a, b}, [mask](Backward<T>& bw) {
    if (bw.needs(0)) bw.add(0, xt::where(mask, bw.grad(), T(0)));
    if (bw.needs(1)) bw.add(1, xt::where(mask, T(0), bw.grad()));
  }, saves_none);
}

// ---- With a scalar --------------------------------------------------------------------------

// c = a + s        da = g
template <class T>
Var<T> add(const Var<T>& a, Scalar<T> s) {
  Array<T> out = a.value() + s;
  return record("add_scalar", std::move(out), {a}, [](Backward<T>& bw) { bw.add(0, bw.take_grad()); },
                saves_none);
}

// c = a s          da = g s
template <class T>
Var<T> mul(const Var<T>& a, Scalar<T> s) {
  Array<T> out = a.value() * s;
  return record("mul_scalar", std::move(out), {a}, [s](Backward<T>& bw) { bw.add(0, bw.grad() * s); },
                saves_none);
}

// c = s - a        da = -g
template <class T>
Var<T> rsub(const Var<T>& a, Scalar<T> s) {
  Array<T> out = s - a.value();
  return record("rsub_scalar", std::move(out), {a}, [](Backward<T>& bw) { bw.add(0, -bw.grad()); },
                saves_none);
}

// c = s / a        da = -g c / a
template <class T>
Var<T> rdiv(const Var<T>& a, Scalar<T> s) {
  Array<T> out = s / a.value();
  return record("rdiv_scalar", std::move(out), {a},
                [](Backward<T>& bw) { bw.add(0, -bw.grad() * bw.out() / bw.in(0)); }, saves_all);
}

// c = a^p          da = g p a^(p-1)
template <class T>
Var<T> pow(const Var<T>& a, Scalar<T> p) {
  Array<T> out = xt::pow(a.value(), p);
  return record("pow_scalar", std::move(out), {a}, [p](Backward<T>& bw) {
    bw.add(0, bw.grad() * p * xt::pow(bw.in(0), p - T(1)));
  }, saves_inputs(0b1));
}

// c = clamp(x, lo, hi)     dx = g [lo <= x <= hi]
template <class T>
Var<T> clamp(const Var<T>& x, Scalar<T> lo, Scalar<T> hi) {
  if (!(lo <= hi))
    throw ValueError(fmt::format("clamp: lo ({}) must not exceed hi ({})", lo, hi));
  Array<T> out = xt::clip(x.value(), lo, hi);
  return record("clamp", std::move(out), {x}, [lo, hi](Backward<T>& bw) {
    const auto& v = bw.in(0);
    bw.add(0, bw.grad() * xt::cast<T>(v >= lo && v <= hi));
  }, saves_inputs(0b1));
}

// c = x > 0 ? x : slope x      dx = g (x > 0 ? 1 : slope)
template <class T>
Var<T> leaky_relu(const Var<T>& x, Scalar<T> slope) {
  const auto& v = x.value();
  Array<T> out = xt::where(v > T(0), v, slope * v);
  return record("leaky_relu", std::move(out), {x}, [slope](Backward<T>& bw) {
    bw.add(0, bw.grad() * xt::where(bw.in(0) > T(0), T(1), slope));
  }, saves_inputs(0b1));
}

// ---- The unary table ------------------------------------------------------------------------
// Each row: name, forward of x, derivative from x (input), y (output) and g (upstream gradient),
// the interval used by the gradient test, and the forward in plain double math for value tests.
namespace {
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluC = 0.044715;
double ref_sigmoid(double v) { return 1 / (1 + std::exp(-v)); }
double ref_softplus(double v) { return std::log1p(std::exp(v)); }
double ref_gelu(double v) {
  return 0.5 * v * (1 + std::tanh(kSqrt2OverPi * (v + kGeluC * v * v * v)));
}
}  // namespace

// `reads` is what the derivative uses (x, y or nothing), so the tape keeps only that alive.
#define XG_UNARY_TABLE(OP)                                                                         \
  /*  name      forward                                   derivative            reads  domain   */ \
  OP(neg,      -x,                                        -g,                   none,  -3, 3,      \
     [](double v) { return -v; })                                                                  \
  OP(exp,      xt::exp(x),                                g * y,                y,     -3, 3,      \
     [](double v) { return std::exp(v); })                                                         \
  OP(log,      xt::log(x),                                g / x,                x,     0.1, 5,     \
     [](double v) { return std::log(v); })                                                         \
  OP(sqrt,     xt::sqrt(x),                               g / (T(2) * y),       y,     0.1, 5,     \
     [](double v) { return std::sqrt(v); })                                                        \
  OP(abs,      xt::abs(x),                                g * xt::sign(x),      x,     -3, 3,      \
     [](double v) { return std::abs(v); })                                                         \
  OP(tanh,     xt::tanh(x),                               g * (T(1) - y * y),   y,     -3, 3,      \
     [](double v) { return std::tanh(v); })                                                        \
  OP(sigmoid,  T(1) / (T(1) + xt::exp(-x)),               g * y * (T(1) - y),   y,     -5, 5,      \
     ref_sigmoid)                                                                                  \
  OP(relu,     xt::maximum(x, T(0)),                      g * xt::cast<T>(x > T(0)), x, -3, 3,     \
     [](double v) { return v > 0 ? v : 0.0; })                                                     \
  OP(softplus, xt::maximum(x, T(0)) + xt::log1p(xt::exp(-xt::abs(x))),                             \
                                                          g / (T(1) + xt::exp(-x)), x, -5, 5,      \
     ref_softplus)                                                                                 \
  OP(gelu,     T(0.5) * x * (T(1) + xt::tanh(T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x))),      \
               gelu_grad(x, g),                                                 x,     -3, 3,      \
     ref_gelu)                                                                                     \
  OP(square,   x * x,                                     T(2) * g * x,         x,     -3, 3,      \
     [](double v) { return v * v; })
#define XG_READS_x saves_inputs(0b1)
#define XG_READS_y saves_out
#define XG_READS_none saves_none

namespace {
// d/dx gelu = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 c x^2),  t = tanh(sqrt(2/pi)(x + c x^3))
template <class T>
Array<T> gelu_grad(const Array<T>& x, const Array<T>& g) {
  const T k = T(kSqrt2OverPi), c = T(kGeluC);
  Array<T> t = xt::tanh(k * (x + c * x * x * x));
  return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3) * c * x * x));
}
}  // namespace

// out = f(x) for a view x, one contiguous run at a time (x is not copied out of its base).
template <class T, class F>
void map_runs(const detail::Node<T>& x, Array<T>& out, F&& f) {
  const detail::Runs<T> r = x.runs();
  const std::array<std::size_t, 1> shape{r.cols};
  for (std::size_t i = 0; i < r.rows; ++i) {
    auto in = xt::adapt(r.row(i), r.cols, xt::no_ownership(), shape);
    auto dst = xt::adapt(out.data() + i * r.cols, r.cols, xt::no_ownership(), shape);
    xt::noalias(dst) = f(in);
  }
}

#define XG_DEFINE_UNARY(NAME, FWD, DERIV, READS, LO, HI, REF)                              \
  template <class T>                                                               \
  Var<T> NAME(const Var<T>& input) {                                               \
    Array<T> out = empty<T>(input.shape());                                        \
    if (input.is_view()) { /* a slice: read it in place, run by run */             \
      map_runs(*input.node_ptr(), out, [](const auto& x) { return FWD; });         \
    } else {                                                                       \
      const Array<T>& x = input.value();                                           \
      xt::noalias(out) = FWD;                                                      \
    }                                                                              \
    return record(#NAME, std::move(out), {input}, [](Backward<T>& bw) {           \
      constexpr Saves reads = XG_READS_##READS; /* bind only what is kept */      \
      const Array<T>& x = reads.input(0) ? bw.in(0) : bw.grad();                   \
      const Array<T>& y = reads.out ? bw.out() : bw.grad();                        \
      const Array<T>& g = bw.grad();                                               \
      (void)x;                                                                     \
      (void)y;                                                                     \
      bw.add(0, DERIV);                                                            \
    }, XG_READS_##READS);                                                          \
  }
XG_UNARY_TABLE(XG_DEFINE_UNARY)
#undef XG_DEFINE_UNARY

#define XG_UNARY_INFO(NAME, FWD, DERIV, READS, LO, HI, REF) {#NAME, &NAME<T>, LO, HI, REF},
template <class T>
const std::vector<UnaryOpInfo<T>>& unary_ops() {
  static const std::vector<UnaryOpInfo<T>> table = {XG_UNARY_TABLE(XG_UNARY_INFO)};
  return table;
}
#undef XG_UNARY_INFO

// ---- Instantiation --------------------------------------------------------------------------
#define XG_INSTANTIATE_UNARY(NAME, FWD, DERIV, READS, LO, HI, REF) \
  template Var<float> NAME(const Var<float>&);              \
  template Var<double> NAME(const Var<double>&);
XG_UNARY_TABLE(XG_INSTANTIATE_UNARY)
#undef XG_INSTANTIATE_UNARY
#undef XG_READS_x
#undef XG_READS_y
#undef XG_READS_none

#define XG_INSTANTIATE(T)                                                      \
  template Var<T> add(const Var<T>&, const Var<T>&);                           \
  template Var<T> sub(const Var<T>&, const Var<T>&);                           \
  template Var<T> mul(const Var<T>&, const Var<T>&);                           \
  template Var<T> div(const Var<T>&, const Var<T>&);                           \
  template Var<T> pow(const Var<T>&, const Var<T>&);                           \
  template Var<T> maximum(const Var<T>&, const Var<T>&);                       \
  template Var<T> minimum(const Var<T>&, const Var<T>&);                       \
  template Var<T> where(const Array<bool>&, const Var<T>&, const Var<T>&); \
  template Var<T> add(const Var<T>&, Scalar<T>);                               \
  template Var<T> mul(const Var<T>&, Scalar<T>);                               \
  template Var<T> rsub(const Var<T>&, Scalar<T>);                              \
  template Var<T> rdiv(const Var<T>&, Scalar<T>);                              \
  template Var<T> pow(const Var<T>&, Scalar<T>);                               \
  template Var<T> clamp(const Var<T>&, Scalar<T>, Scalar<T>);                  \
  template Var<T> leaky_relu(const Var<T>&, Scalar<T>);                        \
  template const std::vector<UnaryOpInfo<T>>& unary_ops<T>();
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg
