// Reductions over given axes (with keepdims) and the normalising activations (softmax family).
#pragma once

#include <cstddef>
#include <vector>

#include <xgrad/autograd/var.hpp>

namespace xg {

using Axes = std::vector<std::ptrdiff_t>;

/// Sum of all elements (0-d).              dx = g broadcast
template <class T> Var<T> sum(const Var<T>& x);
/// Sum over `axes` (negative counts from the end); keepdims keeps them as size 1.
template <class T> Var<T> sum(const Var<T>& x, const Axes& axes, bool keepdims = false);
/// Mean of all elements (0-d).             dx = g / n
template <class T> Var<T> mean(const Var<T>& x);
template <class T> Var<T> mean(const Var<T>& x, const Axes& axes, bool keepdims = false);
/// Maximum along one axis.                 dx = g at the (first) arg-max, 0 elsewhere
template <class T> Var<T> max(const Var<T>& x, std::ptrdiff_t axis, bool keepdims = false);
/// Maximum of all elements (0-d).
template <class T> Var<T> max(const Var<T>& x);
/// Euclidean norm of all elements: sqrt(sum x^2).     dx = g x / y
template <class T> Var<T> norm(const Var<T>& x);
/// Euclidean norm over `axes`.
template <class T> Var<T> norm(const Var<T>& x, const Axes& axes, bool keepdims = false);

/// softmax along `axis`: y = e^(x - max) / sum e^(x - max)      dx = y (g - sum(g y))
template <class T> Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis = -1);
/// log softmax along `axis` (stable).      dx = g - softmax(x) sum(g)
template <class T> Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis = -1);
/// log sum exp along `axis` (stable).      dx = g e^(x - y)
template <class T> Var<T> logsumexp(const Var<T>& x, std::ptrdiff_t axis = -1, bool keepdims = false);

}  // namespace xg
