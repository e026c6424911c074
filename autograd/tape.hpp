// The tape: reverse-mode automatic differentiation as a Wengert list.
//
// Every differentiable op appends one record (op name, output, inputs, backward closure) to the
// current tape in execution order. `backward(loss)` seeds dL/dloss and walks the records in
// reverse, each record adding (+=) its vector-Jacobian product into its inputs' gradients.
// No topological sort, no recursion.
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

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <xgrad/autograd/small_fn.hpp>
#include <xgrad/tensor/tensor.hpp>

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

template <class T>
class Var;
template <class T>
class Tape;
template <class T>
class Backward;

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
/// An array with no elements and no allocation (a default xarray is 0-d: one allocated element).
// GCC 12 reports a false -Wmaybe-uninitialized inside xtensor's svector when this is inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <class T>
Array<T> no_array() {
  return Array<T>(Shape{0});
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Where a view's elements lie in its base's (row-major, contiguous) storage: `rows` runs of
/// `cols` contiguous elements, run r starting at `offset + r * ld`. Any slice along one axis of a
/// contiguous array is such a window (rows = the product of the dims before the axis).
struct Window {
  std::size_t offset = 0, rows = 1, cols = 0, ld = 0;
};

/// Read access to a node's elements in runs, without materialising a view.
template <class T>
struct Runs {
  const T* data;
  std::size_t rows, cols, ld;
  const T* row(std::size_t r) const { return data + r * ld; }
  /// Copies the runs back to back into dst (rows * cols elements).
  void copy_to(T* dst) const {
    for (std::size_t r = 0; r < rows; ++r) std::copy(row(r), row(r) + cols, dst + r * cols);
  }
};

template <class T>
struct Node;
template <class T>
void try_release(const std::shared_ptr<Node<T>>& n);

template <class T>
struct Node {
  explicit Node(Array<T>&& v) : value_(std::move(v)) {}
  /// A view: a window of `b`'s value with shape `s`. Its own array stays empty until an op
  /// needs it whole (value()); view-aware ops read the base's storage in place (runs()).
  /// While its value may still be read, it keeps its base's value alive (a pin).
  Node(std::shared_ptr<Node> b, Shape s, Window w)
      : base(std::move(b)), view_shape(std::move(s)), window(w), value_(no_array<T>()) {
    ++base->engine_refs;
    ++base->pins;
    pins_base = true;
  }
  ~Node() {
    if (!base) return;
    --base->engine_refs;
    if (pins_base) --base->pins;
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const Shape& shape() const { return base || released ? view_shape : value_.shape(); }
  std::size_t size() const { return base ? window.rows * window.cols : shape_size(shape()); }
  /// The whole value (a view is copied out of its base once, on first use, and kept).
  const Array<T>& value() const {
    if (released) throw_released();
    if (base && !materialized) materialize();
    return value_;
  }
  /// For in-place updates of a leaf; a view (a result taken under NoGradGuard) first becomes a
  /// copy of its own, so the update never reaches its base.
  Array<T>& mutable_value() {
    if (base) {
      (void)value();
      unpin_base();
      --base->engine_refs;
      base.reset();
    }
    return value_;
  }
  /// The elements as runs: in place for a view, one run for a dense value.
  Runs<T> runs() const {
    if (released) throw_released();
    if (reads_base()) return {base->value_.data() + window.offset, window.rows, window.cols, window.ld};
    return {value_.data(), 1, value_.size(), value_.size()};
  }
  bool is_view() const { return base != nullptr; }
  /// A view whose elements are still read from its base (not copied out yet).
  bool reads_base() const { return base && !materialized; }

  /// Frees the value (nothing will read it again); the shape stays.
  void release() {
    if (!base) view_shape = value_.shape();
    value_ = no_array<T>();
    released = true;
    unpin_base();
  }

  Array<T> grad = no_array<T>();  // valid only when has_grad
  bool has_grad = false;
  bool requires_grad = false;
  bool is_leaf = true;
  bool retain_grad = false;
  bool released = false;
  const char* op = "leaf";
  const void* tape = nullptr;  // where it was recorded (non-leaves)
  std::uint64_t epoch = 0;
  std::size_t index = 0;  // record index on that tape
  // Of this node's owners, how many are the engine's (tape records, views' base pointers), and
  // how many of those will read its value. With no other owner and no reader it is released.
  std::uint32_t engine_refs = 0;
  mutable std::uint32_t pins = 0;

  // A view's base (dense, immutable: a recorded result), its shape and its window.
  std::shared_ptr<Node> base;
  Shape view_shape;
  Window window;

 private:
  [[noreturn]] void throw_released() const;
  void unpin_base() const {
    if (!pins_base) return;
    pins_base = false;
    --base->pins;
    try_release(base);
  }
  void materialize() const {
    Array<T> v = Array<T>::from_shape(view_shape);
    Runs<T>{base->value_.data() + window.offset, window.rows, window.cols, window.ld}.copy_to(v.data());
    value_ = std::move(v);
    materialized = true;
    unpin_base();  // it has its own copy now
  }
  mutable Array<T> value_;
  mutable bool materialized = false;
  mutable bool pins_base = false;
};

/// Releases a recorded value that nothing can read any more: no handle outside the engine, no
/// record or view that reads it.
template <class T>
void try_release(const std::shared_ptr<Node<T>>& n) {
  if (!n->is_leaf && !n->released && n->pins == 0 &&
      n.use_count() == static_cast<long>(n->engine_refs))
    n->release();
}

template <class T>
using NodePtr = std::shared_ptr<Node<T>>;

/// A new node, its control block and the node in one block from the pool.
template <class T, class... A>
NodePtr<T> make_node(A&&... a) {
  return std::allocate_shared<Node<T>>(PoolAllocator<Node<T>>(), std::forward<A>(a)...);
}

template <class A, class B>
bool same_shape(const A& a, const B& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

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
  /// Dropping the last handle to an intermediate that no backward reads frees its value.
  ~Var() {
    if (node_ && node_->engine_refs && !node_->released && node_->pins == 0 &&
        node_.use_count() == static_cast<long>(node_->engine_refs) + 1 && !node_->is_leaf)
      node_->release();
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

  bool requires_grad() const { return node_ && node_->requires_grad; }
  /// Leaves only: start or stop tracking gradients.
  Var& set_requires_grad(bool on);
  bool is_leaf() const { return node().is_leaf; }
  /// The name of the op that produced this value ("leaf" for leaves).
  const char* op() const { return node().op; }

  bool has_grad() const { return node_ && node_->has_grad; }
  /// dL/d(this) after backward. Throws TapeError when no gradient has arrived.
  const Array<T>& grad() const;
  Array<T>& mutable_grad();
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

  /// Internal handle (ops and the tape use it).
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

/// What an op's backward sees: the upstream gradient, the forward output and inputs, and a way
/// to add into each input's gradient.
///
///     // y = exp(x)     dx = dy * y
///     [](Backward<float>& b) { b.add(0, b.grad() * b.out()); }
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
  bool needs(std::size_t i) const { return input(i, "needs").requires_grad; }

  /// Adds `g` into input i's gradient. A broadcast `g` (larger than the input) is first summed
  /// back to the input's shape; any other shape mismatch is a ShapeError naming the op.
  template <class E>
  void add(std::size_t i, E&& g);

  /// Input i's gradient buffer for kernels that accumulate in place (BLAS with beta, scatter).
  /// `fresh` is set when the buffer is new and uninitialised: the kernel must assign (beta = 0).
  Array<T>& buffer(std::size_t i, bool& fresh);
  /// Input i's gradient buffer, zero-filled if it is new.
  Array<T>& zeroed_buffer(std::size_t i);
  /// Adds the upstream gradient into window `w` of input i's gradient (for ops whose output is
  /// a window of their input: slice, select, reshape).
  void add_window(std::size_t i, const detail::Window& w);

  const char* op() const { return op_; }

 private:
  friend class Tape<T>;
  void add_array(std::size_t i, Array<T>&& g);
  /// Input i's node; every accessor taking an input index goes through here, so a bad index is a
  /// TapeError naming the op, the index and the number of inputs (in every build type).
  detail::Node<T>& input(std::size_t i, const char* accessor) const;
  Array<T>* grad_ = nullptr;
  Saves saves_;
  bool may_take_ = false;
  void add_to_base(detail::Node<T>& view, Array<T>&& g);
  static void add_runs(detail::Node<T>& n, const detail::Window& w, const T* g);
  const detail::Node<T>* out_ = nullptr;
  const std::vector<detail::NodePtr<T>>* inputs_ = nullptr;
  const char* op_ = "";
};

/// The list of records. Clearing keeps its capacity, so a training loop that records the same
/// ops every step stops allocating record storage after the first step.
template <class T>
class Tape {
 public:
  using BackwardFn = detail::SmallFn<void(Backward<T>&)>;

  Tape() = default;
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  /// This thread's current tape for element type T.
  static Tape& current();

  /// Makes `tape` current on this thread until the scope ends.
  class Scope {
   public:
    explicit Scope(Tape& tape);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Tape* prev_;
  };

  /// Number of live records.
  std::size_t size() const { return size_; }
  /// Record slots allocated (does not shrink on clear).
  std::size_t capacity() const { return records_.size(); }
  /// Drops every record (releasing intermediates) but keeps the slots.
  void clear();
  /// Incremented by every clear; values recorded in an older epoch cannot be backpropagated.
  std::uint64_t epoch() const { return epoch_; }

  /// Backpropagates from `loss` (a 0-d or one-element value unless `seed` is given), then clears
  /// the tape unless `retain_graph`.
  void backward(const Var<T>& loss, const Array<T>* seed = nullptr, bool retain_graph = false);

  /// The op names of the live records, one per line, numbered (for debugging).
  std::string dump() const;

  /// Whether an op over `inputs` is recorded: grad mode is on and some input requires grad.
  /// Throws TapeError for an undefined input or one recorded on a cleared or other tape.
  bool wants(const char* op, std::span<const Var<T>> inputs) const;
  /// Appends a record for `node` (the op's output) over `inputs`; `wants()` was true. Returns the
  /// output Var. `record()` below is the way to call it.
  Var<T> append(const char* op, detail::NodePtr<T> node, std::span<const Var<T>> inputs,
                BackwardFn&& fn, Saves saves = saves_all);

 private:
  struct Record {
    const char* op = "";
    detail::NodePtr<T> out;
    std::vector<detail::NodePtr<T>> inputs;
    BackwardFn fn;
    Saves saves;
  };
  void release(Record& r);
  std::vector<Record> records_;
  std::size_t size_ = 0;
  std::uint64_t epoch_ = 1;
};

namespace detail {
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
}  // namespace detail

/// Records an op: the mechanism every built-in op uses, and the public custom-op API.
///
/// `value` is the forward result; `inputs` are the Vars it was computed from; `backward` is
/// called with a Backward<T>& during the reverse walk and adds each input's gradient. When no
/// input requires grad (or inside NoGradGuard) nothing is recorded and the closure is dropped.
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
namespace detail {
/// The NaN/Inf check of anomaly mode on a new result.
template <class T>
void check_anomaly(const char* op, const Array<T>& value, std::size_t record_no);
}  // namespace detail

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

namespace detail {
/// `x` seen through window `w` of its row-major layout, with shape `s`: the output of slice,
/// select and reshape; backward adds the gradient into that window. The result shares x's
/// storage when x is a recorded result (immutable); it is a copy when x is a leaf, whose value
/// an optimizer may update in place.
template <class T>
Var<T> window_op(const char* op, const Var<T>& x, Shape s, Window w);
}  // namespace detail

/// Frees functions on Var for symmetry with the ops: `backward(loss)`.
template <class T>
void backward(const Var<T>& loss, bool retain_graph = false) {
  loss.backward(retain_graph);
}

// ---- Backward<T>::add ----------------------------------------------------------------------
template <class T>
template <class E>
void Backward<T>::add(std::size_t i, E&& g) {
  detail::Node<T>& n = input(i, "add");
  if (!n.requires_grad) return;
  // A view passes its gradient straight into its base's window (its own record then has
  // nothing left to do), unless the view keeps its own gradient.
  const bool to_base = n.is_view() && !n.retain_grad && detail::same_shape(g.shape(), n.shape());
  if constexpr (std::is_same_v<std::decay_t<E>, Array<T>>) {
    if (to_base) {
      if constexpr (!std::is_lvalue_reference_v<E>) {
        add_to_base(n, std::move(g));
      } else {
        add_to_base(n, Array<T>(g));
      }
      return;
    }
    if (n.has_grad && detail::same_shape(g.shape(), n.shape())) {
      xt::noalias(n.grad) += g;
      return;
    }
    if constexpr (!std::is_lvalue_reference_v<E>) {
      add_array(i, std::move(g));
    } else {
      add_array(i, Array<T>(g));
    }
  } else {
    if (!to_base && n.has_grad && detail::same_shape(g.shape(), n.shape())) {
      xt::noalias(n.grad) += g;  // no temporary: the gradient buffer is not an operand
      return;
    }
    Array<T> tmp = empty<T>(Shape(g.shape().begin(), g.shape().end()));
    xt::noalias(tmp) = g;
    if (to_base) {
      add_to_base(n, std::move(tmp));
    } else {
      add_array(i, std::move(tmp));
    }
  }
}

}  // namespace xg
