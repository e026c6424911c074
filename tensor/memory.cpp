#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include <xgrad/tensor/tensor.hpp>

namespace xg {

// A training step allocates and frees the same few array sizes over and over. glibc serves
// blocks of 128 KiB and more (a [32, 1024] float gate matrix) with mmap and returns them with
// munmap, so every op paid fresh page faults: a third of an LSTM's backward pass. Keeping such
// blocks in the heap makes the next step reuse them, like a per-step buffer pool.
bool tune_allocator() {
  static const bool done = [] {
    const char* env = std::getenv("XGRAD_MALLOC_TUNING");
    if (env && std::strcmp(env, "0") == 0) return false;
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // glibc's maximum
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    mallopt(M_TOP_PAD, 16 * 1024 * 1024);
    return true;
  }();
  return done;
}

}  // namespace xg
