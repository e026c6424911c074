// The engine, part 1: the node behind every Var, and the life of a value.
//
// Life of a value
//   1. An op computes its result and `record()` wraps it in a Node (node and control block come
//      from the pool). When nothing is recorded (NoGradGuard, or no input requires grad) that is
//      all: the Node is a plain value, and no closure or record is built.
//   2. Otherwise the tape appends a record holding the output node and the input nodes. Those
//      are the engine's references (`engine_refs_`). The references that will read the value (a
//      record whose Saves declare it, a view reading its storage) are also its pins (`pins_`).
//   3. The program holds Vars. The release rule, the only one, is `release_if_unread()`: a
//      recorded result's value is freed once no Var outside the engine holds it and no pin is
//      left. It is applied wherever one of those goes away: a Var dies, a record is dropped, a
//      view copies its window out. So an LSTM's pre-activations are freed during the forward.
//   4. backward() walks the records in reverse. A record's output gradient is freed as soon as its
//      backward has run; without retain_graph the record is dropped there and then.
//   5. The tape's clear() drops what is left. A node goes back to the pool with its last owner.
//
// A view (slice, select, reshape of a recorded result) is a node with a window into its base's
// storage instead of an array of its own: it pins the base while it still reads from it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

#include <xgrad/tensor/tensor.hpp>

namespace xg {

template <class T>
class Var;
template <class T>
class Tape;
template <class T>
class Backward;

namespace detail {

/// An array with no elements (a default xarray is 0-d: one element).
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

/// dst's window w += g (g holds the window's rows * cols elements back to back).
template <class T>
void add_window(T* dst, const Window& w, const T* g) {
  dst += w.offset;
  for (std::size_t r = 0; r < w.rows; ++r, dst += w.ld, g += w.cols)
    for (std::size_t j = 0; j < w.cols; ++j) dst[j] += g[j];
}

template <class A, class B>
bool same_shape(const A& a, const B& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

template <class T>
class Node;
template <class T>
using NodePtr = std::shared_ptr<Node<T>>;

/// A new node, its control block and the node in one block from the pool.
template <class T, class... A>
NodePtr<T> make_node(A&&... a) {
  return std::allocate_shared<Node<T>>(PoolAllocator<Node<T>>(), std::forward<A>(a)...);
}

template <class T>
class Node {
 public:
  /// A value of its own (a leaf, or an op's result).
  explicit Node(Array<T>&& v) : value_(std::move(v)) {}
  /// A view: window `w` of `base`'s value, with shape `s`. Its own array stays empty until an op
  /// needs it whole (value()); view-aware ops read the base's storage in place (runs()).
  Node(NodePtr<T> base, Shape s, Window w)
      : base_(std::move(base)), view_shape_(std::move(s)), window_(w), value_(no_array<T>()) {
    ++base_->engine_refs_;
    ++base_->pins_;
    pins_base_ = true;
  }
  ~Node() {
    if (!base_) return;
    --base_->engine_refs_;
    if (pins_base_) --base_->pins_;
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const Shape& shape() const { return base_ || released_ ? view_shape_ : value_.shape(); }
  std::size_t size() const { return base_ ? window_.rows * window_.cols : shape_size(shape()); }
  /// The whole value (a view is copied out of its base once, on first use, and kept).
  const Array<T>& value() const {
    if (released_) throw_released();
    if (base_ && !materialized_) materialize();
    return value_;
  }
  /// The elements as runs: in place for a view, one run for a dense value.
  Runs<T> runs() const {
    if (released_) throw_released();
    if (reads_base()) return {base_->value_.data() + window_.offset, window_.rows, window_.cols, window_.ld};
    return {value_.data(), 1, value_.size(), value_.size()};
  }
  bool is_view() const { return base_ != nullptr; }
  /// A view whose elements are still read from its base (not copied out yet).
  bool reads_base() const { return base_ && !materialized_; }
  const NodePtr<T>& base() const { return base_; }
  const Window& window() const { return window_; }
  bool released() const { return released_; }
  bool is_leaf() const { return is_leaf_; }
  bool requires_grad() const { return requires_grad_; }
  bool retains_grad() const { return retain_grad_; }
  bool has_grad() const { return has_grad_; }
  const char* op() const { return op_; }

  /// The release rule (see the top of this file): frees `n`'s value when it is a recorded result
  /// that nothing can read any more. `leaving` owners of `n` are about to go (a dying Var).
  static void release_if_unread(const NodePtr<T>& n, long leaving = 0) {
    if (!n->is_leaf_ && !n->released_ && n->pins_ == 0 &&
        n.use_count() - leaving == static_cast<long>(n->engine_refs_))
      n->release();
  }

 private:
  friend class Var<T>;
  friend class Tape<T>;
  friend class Backward<T>;

  [[noreturn]] void throw_released() const;
  /// Frees the value (nothing will read it again); the shape stays.
  void release() {
    if (!base_) view_shape_ = value_.shape();
    value_ = no_array<T>();
    released_ = true;
    unpin_base();
  }
  void unpin_base() const {
    if (!pins_base_) return;
    pins_base_ = false;
    --base_->pins_;
    release_if_unread(base_);
  }
  void materialize() const {
    Array<T> v = Array<T>::from_shape(view_shape_);
    Runs<T>{base_->value_.data() + window_.offset, window_.rows, window_.cols, window_.ld}.copy_to(v.data());
    value_ = std::move(v);
    materialized_ = true;
    unpin_base();  // it has its own copy now
  }
  /// For in-place updates of a leaf; a view (a result taken under NoGradGuard) first becomes a
  /// copy of its own, so the update never reaches its base.
  Array<T>& mutable_value() {
    if (base_) {
      (void)value();
      unpin_base();
      --base_->engine_refs_;
      base_.reset();
    }
    return value_;
  }

  // A view's base (dense, immutable: a recorded result), its shape and its window.
  NodePtr<T> base_;
  Shape view_shape_;
  Window window_;
  mutable Array<T> value_;
  Array<T> grad_ = no_array<T>();  // valid only when has_grad_
  const char* op_ = "leaf";
  const void* tape_ = nullptr;  // where it was recorded (non-leaves)
  std::uint64_t epoch_ = 0;     // the tape's epoch then
  std::size_t index_ = 0;       // its record's index on that tape
  // Of this node's owners, how many are the engine's (records, views' base pointers), and how
  // many of those will read its value (pins).
  std::uint32_t engine_refs_ = 0;
  mutable std::uint32_t pins_ = 0;
  bool has_grad_ = false;
  bool requires_grad_ = false;
  bool is_leaf_ = true;
  bool retain_grad_ = false;
  bool released_ = false;
  mutable bool materialized_ = false;
  mutable bool pins_base_ = false;
};

}  // namespace detail
}  // namespace xg
