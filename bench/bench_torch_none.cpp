// Built instead of bench_torch.cpp when LibTorch is not available (or XGRAD_BENCH_TORCH is OFF):
// bench_rnn then measures xgrad alone and says LibTorch was skipped.
#include "bench_backend.hpp"

#ifndef XGRAD_BENCH_TORCH_WHY
#define XGRAD_BENCH_TORCH_WHY "LibTorch was not found at configure time"
#endif

namespace bench {

std::unique_ptr<Backend> make_torch_backend(std::string& why) {
  why = XGRAD_BENCH_TORCH_WHY;
  return nullptr;
}

}  // namespace bench
