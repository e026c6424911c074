// The engine: Var's and Backward's out-of-line parts, the tape's records and its reverse walk.
#include <exception>

#include <fmt/format.h>

#include <xgrad/autograd/tape.hpp>

namespace xg {

namespace detail {
bool& grad_mode() {
  thread_local bool on = true;
  return on;
}
bool& anomaly_mode() {
  thread_local bool on = false;
  return on;
}

template <class T>
void check_anomaly(const char* op, const Array<T>& value, std::size_t record_no) {
  if (!all_finite(value))
    throw AnomalyError(fmt::format("anomaly: '{}' (record #{}) produced a NaN or Inf in its output of "
                                   "shape {}",
                                   op, record_no, shape_str(value.shape())));
}
template void check_anomaly(const char*, const Array<float>&, std::size_t);
template void check_anomaly(const char*, const Array<double>&, std::size_t);

template <class T>
void Node<T>::throw_released() const {
  throw TapeError(fmt::format("the value of '{}' (shape {}) was freed: no handle held it and no "
                              "recorded backward declared that it reads it (see Saves)",
                              op_, shape_str(shape())));
}
template class Node<float>;
template class Node<double>;
}  // namespace detail

// ---- Var ------------------------------------------------------------------------------------

template <class T>
Var<T>::Var(Array<T> value, bool requires_grad) : node_(detail::make_node<T>(std::move(value))) {
  node_->requires_grad_ = requires_grad;
}

template <class T>
Var<T> Var<T>::scalar(T v, bool requires_grad) {
  Array<T> a = empty<T>(Shape{});
  a() = v;
  return Var(std::move(a), requires_grad);
}

template <class T>
detail::Node<T>& Var<T>::node() const {
  if (!node_) throw TapeError("Var: use of an undefined Var (default-constructed)");
  return *node_;
}

template <class T>
Array<T>& Var<T>::mutable_value() {
  if (!node().is_leaf())
    throw TapeError(fmt::format("Var::mutable_value: the result of '{}' is not a leaf; its value "
                                "may still be read by backward (detach() it first)",
                                node_->op()));
  return node_->mutable_value();
}

template <class T>
T Var<T>::item() const {
  if (size() != 1)
    throw ShapeError(fmt::format("item: needs exactly one element, got shape {}", shape_str(shape())));
  return *value().data();
}

template <class T>
Var<T>& Var<T>::set_requires_grad(bool on) {
  if (!node().is_leaf())
    throw TapeError(fmt::format("set_requires_grad: only leaves can change it, not the result of '{}'",
                                node_->op()));
  node_->requires_grad_ = on;
  return *this;
}

template <class T>
const Array<T>& Var<T>::grad() const {
  if (!has_grad())
    throw TapeError(fmt::format("grad: no gradient for this {} ('{}'); was backward run, and does "
                                "it require grad?",
                                defined() ? shape_str(shape()) : std::string("undefined Var"),
                                defined() ? op() : "-"));
  return node_->grad_;
}

template <class T>
Array<T>& Var<T>::mutable_grad() {
  return const_cast<Array<T>&>(static_cast<const Var&>(*this).grad());
}

template <class T>
Var<T>& Var<T>::set_grad(Array<T> g) {
  detail::Node<T>& n = node();
  if (!n.is_leaf())
    throw TapeError(fmt::format("set_grad: only leaves take a gradient from outside, not the result "
                                "of '{}'",
                                n.op()));
  if (!detail::same_shape(g.shape(), n.shape()))
    throw ShapeError(fmt::format("set_grad: gradient {} for a value of shape {}", shape_str(g.shape()),
                                 shape_str(n.shape())));
  n.grad_ = std::move(g);
  n.has_grad_ = true;
  return *this;
}

template <class T>
void Var<T>::zero_grad() {
  if (node_) {
    node_->has_grad_ = false;
    node_->grad_ = detail::no_array<T>();
  }
}

template <class T>
Var<T>& Var<T>::retain_grad() {
  node().retain_grad_ = true;
  return *this;
}

template <class T>
Var<T> Var<T>::detach() const {
  return Var(node().value(), false);
}

template <class T>
void Var<T>::backward(bool retain_graph) const {
  Tape<T>::current().backward(*this, nullptr, retain_graph);
}

template <class T>
void Var<T>::backward(const Array<T>& seed, bool retain_graph) const {
  Tape<T>::current().backward(*this, &seed, retain_graph);
}

// ---- Backward -------------------------------------------------------------------------------

template <class T>
detail::Node<T>& Backward<T>::input(std::size_t i, const char* accessor) const {
  const std::size_t n = inputs_->size();
  if (i >= n)
    throw TapeError(fmt::format("{} (backward): {}({}) names input {}, but '{}' was recorded with {} "
                                "input{}",
                                op_, accessor, i, i, op_, n, n == 1 ? "" : "s"));
  return *(*inputs_)[i];
}

template <class T>
const Array<T>& Backward<T>::in(std::size_t i) const {
  return in_node(i).value();
}

template <class T>
const detail::Node<T>& Backward<T>::in_node(std::size_t i) const {
  const detail::Node<T>& n = input(i, "in");
  if (!saves_.input(i))
    throw TapeError(fmt::format("{} (backward): in({}) reads input {} (the result of '{}', shape {}), "
                                "which the record's Saves does not declare (its value may already be "
                                "freed); declare it, e.g. saves_inputs(0b{:b}), or capture what "
                                "backward needs",
                                op_, i, i, n.op(), shape_str(n.shape()), saves_.inputs | (1u << i)));
  return n;
}

template <class T>
const Array<T>& Backward<T>::out() const {
  if (!saves_.out)
    throw TapeError(fmt::format("{} (backward): out() reads the output, which the record's Saves "
                                "does not declare (its value may already be freed); declare it "
                                "(saves_out, or Saves{{inputs, true}}) or capture what backward "
                                "needs",
                                op_));
  return out_->value();
}

template <class T>
Array<T> Backward<T>::take_grad() {
  if (may_take_) return std::move(*grad_);
  return *grad_;
}

// Everything add() does not do in place: sum a broadcast back to the input's shape, send a
// view's gradient into its base's window, accumulate or move in.
template <class T>
void Backward<T>::deliver(std::size_t i, detail::Node<T>& n, Array<T>&& g) {
  if (!detail::same_shape(g.shape(), n.shape())) {
    if (g.dimension() < n.shape().size() || g.size() < n.size())
      throw ShapeError(fmt::format("{} (backward): gradient {} for input {} of shape {}", op_,
                                   shape_str(g.shape()), i, shape_str(n.shape())));
    g = sum_to(g, n.shape());
  }
  if (n.is_view() && !n.retain_grad_) {
    // A view passes its gradient straight into its base's window (its own record then has
    // nothing left to do).
    detail::Node<T>& base = *n.base_;
    const detail::Window& w = n.window_;
    if (!base.has_grad_ && w.offset == 0 && w.rows * w.cols == base.size()) {
      g.reshape(base.shape());  // the view covers its base (a reshape): hand g over
      base.grad_ = std::move(g);
    } else {
      if (!base.has_grad_) base.grad_ = zeros<T>(base.shape());
      detail::add_window(base.grad_.data(), w, g.data());
    }
    base.has_grad_ = true;
    return;
  }
  if (n.has_grad_) {
    xt::noalias(n.grad_) += g;
  } else {
    n.grad_ = std::move(g);
    n.has_grad_ = true;
  }
}

// ---- Tape -----------------------------------------------------------------------------------

namespace {
template <class T>
Tape<T>*& current_slot() {
  thread_local Tape<T>* slot = nullptr;
  return slot;
}
}  // namespace

template <class T>
Tape<T>& Tape<T>::current() {
  Tape*& slot = current_slot<T>();
  if (slot) return *slot;
  static const bool tuned = tune_allocator();
  (void)tuned;
  thread_local Tape<T> default_tape;
  return default_tape;
}

template <class T>
Tape<T>::Scope::Scope(Tape& tape) : prev_(current_slot<T>()) {
  tune_allocator();
  current_slot<T>() = &tape;
}

template <class T>
Tape<T>::Scope::~Scope() {
  current_slot<T>() = prev_;
}

template <class T>
void Tape<T>::release(Record& r) {
  if (!r.out) return;  // already released by backward
  r.fn.reset();        // first: the closure's saved arrays go now
  for (std::size_t i = 0; i < r.inputs.size(); ++i) {
    detail::Node<T>& in = *r.inputs[i];
    --in.engine_refs_;
    if (r.saves.input(i)) --in.pins_;
  }
  --r.out->engine_refs_;
  if (r.saves.out) --r.out->pins_;
  // The release rule for every node this record held, once its own reference is gone.
  for (auto& in : r.inputs) {
    detail::NodePtr<T> keep = std::move(in);
    detail::Node<T>::release_if_unread(keep, 1);
  }
  r.inputs.clear();  // keeps capacity
  detail::Node<T>::release_if_unread(r.out, 1);
  r.out.reset();
}

template <class T>
void Tape<T>::clear() {
  for (std::size_t i = 0; i < size_; ++i) release(records_[i]);
  size_ = 0;
  ++epoch_;
}

template <class T>
bool Tape<T>::wants(const char* op, std::span<const Var<T>> inputs) const {
  if (!detail::grad_mode()) return false;
  bool needs = false;
  for (const Var<T>& in : inputs) {
    if (!in.defined()) throw TapeError(fmt::format("{}: an input is an undefined Var", op));
    const detail::Node<T>& n = *in.node_ptr();
    if (!n.requires_grad_) continue;
    needs = true;
    if (!n.is_leaf_ && (n.tape_ != this || n.epoch_ != epoch_))
      throw TapeError(fmt::format(
          "{}: an input (the result of '{}', shape {}) was recorded on a tape that has since been "
          "cleared or on another tape; call detach() on values carried across steps",
          op, n.op_, shape_str(n.shape())));
  }
  return needs;
}

template <class T>
Var<T> Tape<T>::append(const char* op, detail::NodePtr<T> node, std::span<const Var<T>> inputs,
                       BackwardFn&& fn, Saves saves) {
  node->requires_grad_ = true;
  node->is_leaf_ = false;
  node->op_ = op;
  node->tape_ = this;
  node->epoch_ = epoch_;
  node->index_ = size_;
  if (size_ == records_.size()) records_.emplace_back();
  Record& r = records_[size_++];
  r.op = op;
  r.out = node;
  ++node->engine_refs_;
  if (saves.out) ++node->pins_;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    detail::Node<T>& in = *inputs[i].node_ptr();
    ++in.engine_refs_;
    if (saves.input(i)) ++in.pins_;
    r.inputs.push_back(inputs[i].node_ptr());
  }
  r.fn = std::move(fn);
  r.saves = saves;
  return Var<T>::from_node(std::move(node));
}

