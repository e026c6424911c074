// The engine, part 2: the tape, a Wengert list, and its reverse walk.
//
// append() adds one record per recorded op: the op's name, its output node, its input nodes,
// the backward closure and its Saves. backward() seeds the loss's gradient and walks the records
// from the loss's back to the first; a record whose output received a gradient calls its closure
// with a Backward (var.hpp), which adds into the inputs' gradients. No topological sort, no
// recursion: execution order is already a valid order. The public API (Var, record) is in
// var.hpp; the node and the release rule in node.hpp.
//
// Steady state: the record slots, their input lists and the closures' storage are kept across
// clear(), and nodes and arrays come from the pool, so after a training loop's first step a step
// allocates nothing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <xgrad/autograd/small_fn.hpp>
#include <xgrad/autograd/var.hpp>

namespace xg {

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
  /// Appends a record for `node` (the op's output) over `inputs`; wants() was true. Returns the
  /// output Var. `record()` is the way to call it.
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
  /// Drops a record's references (closure first, then the nodes), applying the release rule.
  void release(Record& r);
  std::vector<Record> records_;
  std::size_t size_ = 0;
  std::uint64_t epoch_ = 1;
};

}  // namespace xg
