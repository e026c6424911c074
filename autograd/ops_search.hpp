// argmax, argmin and topk of a Var's value (tensor/search.hpp). They are not ops: they record
// nothing and return plain arrays, so no gradient flows through them.
//
//     IndexArray pred = argmax(logits, -1);
#pragma once

#include <xgrad/autograd/var.hpp>
#include <xgrad/tensor/search.hpp>

namespace xg {

template <class T>
IndexArray argmax(const Var<T>& x, std::ptrdiff_t axis, bool keepdims = false) {
  return argmax(x.value(), axis, keepdims);
}
template <class T>
IndexArray argmin(const Var<T>& x, std::ptrdiff_t axis, bool keepdims = false) {
  return argmin(x.value(), axis, keepdims);
}
template <class T>
TopK<T> topk(const Var<T>& x, std::size_t k, std::ptrdiff_t axis = -1, bool largest = true) {
  return topk(x.value(), k, axis, largest);
}

}  // namespace xg
