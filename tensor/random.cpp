#include <cmath>
#include <sstream>

#include <fmt/format.h>

#include <xgrad/tensor/random.hpp>

namespace xg {

double Generator::normal01() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = 0.0;
  while (u1 <= 0.0) u1 = uniform01();
  const double u2 = uniform01();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 2.0 * M_PI * u2;
  spare_ = r * std::sin(t);
  has_spare_ = true;
  return r * std::cos(t);
}

std::uint64_t Generator::below(std::uint64_t n) {
  if (n == 0) throw ValueError("Generator::below: n must be positive");
  // Rejection sampling: unbiased and portable.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x;
  do x = engine_();
  while (x >= limit);
  return x % n;
}

std::string Generator::state() const {
  std::ostringstream os;
  os << engine_ << ' ' << has_spare_ << ' ' << fmt::format("{:a}", spare_);
  return os.str();
}

void Generator::set_state(const std::string& s) {
  std::istringstream is(s);
  std::mt19937_64 e;
  bool hs = false;
  std::string spare;
  is >> e >> hs >> spare;
  char* end = nullptr;
  const bool parsed = !is.fail();
  const double sp = parsed ? std::strtod(spare.c_str(), &end) : 0.0;
  std::string trailing;
  if (!parsed || (is >> trailing) || end != spare.c_str() + spare.size() || !std::isfinite(sp))
    throw ValueError(fmt::format("Generator::set_state: malformed state string '{}{}'",
                                 s.substr(0, 40), s.size() > 40 ? "..." : ""));
  engine_ = e;
  has_spare_ = hs;
  spare_ = sp;
}

template <class T>
Array<T> uniform(const Shape& shape, T lo, T hi, Generator& gen) {
  if (!(lo <= hi)) throw ValueError(fmt::format("uniform: lo {} must not exceed hi {}", lo, hi));
  Array<T> a = empty<T>(shape);
  for (T* v = a.data(); v != a.data() + a.size(); ++v) *v = static_cast<T>(lo + (hi - lo) * gen.uniform01());
  return a;
}

template <class T>
Array<T> normal(const Shape& shape, T mean, T stddev, Generator& gen) {
  if (!(stddev >= 0)) throw ValueError(fmt::format("normal: stddev {} must be >= 0", stddev));
  Array<T> a = empty<T>(shape);
  for (T* v = a.data(); v != a.data() + a.size(); ++v) *v = static_cast<T>(mean + stddev * gen.normal01());
  return a;
}

std::pair<std::size_t, std::size_t> fan_in_out(const Shape& shape) {
  if (shape.size() < 2)
    throw ShapeError(fmt::format("fan_in_out: a weight needs at least 2 dims, got {}", shape_str(shape)));
  std::size_t receptive = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

template <class T>
Array<T> xavier_uniform(const Shape& shape, Generator& gen, T gain) {
  auto [fi, fo] = fan_in_out(shape);
  const T a = gain * static_cast<T>(std::sqrt(6.0 / static_cast<double>(fi + fo)));
  return uniform<T>(shape, -a, a, gen);
}

template <class T>
Array<T> xavier_normal(const Shape& shape, Generator& gen, T gain) {
  auto [fi, fo] = fan_in_out(shape);
  return normal<T>(shape, T(0), gain * static_cast<T>(std::sqrt(2.0 / static_cast<double>(fi + fo))), gen);
}

template <class T>
Array<T> kaiming_uniform(const Shape& shape, Generator& gen, T gain) {
  const T b = gain * static_cast<T>(std::sqrt(3.0 / static_cast<double>(fan_in_out(shape).first)));
  return uniform<T>(shape, -b, b, gen);
}

template <class T>
Array<T> kaiming_normal(const Shape& shape, Generator& gen, T gain) {
  return normal<T>(shape, T(0), gain / static_cast<T>(std::sqrt(static_cast<double>(fan_in_out(shape).first))), gen);
}

#define XG_INSTANTIATE(T)                                                    \
  template Array<T> uniform(const Shape&, T, T, Generator&);                 \
  template Array<T> normal(const Shape&, T, T, Generator&);                  \
  template Array<T> xavier_uniform(const Shape&, Generator&, T);             \
  template Array<T> xavier_normal(const Shape&, Generator&, T);              \
  template Array<T> kaiming_uniform(const Shape&, Generator&, T);            \
  template Array<T> kaiming_normal(const Shape&, Generator&, T);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg
