// The public face of autograd: Var, the guards, and record() with the Backward it hands to an
// op's derivative. The engine behind it (the node and the tape's reverse walk) is in node.hpp
// and tape.hpp.
//
// Every differentiable op appends one record (op name, output, inputs, backward closure) to the
// current tape in execution order. `backward(loss)` seeds dL/dloss and walks the records in
// reverse, each record adding its vector-Jacobian product into its inputs' gradients.
//
// Which tape? Each thread has its own current tape (one per element type), so two threads never
// share state. `Tape<T>::Scope` makes another tape current for its lifetime; most code never
// names a tape at all:
//
//     Var<float> w(init, /*requires_grad=*/true);
//     Var<float> loss = sum(tanh(matmul(x, w)));
//     loss.backward();          // walks this thread's tape, then clears it (capacity is kept)
//     w.grad();                 // dL/dw
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <xgrad/autograd/node.hpp>

namespace xg {

/// Misuse of the tape: a second backward over a cleared tape, a non-scalar loss without a seed,
/// a value carried across a cleared tape without detach().
struct TapeError : std::logic_error {
  using std::logic_error::logic_error;
};

/// A NaN or Inf found in anomaly mode; the message names the op that produced it.
struct AnomalyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Which forward values an op's backward reads: bit i of `inputs` for in(i), `out` for out().
/// The tape keeps a value alive for a record only when the record says it reads it, so an
/// intermediate that no backward reads (a pre-activation, a sum) is freed during the forward
/// as soon as the program drops its last handle to it. `record()` defaults to everything.
struct Saves {
  std::uint32_t inputs = 0xffffffffu;
  bool out = true;
  constexpr bool input(std::size_t i) const { return i >= 32 || ((inputs >> i) & 1u) != 0; }
};
inline constexpr Saves saves_all{};
inline constexpr Saves saves_none{0u, false};
inline constexpr Saves saves_out{0u, true};
/// Saves the inputs whose bits are set (bit i = input i), not the output.
constexpr Saves saves_inputs(std::uint32_t bits) { return Saves{bits, false}; }

namespace detail {
bool& grad_mode();     // thread-local: are ops recorded?
bool& anomaly_mode();  // thread-local: check every output and gradient for NaN/Inf
}  // namespace detail

/// While alive, ops on this thread record nothing (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(detail::grad_mode()) { detail::grad_mode() = false; }
  ~NoGradGuard() { detail::grad_mode() = prev_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// Whether ops on this thread are currently recorded.
inline bool grad_enabled() { return detail::grad_mode(); }

/// While alive, every recorded output and every gradient in backward is checked for NaN/Inf;
/// the first one raises AnomalyError naming the op and its record number.
class AnomalyGuard {
 public:
  explicit AnomalyGuard(bool on = true) : prev_(detail::anomaly_mode()) {
    detail::anomaly_mode() = on;
  }
  ~AnomalyGuard() { detail::anomaly_mode() = prev_; }
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  bool prev_;
};

/// A differentiable value: a shared handle to an array, its gradient and its place on the tape.
/// Copies share the same node (like torch.Tensor handles).
template <class T>
class Var {
 public:
  using value_type = T;

  /// An undefined Var (defined() is false).
  Var() = default;
  Var(const Var&) = default;
  Var(Var&&) noexcept = default;
  Var& operator=(Var other) noexcept {
    node_.swap(other.node_);  // `other` drops the old node on its way out
    return *this;
  }
  /// Dropping the last handle to a recorded value that no backward reads frees it (the release
  /// rule, node.hpp).
  ~Var() {
    if (node_ && node_->engine_refs_) detail::Node<T>::release_if_unread(node_, 1);
  }
  /// A leaf: an input or a parameter. `Var<float> w(init, true)`.
  explicit Var(Array<T> value, bool requires_grad = false);
  /// A 0-d leaf holding `v`.
  static Var scalar(T v, bool requires_grad = false);

  bool defined() const { return node_ != nullptr; }
  const Array<T>& value() const& { return node().value(); }
  /// On a temporary (`head(x).value()`) the value is copied out: nothing else may keep it alive.
  Array<T> value() const&& { return node().value(); }
  /// The value for in-place updates of a leaf (optimizers, loading). Throws TapeError on a
  /// recorded result, whose value its consumers' backward may still read.
  Array<T>& mutable_value();
  const Shape& shape() const { return node().shape(); }
  std::size_t shape(std::size_t i) const { return node().shape()[i]; }
  std::size_t dim() const { return node().shape().size(); }
  std::size_t size() const { return node().size(); }
  /// Whether this value is a window of another's storage (slice, select, reshape of a
  /// recorded result); it reads like any other value.
  bool is_view() const { return node().is_view(); }
  /// The single element of a one-element value; throws ShapeError otherwise.
  T item() const;

  bool requires_grad() const { return node_ && node_->requires_grad_; }
  /// Leaves only: start or stop tracking gradients.
  Var& set_requires_grad(bool on);
  bool is_leaf() const { return node().is_leaf(); }
  /// The name of the op that produced this value ("leaf" for leaves).
  const char* op() const { return node().op(); }

  bool has_grad() const { return node_ && node_->has_grad_; }
  /// dL/d(this) after backward. Throws TapeError when no gradient has arrived.
  const Array<T>& grad() const;
  Array<T>& mutable_grad();
  /// Sets the gradient of a leaf, for code that computes gradients itself (an all-reduce, a
  /// restore); `g` must have this value's shape. The next backward adds to it.
  Var& set_grad(Array<T> g);
  /// Forgets the gradient (the next backward starts from zero).
  void zero_grad();
  /// Keep this intermediate's gradient after backward (leaves always keep theirs).
  Var& retain_grad();

  /// The same value without history: a new leaf that does not require grad.
  Var detach() const;

  /// Backpropagates from this scalar on this thread's current tape, then clears the tape.
  void backward(bool retain_graph = false) const;
  /// Backpropagates from a value of any shape with an explicit seed gradient dL/d(this).
  void backward(const Array<T>& seed, bool retain_graph = false) const;

  /// The engine's node (ops that read views in place, the tape).
  const detail::NodePtr<T>& node_ptr() const { return node_; }
  static Var from_node(detail::NodePtr<T> n) {
    Var v;
    v.node_ = std::move(n);
    return v;
  }

 private:
  detail::Node<T>& node() const;
  detail::NodePtr<T> node_;
};

/// A gradient that a kernel writes in place, for Backward::add: `fn(dst, accumulate)` must set
/// `dst` (input i's shape) to the gradient when `accumulate` is false, and add the gradient to
/// it when true. For BLAS calls with beta, scatters and windows:
///
///     b.add(1, in_place([&](Array<T>& dst, bool acc) { gemm(..., /*beta=*/acc ? 1 : 0, dst); }));
template <class F>
struct InPlace {
  F fn;
};
template <class F>
InPlace<F> in_place(F fn) {
  return {std::move(fn)};
}

/// What an op's backward sees: the upstream gradient, the forward output and inputs, and the one
/// way to deliver a gradient, add().
///
///     // y = exp(x)     dx = dy * y
///     [](Backward<float>& b) { b.add(0, b.grad() * b.out()); }
///
/// A later higher-order mode would hand the same closures a Backward whose grad(), in() and out()
/// are Vars recorded on a second tape; see the README's "Higher-order gradients".
template <class T>
class Backward {
 public:
  /// dL/d(output), with the output's shape.
  const Array<T>& grad() const { return *grad_; }
  /// The upstream gradient as a value to hand on (moved out when nothing else needs it, so
  /// pass-through ops copy nothing). Call it last: grad() is invalid afterwards.
  Array<T> take_grad();
  /// The forward output value. The record's Saves must declare it (saves_out, saves_all):
  /// reading an undeclared value is a TapeError, whether or not it has been freed yet.
  const Array<T>& out() const;
  /// The forward value of input i; the record's Saves must declare it (saves_inputs, saves_all).
  const Array<T>& in(std::size_t i) const;
  /// Input i's node, for kernels that read a view in place (`in_node(i).runs()`); the Saves must
  /// declare input i, as for in().
  const detail::Node<T>& in_node(std::size_t i) const;
  /// The shape of input i, whatever the Saves declare.
  const Shape& in_shape(std::size_t i) const { return input(i, "in_shape").shape(); }
  std::size_t num_inputs() const { return inputs_->size(); }
  /// Whether input i wants a gradient (skip work when it does not).
  bool needs(std::size_t i) const { return input(i, "needs").requires_grad(); }

  /// Adds `g` to input i's gradient: the one way a backward delivers a gradient. `g` is
  ///   - an Array<T>: moved in when the input has no gradient yet (pass an rvalue);
  ///   - any xtensor expression: evaluated straight into the input's gradient when it has one;
  ///   - in_place(kernel): the kernel writes or accumulates into the gradient itself.
  /// A `g` larger than the input (a broadcast) is summed back to the input's shape; any other
  /// mismatch is a ShapeError naming the op. A view's gradient goes straight into its base's
  /// window. Inputs that do not need a gradient are skipped.
  template <class G>
  void add(std::size_t i, G&& g);

  const char* op() const { return op_; }

 private:
  friend class Tape<T>;
  /// Input i's node; every accessor taking an input index goes through here, so a bad index is a
  /// TapeError naming the op, the index and the number of inputs (in every build type).
  detail::Node<T>& input(std::size_t i, const char* accessor) const;
  /// The general route of add(): broadcast, view and accumulate handling for a whole array.
  void deliver(std::size_t i, detail::Node<T>& n, Array<T>&& g);
  Array<T>* grad_ = nullptr;
  Saves saves_;
  bool may_take_ = false;
  const detail::Node<T>* out_ = nullptr;
  const std::vector<detail::NodePtr<T>>* inputs_ = nullptr;
  const char* op_ = "";
};

namespace detail {
template <class X>
struct is_in_place : std::false_type {};
template <class F>
struct is_in_place<InPlace<F>> : std::true_type {};

/// A record's value as an Array<T>: moved when it is one, else the expression evaluated once.
template <class T, class E>
Array<T> record_value(E&& e) {
  using D = std::remove_cvref_t<E>;
  if constexpr (std::is_same_v<D, Array<T>>) {
    return Array<T>(std::forward<E>(e));
  } else {
    static_assert(xt::is_xexpression<D>::value,
                  "record: the value must be an Array<T> or an xtensor expression");
    Array<T> v = Array<T>::from_shape(Shape(e.shape().begin(), e.shape().end()));
    xt::noalias(v) = std::forward<E>(e);  // v is new: it overlaps no operand
    return v;
  }
}

/// The NaN/Inf check of anomaly mode on a new result.
template <class T>
void check_anomaly(const char* op, const Array<T>& value, std::size_t record_no);
}  // namespace detail

/// Records an op: the mechanism every built-in op uses, and the public custom-op API.
///
/// `value` is the forward result; `inputs` are the Vars it was computed from; `backward` is
/// called with a Backward<T>& during the reverse walk and adds each input's gradient. When no
/// input requires grad (or inside NoGradGuard) nothing but the result is built.
///
///     // y = x * sigmoid(x)      dy/dx = s + x s (1 - s)
///     template <class T> Var<T> swish(const Var<T>& x) {
///       Array<T> s = 1 / (1 + xt::exp(-x.value()));
///       Array<T> y = x.value() * s;
///       return record("swish", std::move(y), {x}, [s](Backward<T>& b) {
///         b.add(0, b.grad() * (s + b.in(0) * s * (1 - s)));
///       });
///     }
///
/// `saves` says which forward values the backward reads (here in(0); the default is all):
/// `record("swish", y, {x}, fn, saves_inputs(0b1))`. Values no record reads are freed early, and
/// a backward that reads a value its Saves does not declare raises a TapeError.
///
/// `value` may be any xtensor expression (`x.value() * T(2)`, a view, an array of another
/// element type): it is evaluated once into an Array<T>. An Array<T> is moved in as is.
template <class T, class E, class F>
Var<T> record(const char* op, E&& value, std::span<const Var<T>> inputs, F&& backward,
              Saves saves = saves_all) {
  static_assert(std::is_invocable_v<F&, Backward<T>&>, "backward must be callable with Backward<T>&");
  Tape<T>& tape = Tape<T>::current();
  detail::NodePtr<T> node = detail::make_node<T>(detail::record_value<T>(std::forward<E>(value)));
  if (detail::anomaly_mode()) detail::check_anomaly(op, node->value(), tape.size());
  if (!tape.wants(op, inputs)) return Var<T>::from_node(std::move(node));  // nothing else is built
  return tape.append(op, std::move(node), inputs,
                     typename Tape<T>::BackwardFn(std::forward<F>(backward)), saves);
}
template <class T, class E, class F>
Var<T> record(const char* op, E&& value, std::initializer_list<Var<T>> inputs, F&& backward,
              Saves saves = saves_all) {
  return record<T>(op, std::forward<E>(value), std::span<const Var<T>>(inputs.begin(), inputs.size()),
                   std::forward<F>(backward), saves);
}

/// Frees functions on Var for symmetry with the ops: `backward(loss)`.
template <class T>
void backward(const Var<T>& loss, bool retain_graph = false) {
  loss.backward(retain_graph);
}

// ---- Backward<T>::add ----------------------------------------------------------------------
template <class T>
template <class G>
void Backward<T>::add(std::size_t i, G&& g) {
  detail::Node<T>& n = input(i, "add");
  if (!n.requires_grad_) return;
  using D = std::remove_cvref_t<G>;
  // Fast path: write straight into the gradient when it is the input's own buffer.
  const bool own_buffer = !(n.is_view() && !n.retain_grad_);
  if constexpr (detail::is_in_place<D>::value) {
    if (own_buffer && n.has_grad_) {
      g.fn(n.grad_, true);
    } else if (own_buffer) {
      n.grad_ = empty<T>(n.shape());
      g.fn(n.grad_, false);
      n.has_grad_ = true;
    } else {
      Array<T> tmp = empty<T>(n.shape());
      g.fn(tmp, false);
      deliver(i, n, std::move(tmp));
    }
  } else if constexpr (std::is_same_v<D, Array<T>>) {
    if (own_buffer && n.has_grad_ && detail::same_shape(g.shape(), n.shape())) {
      xt::noalias(n.grad_) += g;
    } else if constexpr (std::is_lvalue_reference_v<G>) {
      deliver(i, n, Array<T>(g));
    } else {
      deliver(i, n, std::move(g));
    }
  } else {
    if (own_buffer && n.has_grad_ && detail::same_shape(g.shape(), n.shape())) {
      xt::noalias(n.grad_) += g;  // no temporary: the gradient buffer is not an operand
      return;
    }
    Array<T> tmp = empty<T>(Shape(g.shape().begin(), g.shape().end()));
    xt::noalias(tmp) = g;
    deliver(i, n, std::move(tmp));
  }
}

}  // namespace xg

#include <xgrad/autograd/tape.hpp>  // the engine: Tape<T>, which record() appends to
