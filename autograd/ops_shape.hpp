// Shape ops: reshape, slice, split, concat, stack, index_select / gather / embedding, pad.
// reshape, slice and select of a recorded result are views: windows of its storage, read in
// place (a window of a leaf is a copy). Their backward adds the gradient into that window of the
// input's gradient. The other ops here copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <span>
#include <vector>

#include <xgrad/autograd/var.hpp>

namespace xg {

/// Same data, new shape (one dim may be -1).     dx = reshape(dy, x.shape)
template <class T>
Var<T> reshape(const Var<T>& x, std::initializer_list<std::ptrdiff_t> dims);
template <class T>
Var<T> reshape(const Var<T>& x, const std::vector<std::ptrdiff_t>& dims);
template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape);

/// Inserts a size-1 dim at `axis` / removes the size-1 dim at `axis`.
template <class T>
Var<T> unsqueeze(const Var<T>& x, std::ptrdiff_t axis);
template <class T>
Var<T> squeeze(const Var<T>& x, std::ptrdiff_t axis);

/// Elements [start, start + length) along `axis` (torch.narrow).
///   dx = g placed into that block, zero elsewhere
template <class T>
Var<T> slice(const Var<T>& x, std::ptrdiff_t axis, std::size_t start, std::size_t length);

/// x.select(axis, i): the slice at index i with that dim removed.
template <class T>
Var<T> select(const Var<T>& x, std::ptrdiff_t axis, std::size_t index);

/// Splits `axis` into pieces of the given sizes (which must add up to the dim).
template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis);

/// Splits `axis` into `n` pieces of ceil(dim / n) (the last may be smaller), as torch.chunk.
template <class T>
std::vector<Var<T>> chunk(const Var<T>& x, std::size_t n, std::ptrdiff_t axis);

/// Joins along an existing axis; all other dims must match.   dx_i = the i-th block of g
template <class T>
Var<T> concat(std::span<const Var<T>> xs, std::ptrdiff_t axis);

/// Joins along a new axis; all shapes must be equal.
template <class T>
Var<T> stack(std::span<const Var<T>> xs, std::ptrdiff_t axis = 0);

/// The same from a vector (any allocator) or a brace list, deducing T: `concat({a, b}, 1)`.
template <class T, class A>
Var<T> concat(const std::vector<Var<T>, A>& xs, std::ptrdiff_t axis) {
  return concat(std::span<const Var<T>>(xs), axis);
}
template <class T, class A>
Var<T> stack(const std::vector<Var<T>, A>& xs, std::ptrdiff_t axis = 0) {
  return stack(std::span<const Var<T>>(xs), axis);
}
template <class T>
Var<T> concat(std::initializer_list<Var<T>> xs, std::ptrdiff_t axis) {
  return concat(std::span<const Var<T>>(xs.begin(), xs.size()), axis);
}
template <class T>
Var<T> stack(std::initializer_list<Var<T>> xs, std::ptrdiff_t axis = 0) {
  return stack(std::span<const Var<T>>(xs.begin(), xs.size()), axis);
}

/// Picks entries of `axis` by index (repeats allowed).   dx = scatter-add of g (repeats add up)
template <class T>
Var<T> index_select(const Var<T>& x, std::ptrdiff_t axis, const IndexArray& index);

/// Embedding lookup: rows of weight [V, D] for ids of any shape -> [ids..., D].
/// Gradients of repeated ids accumulate.
template <class T>
Var<T> embedding(const Var<T>& weight, const IndexArray& ids);
/// The same, except that no gradient reaches row `padding_idx` (negative counts from the end),
/// as torch.nn.functional.embedding's padding_idx.   dw[id] += g for every id != padding_idx
template <class T>
Var<T> embedding(const Var<T>& weight, const IndexArray& ids, std::int64_t padding_idx);

/// torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (index has x's rank).
///   dx = scatter-add of g at the gathered positions
template <class T>
Var<T> gather(const Var<T>& x, std::ptrdiff_t axis, const IndexArray& index);

/// Pads every dim with (before, after) copies of `value`.    dx = the interior block of g
template <class T>
Var<T> pad(const Var<T>& x, const std::vector<std::pair<std::size_t, std::size_t>>& widths,
           T value = T(0));

}  // namespace xg
