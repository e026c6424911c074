// Seeded random initialisation with an explicit engine: the same seed gives the same numbers on
// every platform (the distributions are ours, not the standard library's).
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include <xgrad/tensor/tensor.hpp>

namespace xg {

/// A random engine (64-bit Mersenne Twister) with portable uniform and normal draws.
/// `Generator gen(42); auto w = uniform<float>({3, 4}, -0.1f, 0.1f, gen);`
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 5489u) : engine_(seed) {}
  void seed(std::uint64_t s) { engine_.seed(s); }
  std::uint64_t next_u64() { return engine_(); }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform01() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
  double normal01();
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n);
  /// The full engine state as text, and back (checkpoints save it).
  std::string state() const;
  void set_state(const std::string& s);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

/// Uniform in [lo, hi).
template <class T>
Array<T> uniform(const Shape& shape, T lo, T hi, Generator& gen);

/// Normal with the given mean and standard deviation.
template <class T>
Array<T> normal(const Shape& shape, T mean, T stddev, Generator& gen);

/// Fan-in and fan-out of a weight shape as PyTorch computes them ([out, in, *receptive]).
std::pair<std::size_t, std::size_t> fan_in_out(const Shape& shape);

/// Xavier/Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).
template <class T>
Array<T> xavier_uniform(const Shape& shape, Generator& gen, T gain = T(1));

/// Xavier/Glorot normal: N(0, gain^2 * 2 / (fan_in + fan_out)).
template <class T>
Array<T> xavier_normal(const Shape& shape, Generator& gen, T gain = T(1));

/// Kaiming/He uniform for ReLU (fan_in mode): U(-b, b), b = gain * sqrt(3 / fan_in), gain = sqrt(2).
template <class T>
Array<T> kaiming_uniform(const Shape& shape, Generator& gen, T gain = T(1.4142135623730951));

/// Kaiming/He normal (fan_in mode): N(0, gain^2 / fan_in).
template <class T>
Array<T> kaiming_normal(const Shape& shape, Generator& gen, T gain = T(1.4142135623730951));

}  // namespace xg
