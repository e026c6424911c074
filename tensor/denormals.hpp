// Flush-to-zero (FTZ) and denormals-are-zero (DAZ): how this thread's float unit treats numbers
// below the smallest normal float (about 1.2e-38).
//
// Gradients deep in a long sequence shrink through many products of gate values below 1 and
// reach the denormal range, where x86 arithmetic is up to 100 times slower. With flushing on,
// a result that would be denormal becomes 0 (FTZ) and a denormal input is read as 0 (DAZ). The
// numbers that change are below 1.2e-38 (2.2e-308 in double), far under anything a training run
// can resolve.
//
//     xg::set_flush_denormals(true);   // once at the start of main(), and in every worker thread
//
// The setting belongs to the calling thread (two bits of the SSE control register MXCSR). On
// Linux a new thread starts with the mode of the thread that creates it, so calling it first thing
// in main() covers the threads main() starts later; threads that already run keep their own mode
// (OpenBLAS's worker threads, for one, start when the library loads).
#pragma once

namespace xg {

/// Turns flushing of denormal floats and doubles to zero on or off for the calling thread;
/// returns whether it was on before. Throws ValueError when `on` is requested on a processor
/// without the SSE control register (not x86), where there is no such mode to set.
bool set_flush_denormals(bool on);

/// Whether the calling thread flushes denormals to zero (both FTZ and DAZ set).
bool flush_denormals();

/// Sets the flushing mode for the lifetime of a scope and restores the previous mode after it.
///
///     { xg::FlushDenormalsGuard ftz(true); train(); }   // off again afterwards
class FlushDenormalsGuard {
 public:
  explicit FlushDenormalsGuard(bool on) : previous_(set_flush_denormals(on)) {}
  ~FlushDenormalsGuard() { set_flush_denormals(previous_); }
  FlushDenormalsGuard(const FlushDenormalsGuard&) = delete;
  FlushDenormalsGuard& operator=(const FlushDenormalsGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace xg