template <class T>
void Tape<T>::backward(const Var<T>& loss, const Array<T>* seed, bool retain_graph) {
  if (!loss.defined()) throw TapeError("backward: the loss is an undefined Var");
  detail::Node<T>& ln = *loss.node_ptr();
  if (!ln.requires_grad_)
    throw TapeError(fmt::format("backward: the loss (shape {}, from '{}') does not require grad: no "
                                "input with requires_grad contributed to it, or it was computed "
                                "under NoGradGuard",
                                shape_str(ln.shape()), ln.op_));
  if (!ln.is_leaf_ && (ln.tape_ != this || ln.epoch_ != epoch_))
    throw TapeError(fmt::format("backward: the tape that recorded this loss ('{}') has been cleared "
                                "since (a second backward? pass retain_graph=true to the first)",
                                ln.op_));
  Array<T> g = detail::no_array<T>();
  if (seed) {
    check_same_shape("backward", "the seed gradient", seed->shape(), ln.shape());
    g = *seed;
  } else {
    if (ln.size() != 1)
      throw TapeError(fmt::format("backward: the loss has shape {}; backward from a non-scalar needs "
                                  "an explicit seed gradient",
                                  shape_str(ln.shape())));
    g = full<T>(ln.shape(), T(1));
  }
  if (ln.is_leaf_) {
    if (ln.has_grad_) {
      xt::noalias(ln.grad_) += g;
    } else {
      ln.grad_ = std::move(g);
      ln.has_grad_ = true;
    }
    return;
  }
  // Intermediate gradients from an earlier backward over a retained graph start again at zero.
  for (std::size_t k = 0; k <= ln.index_; ++k) records_[k].out->has_grad_ = false;
  ln.grad_ = std::move(g);
  ln.has_grad_ = true;

  const bool anomaly = detail::anomaly_mode();
  // Without retain_graph a record is dropped as soon as its backward has run: the saved values
  // only it kept alive are freed while the walk goes on, so the peak is the forward's, not the
  // forward's plus every gradient. A failed backward clears the tape (its graph is half spent).
  struct ClearOnThrow {
    Tape& tape;
    bool armed;
    ~ClearOnThrow() {
      if (armed && std::uncaught_exceptions()) tape.clear();
    }
  } guard{*this, !retain_graph};
  Backward<T> b;
  for (std::size_t k = ln.index_ + 1; k-- > 0;) {
    Record& r = records_[k];
    detail::Node<T>& out = *r.out;
    if (out.has_grad_) {
      b.grad_ = &out.grad_;
      b.may_take_ = !out.retain_grad_;
      b.out_ = &out;
      b.inputs_ = &r.inputs;
      b.op_ = r.op;
      b.saves_ = r.saves;
      r.fn(b);
      if (anomaly) {
        for (std::size_t i = 0; i < r.inputs.size(); ++i) {
          const auto& in = *r.inputs[i];
          if (in.has_grad_ && !all_finite(in.grad_))
            throw AnomalyError(fmt::format("anomaly: backward of '{}' (record #{}) produced a NaN or "
                                           "Inf in the gradient of its input {} (shape {})",
                                           r.op, k, i, shape_str(in.shape())));
        }
      }
      if (!out.retain_grad_) {  // consumed: free it now
        out.grad_ = detail::no_array<T>();
        out.has_grad_ = false;
      }
    }
    if (!retain_graph) release(r);
  }
  if (!retain_graph) clear();
}

template <class T>
std::string Tape<T>::dump() const {
  std::string s;
  for (std::size_t i = 0; i < size_; ++i) {
    const Record& r = records_[i];
    if (r.out) s += fmt::format("#{} {} -> {}\n", i, r.op, shape_str(r.out->shape()));
  }
  return s;
}

template class Var<float>;
template class Var<double>;
template class Backward<float>;
template class Backward<double>;
template class Tape<float>;
template class Tape<double>;

}  // namespace xg
