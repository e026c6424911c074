#include <xgrad/tensor/denormals.hpp>
#include <xgrad/tensor/tensor.hpp>

#if defined(__SSE2__) || defined(__x86_64__)
#include <xmmintrin.h>
#define XGRAD_HAVE_MXCSR 1
#endif

namespace xg {

#ifdef XGRAD_HAVE_MXCSR
namespace {
constexpr unsigned kFtz = 0x8000;  // MXCSR bit 15: flush to zero
constexpr unsigned kDaz = 0x0040;  // MXCSR bit 6: denormals are zero
}  // namespace

bool flush_denormals() {
  return (_mm_getcsr() & (kFtz | kDaz)) == (kFtz | kDaz);
}

bool set_flush_denormals(bool on) {
  const bool was = flush_denormals();
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(on ? (csr | kFtz | kDaz) : (csr & ~(kFtz | kDaz)));
  return was;
}
#else
bool flush_denormals() {
  return false;
}

bool set_flush_denormals(bool on) {
  if (on)
    throw ValueError(
        "set_flush_denormals: this processor has no flush-to-zero mode xgrad knows how to set "
        "(x86 SSE only)");
  return false;
}
#endif

}  // namespace xg
