// Linear algebra ops: matrix products through BLAS with transposes as flags.
#pragma once

#include <vector>

#include <xgrad/autograd/var.hpp>
#include <xgrad/tensor/blas.hpp>

namespace xg {

/// op(a) @ op(b) for 2-D or batched 3-D operands (see matmul_shape); op = transpose when the
/// flag says so, which BLAS does without copying.
///   C = A B        dA = dC B^T        dB = A^T dC
/// `Var<float> y = matmul(x, w, NoTrans, DoTrans);   // x w^T, w stays [out, in]`
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, Trans ta = NoTrans, Trans tb = NoTrans);

/// c + op(a) @ op(b) in one BLAS call (beta = 1 into a copy of c, broadcast to the result's
/// shape): an RNN's gates are addmm(x_proj, h, W_hh, NoTrans, DoTrans).
///   dc = sum_to(g)    da, db as for matmul
template <class T>
Var<T> addmm(const Var<T>& c, const Var<T>& a, const Var<T>& b, Trans ta = NoTrans, Trans tb = NoTrans);

/// x W^T + b with W in [out, in] layout (PyTorch's), x of shape [..., in]; `b` may be undefined.
/// A composite: matmul (with the transpose as a BLAS flag) plus a broadcast add.
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b = Var<T>());

/// Swaps the last two dims (a copy): y = x^T        dx = dy^T
template <class T>
Var<T> transpose(const Var<T>& x);

/// Reorders dims: y.shape[i] = x.shape[axes[i]]        dx = permute(dy, inverse(axes))
template <class T>
Var<T> permute(const Var<T>& x, const std::vector<std::size_t>& axes);

}  // namespace xg
