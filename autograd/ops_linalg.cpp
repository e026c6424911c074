#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xtensor/xbroadcast.hpp>

#include <xgrad/autograd/ops_elementwise.hpp>
#include <xgrad/autograd/ops_linalg.hpp>
#include <xgrad/autograd/ops_shape.hpp>

namespace xg {

namespace {
Trans flip(Trans t) { return t == Trans::Yes ? Trans::No : Trans::Yes; }

// out (+)= op(X) op(Y) for 2-D or 3-D operands. A 2-D `out` with 3-D operands sums the batch.
// `fresh` means out holds garbage and must be assigned. Two layouts fold the batch into one GEMM:
// [Bt,M,K] x [K,N] -> [Bt*M, N], and sum_b X_b^T Y_b -> X2^T Y2 with X2 = [Bt*M, K].
template <class T>
void product_into(const Array<T>& X, Trans tx, const Array<T>& Y, Trans ty, Array<T>& out,
                  bool fresh) {
  const std::size_t rx = X.dimension(), ry = Y.dimension(), ro = out.dimension();
  const std::size_t xr = X.shape(rx - 2), xc = X.shape(rx - 1);
  const std::size_t yr = Y.shape(ry - 2), yc = Y.shape(ry - 1);
  const std::size_t M = tx == Trans::Yes ? xc : xr, K = tx == Trans::Yes ? xr : xc;
  const std::size_t N = ty == Trans::Yes ? yr : yc;
  const T beta0 = fresh ? T(0) : T(1);
  const std::size_t nb = rx == 3 ? X.shape(0) : (ry == 3 ? Y.shape(0) : 1);
  if (rx == 3 && ry == 2 && tx == Trans::No && ro == 3) {
    gemm_raw<T>(tx, ty, nb * M, N, K, T(1), X.data(), xc, Y.data(), yc, beta0, out.data(), N);
    return;
  }
  if (rx == 3 && ry == 3 && ro == 2 && tx == Trans::Yes && ty == Trans::No) {
    gemm_raw<T>(tx, ty, M, N, nb * xr, T(1), X.data(), xc, Y.data(), yc, beta0, out.data(), N);
    return;
  }
  for (std::size_t b = 0; b < nb; ++b) {
    const T* xp = X.data() + (rx == 3 ? b * xr * xc : 0);
    const T* yp = Y.data() + (ry == 3 ? b * yr * yc : 0);
    T* op = out.data() + (ro == 3 ? b * M * N : 0);
    const T beta = (ro == 3 || b == 0) ? beta0 : T(1);
    gemm_raw<T>(tx, ty, M, N, K, T(1), xp, xc, yp, yc, beta, op, N);
  }
}

// Adds the gradients of C = op(A) op(B) for A = input ia, B = input ib:
//   dA = dC op(B)^T   (A^T case: dA = op(B) dC^T)
//   dB = op(A)^T dC   (B^T case: dB = dC^T op(A))
template <class T>
void matmul_backward(Backward<T>& bw, std::size_t ia, std::size_t ib, Trans ta, Trans tb) {
  const Array<T>& A = bw.in(ia);
  const Array<T>& B = bw.in(ib);
  const Array<T>& dC = bw.grad();
  // BLAS writes (beta = 0) or accumulates (beta = 1) straight into the gradients.
  if (bw.needs(ia))
    bw.add(ia, in_place([&](Array<T>& dA, bool accumulate) {
      if (ta == Trans::No)
        product_into<T>(dC, Trans::No, B, flip(tb), dA, !accumulate);
      else
        product_into<T>(B, tb, dC, Trans::Yes, dA, !accumulate);
    }));
  if (bw.needs(ib))
    bw.add(ib, in_place([&](Array<T>& dB, bool accumulate) {
      if (tb == Trans::No)
        product_into<T>(A, flip(ta), dC, Trans::No, dB, !accumulate);
      else
        product_into<T>(dC, Trans::Yes, A, ta, dB, !accumulate);
    }));
}
}  // namespace

// C = op(A) op(B)
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, Trans ta, Trans tb) {
  Array<T> c = empty<T>(matmul_shape("matmul", a.shape(), b.shape(), ta, tb));
  matmul_into<T>(a.value(), b.value(), c, ta, tb, T(1), T(0));
  return record("matmul", std::move(c), {a, b},
                [ta, tb](Backward<T>& bw) { matmul_backward(bw, 0, 1, ta, tb); }, saves_inputs(0b11));
}

