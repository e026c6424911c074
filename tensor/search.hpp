// argmax, argmin and topk: plain functions of values, not ops. They return indices (and copies of
// values) and record nothing on the tape, so no gradient flows through them. For a
// differentiable maximum use max(); to pick values differentiably by these indices use gather().
//
//     IndexArray pred = argmax(logits.value(), -1);        // [B, C] -> [B]
//     auto [vals, idx] = topk(probs.value(), 5);            // the 5 largest along the last dim
#pragma once

#include <cstddef>

#include <xgrad/tensor/tensor.hpp>

namespace xg {

/// Index of the largest element along `axis` (the first one on ties; NaN counts as largest, as
/// in NumPy and PyTorch). The axis is removed unless keepdims.
template <class T>
IndexArray argmax(const Array<T>& x, std::ptrdiff_t axis, bool keepdims = false);
/// Index of the smallest element along `axis` (the first one on ties; NaN counts as smallest).
template <class T>
IndexArray argmin(const Array<T>& x, std::ptrdiff_t axis, bool keepdims = false);

/// The k largest (or smallest) entries along `axis` and their indices, sorted (largest first,
/// or smallest first), equal values in index order. Both have x's shape with that dim set to k.
template <class T>
struct TopK {
  Array<T> values;
  IndexArray indices;
};
template <class T>
TopK<T> topk(const Array<T>& x, std::size_t k, std::ptrdiff_t axis = -1, bool largest = true);

}  // namespace xg
