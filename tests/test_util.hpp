// Helpers shared by the test suites.
#pragma once

#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include <xgrad/xgrad.hpp>

namespace xg::test {

/// Predicate for BOOST_CHECK_EXCEPTION: the message contains every given piece.
struct mentions {
  std::vector<std::string> parts;
  mentions(std::initializer_list<std::string> p) : parts(p) {}
  explicit mentions(std::string p) : parts{std::move(p)} {}
  bool operator()(const std::exception& e) const {
    const std::string what = e.what();
    for (const auto& p : parts)
      if (what.find(p) == std::string::npos) {
        BOOST_TEST_MESSAGE("message '" << what << "' lacks '" << p << "'");
        return false;
      }
    return true;
  }
};

/// Seeded random array in [lo, hi).
template <class T = double>
Array<T> rnd(const Shape& s, std::uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  return uniform<T>(s, static_cast<T>(lo), static_cast<T>(hi), g);
}

/// Runs gradcheck in float64 and asserts it passed, printing the report on failure.
inline void expect_gradcheck(const GradcheckFn<double>& f, const std::vector<Array<double>>& xs,
                             GradcheckOptions o = {}) {
  GradcheckReport r = gradcheck<double>(f, xs, o);
  BOOST_TEST(r.pass, fmt::format("{}", r));
  for (const auto& in : r.inputs) BOOST_TEST_MESSAGE(fmt::format("input {} max abs err {:.2e}", in.input, in.max_abs_error));
}

/// Same, for a function of existing leaves (module parameters and inputs).
inline void expect_gradcheck(const std::function<Var<double>()>& f, const std::vector<Var<double>>& leaves,
                             GradcheckOptions o = {}) {
  GradcheckReport r = gradcheck<double>(f, leaves, o);
  BOOST_TEST(r.pass, fmt::format("{}", r));
}

/// Leaves that require grad, for gradcheck inputs.
inline Var<double> leaf(const Array<double>& a) { return Var<double>(a, true); }

/// inputs followed by every parameter of the modules.
template <class... M>
std::vector<Var<double>> with_params(std::vector<Var<double>> inputs, const M&... mods) {
  (..., [&] { for (auto& p : mods.parameters()) inputs.push_back(p); }());
  return inputs;
}

template <class T>
bool close(const Array<T>& a, const Array<T>& b, double rtol = 1e-12, double atol = 1e-12) {
  return a.shape() == b.shape() && xt::allclose(a, b, rtol, atol);
}

}  // namespace xg::test