// Y = C + op(A) op(B)      dC = sum_to(dY), dA and dB as for matmul
template <class T>
Var<T> addmm(const Var<T>& c, const Var<T>& a, const Var<T>& b, Trans ta, Trans tb) {
  const Shape s = matmul_shape("addmm", a.shape(), b.shape(), ta, tb);
  Array<T> y = empty<T>(s);
  if (c.shape() == s) {  // raw pointers (xarray iterators are slow steppers); a view is read in place
    c.node_ptr()->runs().copy_to(y.data());
  } else {
    if (broadcast_shapes("addmm", c.shape(), s) != s)
      throw ShapeError(fmt::format("addmm: c {} does not broadcast to the product's shape {}",
                                   shape_str(c.shape()), shape_str(s)));
    const std::size_t n = c.size();
    const bool rows = c.dim() >= 1 && c.shape(c.dim() - 1) == n && n == s.back() && n > 0;  // a bias row
    if (rows) {
      for (T* row = y.data(); row != y.data() + y.size(); row += n)
        std::copy(c.value().data(), c.value().data() + n, row);
    } else {
      xt::noalias(y) = xt::broadcast(c.value(), s);
    }
  }
  matmul_into<T>(a.value(), b.value(), y, ta, tb, T(1), T(1));
  return record("addmm", std::move(y), {c, a, b}, [ta, tb](Backward<T>& bw) {
    matmul_backward(bw, 1, 2, ta, tb);
    bw.add(0, bw.take_grad());
  }, saves_inputs(0b110));
}

// y = x W^T + b
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
  if (x.dim() < 1 || w.dim() != 2 || x.shape(x.dim() - 1) != w.shape(1))
    throw ShapeError(fmt::format("linear: input {} and weight {} (expected [out, in] with in = {})",
                                 shape_str(x.shape()), shape_str(w.shape()),
                                 x.dim() ? x.shape(x.dim() - 1) : 0));
  if (b.defined() && (b.dim() != 1 || b.shape(0) != w.shape(0)))
    throw ShapeError(fmt::format("linear: bias {} does not match weight {} (expected ({},))",
                                 shape_str(b.shape()), shape_str(w.shape()), w.shape(0)));
  // [B, T, in] folds into one GEMM over B*T rows; the bias is the GEMM's starting value.
  auto product = [&](const Var<T>& x2) {
    return b.defined() ? addmm(b, x2, w, NoTrans, DoTrans) : matmul(x2, w, NoTrans, DoTrans);
  };
  if (x.dim() == 2 || x.dim() == 3) return product(x);
  Shape out = x.shape();
  out.back() = w.shape(0);
  const auto in = static_cast<std::ptrdiff_t>(w.shape(1));
  return reshape(product(reshape(x, {-1, in})), out);
}

// y = x^T (last two dims)       dx = dy^T
template <class T>
Var<T> transpose(const Var<T>& x) {
  if (x.dim() < 2)
    throw ShapeError(fmt::format("transpose: needs at least 2 dims, got {}", shape_str(x.shape())));
  std::vector<std::size_t> axes(x.dim());
  std::iota(axes.begin(), axes.end(), 0);
  std::swap(axes[axes.size() - 1], axes[axes.size() - 2]);
  return permute(x, axes);
}

// y = x permuted by axes        dx = dy permuted by the inverse
template <class T>
Var<T> permute(const Var<T>& x, const std::vector<std::size_t>& axes) {
  std::vector<std::size_t> inverse(axes.size(), axes.size());
  bool ok = axes.size() == x.dim();
  for (std::size_t i = 0; ok && i < axes.size(); ++i) {
    if (axes[i] >= axes.size() || inverse[axes[i]] != axes.size()) {
      ok = false;
    } else {
      inverse[axes[i]] = i;
    }
  }
  if (!ok)
    throw ShapeError(fmt::format("permute: axes ({}) are not a permutation of the {} dims of {}",
                                 fmt::join(axes, ", "), x.dim(), shape_str(x.shape())));
  Array<T> y = xt::transpose(x.value(), axes);
  return record("permute", std::move(y), {x}, [inverse](Backward<T>& bw) {
    bw.add(0, Array<T>(xt::transpose(bw.grad(), inverse)));
  }, saves_none);
}

#define XG_INSTANTIATE(T)                                                         \
  template Var<T> matmul(const Var<T>&, const Var<T>&, Trans, Trans);             \
  template Var<T> addmm(const Var<T>&, const Var<T>&, const Var<T>&, Trans, Trans); \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&);            \
  template Var<T> transpose(const Var<T>&);                                       \
  template Var<T> permute(const Var<T>&, const std::vector<std::size_t>&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg
