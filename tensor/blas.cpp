// The only translation unit that includes <cblas.h> (it clashes with xtensor-blas headers).
#include <cblas.h>

#include <fmt/format.h>

#include <xgrad/tensor/blas.hpp>

namespace xg {

namespace {
CBLAS_TRANSPOSE flag(Trans t) { return t == Trans::Yes ? CblasTrans : CblasNoTrans; }
int as_int(std::size_t v) { return static_cast<int>(v); }
}  // namespace

template <>
void gemm_raw<float>(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, float alpha,
                     const float* A, std::size_t lda, const float* B, std::size_t ldb, float beta,
                     float* C, std::size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // BLAS would not scale C by beta on every implementation: do it here.
    for (std::size_t i = 0; i < M; ++i)
      for (std::size_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, flag(ta), flag(tb), as_int(M), as_int(N), as_int(K), alpha, A,
              as_int(lda), B, as_int(ldb), beta, C, as_int(ldc));
}

template <>
void gemm_raw<double>(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, double alpha,
                      const double* A, std::size_t lda, const double* B, std::size_t ldb,
                      double beta, double* C, std::size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (std::size_t i = 0; i < M; ++i)
      for (std::size_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0. ? 0. : beta * C[i * ldc + j];
    return;
  }
  cblas_dgemm(CblasRowMajor, flag(ta), flag(tb), as_int(M), as_int(N), as_int(K), alpha, A,
              as_int(lda), B, as_int(ldb), beta, C, as_int(ldc));
}

Shape matmul_shape(std::string_view op, const Shape& a, const Shape& b, Trans ta, Trans tb) {
  auto fail = [&](std::string_view why) {
    return ShapeError(fmt::format("{}: lhs {}{} and rhs {}{} cannot be multiplied ({})", op,
                                  shape_str(a), ta == Trans::Yes ? "^T" : "", shape_str(b),
                                  tb == Trans::Yes ? "^T" : "", why));
  };
  if (a.size() < 2 || a.size() > 3 || b.size() < 2 || b.size() > 3)
    throw fail("operands must be 2-D or 3-D");
  const std::size_t ra = a.size(), rb = b.size();
  const std::size_t m = ta == Trans::Yes ? a[ra - 1] : a[ra - 2];
  const std::size_t ka = ta == Trans::Yes ? a[ra - 2] : a[ra - 1];
  const std::size_t kb = tb == Trans::Yes ? b[rb - 1] : b[rb - 2];
  const std::size_t n = tb == Trans::Yes ? b[rb - 2] : b[rb - 1];
  if (ka != kb) throw fail(fmt::format("{} != {}", ka, kb));
  if (ra == 2 && rb == 2) return Shape{m, n};
  if (ra == 3 && rb == 3 && a[0] != b[0])
    throw fail(fmt::format("batch sizes {} != {}", a[0], b[0]));
  return Shape{ra == 3 ? a[0] : b[0], m, n};
}

template <class T>
void matmul_into(const Array<T>& a, const Array<T>& b, Array<T>& c, Trans ta, Trans tb, T alpha,
                 T beta) {
  const Shape out = matmul_shape("matmul", a.shape(), b.shape(), ta, tb);
  if (beta == T(0)) {
    if (c.shape() != out) c.resize(out);
  } else {
    check_same_shape("matmul", "the accumulated output", c.shape(), out);
  }
  const std::size_t ra = a.dimension(), rb = b.dimension();
  const std::size_t a_rows = a.shape(ra - 2), a_cols = a.shape(ra - 1);
  const std::size_t b_rows = b.shape(rb - 2), b_cols = b.shape(rb - 1);
  const std::size_t M = ta == Trans::Yes ? a_cols : a_rows;
  const std::size_t K = ta == Trans::Yes ? a_rows : a_cols;
  const std::size_t N = tb == Trans::Yes ? b_rows : b_cols;
  if (ra == 2 && rb == 2) {
    gemm_raw<T>(ta, tb, M, N, K, alpha, a.data(), a_cols, b.data(), b_cols, beta, c.data(), N);
    return;
  }
  const std::size_t batch = out[0];
  if (ra == 3 && rb == 2 && ta == Trans::No) {  // [Bt, M, K] x [K, N]: one GEMM over Bt*M rows
    gemm_raw<T>(ta, tb, batch * M, N, K, alpha, a.data(), a_cols, b.data(), b_cols, beta, c.data(), N);
    return;
  }
  const std::size_t sa = ra == 3 ? a_rows * a_cols : 0;
  const std::size_t sb = rb == 3 ? b_rows * b_cols : 0;
  for (std::size_t i = 0; i < batch; ++i)
    gemm_raw<T>(ta, tb, M, N, K, alpha, a.data() + i * sa, a_cols, b.data() + i * sb, b_cols, beta,
                c.data() + i * M * N, N);
}

template <class T>
Array<T> matmul(const Array<T>& a, const Array<T>& b, Trans ta, Trans tb) {
  Array<T> c = empty<T>(matmul_shape("matmul", a.shape(), b.shape(), ta, tb));
  matmul_into<T>(a, b, c, ta, tb, T(1), T(0));
  return c;
}

void set_blas_threads(int n) {
  if (n > 0) openblas_set_num_threads(n);
}
int blas_threads() { return openblas_get_num_threads(); }

template void matmul_into(const Array<float>&, const Array<float>&, Array<float>&, Trans, Trans,
                          float, float);
template void matmul_into(const Array<double>&, const Array<double>&, Array<double>&, Trans, Trans,
                          double, double);
template Array<float> matmul(const Array<float>&, const Array<float>&, Trans, Trans);
template Array<double> matmul(const Array<double>&, const Array<double>&, Trans, Trans);

}  // namespace xg
