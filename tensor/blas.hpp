// Matrix multiply through BLAS (OpenBLAS). Transposes are flags, never copies; `beta = 1`
// accumulates into the output (how gradients are added).
#pragma once

#include <string_view>

#include <xgrad/tensor/tensor.hpp>

namespace xg {

enum class Trans : bool { No = false, Yes = true };
inline constexpr Trans NoTrans = Trans::No;
inline constexpr Trans DoTrans = Trans::Yes;

/// Raw row-major GEMM: C[M,N] = alpha * op(A) op(B) + beta * C. Leading dims are row lengths of
/// the stored (untransposed) matrices. Wraps cblas_sgemm / cblas_dgemm.
template <class T>
void gemm_raw(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
              std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

/// Shape of op(a) @ op(b) for 2-D or batched 3-D operands; throws ShapeError naming `op`:
/// `matmul: lhs (4, 3) and rhs (2, 5) cannot be multiplied (3 != 2)`.
/// Rules: 2-D x 2-D -> [M, N]; [Bt, M, K] x [K, N] -> [Bt, M, N]; [K?] 2-D x 3-D -> [Bt, M, N];
/// 3-D x 3-D needs equal batch sizes. Transposes swap the last two dims.
Shape matmul_shape(std::string_view op, const Shape& a, const Shape& b, Trans ta, Trans tb);

/// c = alpha * op(a) @ op(b) + beta * c. `c` must already have matmul_shape(...) when beta != 0;
/// with beta == 0 it is resized. Operands must be contiguous row-major (every Array is).
template <class T>
void matmul_into(const Array<T>& a, const Array<T>& b, Array<T>& c, Trans ta = NoTrans,
                 Trans tb = NoTrans, T alpha = T(1), T beta = T(0));

/// op(a) @ op(b) as a new array: `Array<float> y = matmul(x, w, NoTrans, DoTrans);` (x w^T).
template <class T>
Array<T> matmul(const Array<T>& a, const Array<T>& b, Trans ta = NoTrans, Trans tb = NoTrans);

/// Number of BLAS threads (OpenBLAS). 0 or negative leaves it unchanged. Results can differ in
/// the last bits between thread counts (the sums are split differently): for bit-identical runs,
/// keep the thread count the same.
void set_blas_threads(int n);
int blas_threads();

}  // namespace xg
