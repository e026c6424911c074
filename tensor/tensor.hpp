// The value layer: the one header that includes xtensor.
//
// Values are contiguous row-major xtensor arrays (`xt::xarray` over xgrad's memory pool) for
// T = float (training) and double (gradient checks). Everything in xgrad that holds numbers holds
// an `Array<T>`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xview.hpp>

#include <xgrad/tensor/pool.hpp>

namespace xg {

/// An n-d array whose elements live in the pool (tensor/pool.hpp): after a training loop's first
/// step, making and dropping arrays reuses freed blocks instead of calling malloc.
template <class T>
using Array = xt::xarray<T, xt::layout_type::row_major, PoolAllocator<T>>;

/// Integer arrays (class indices, lengths, token ids).
using IndexArray = Array<std::int64_t>;

/// A shape: at most four dims live inline, so shapes cost no heap allocation.
using Shape = typename Array<float>::shape_type;

/// Bad shapes, axes or sizes given to an op. The message names the op and prints the shapes.
struct ShapeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Bad values or options (a negative learning rate, an index out of range, ...).
struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// A file that cannot be read or written, or that is malformed. The message names the file.
struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Keeps large freed blocks in the malloc heap instead of returning them to the OS after every
/// op (glibc's mmap threshold), so repeated training steps reuse memory. Called once by the
/// tape; set XGRAD_MALLOC_TUNING=0 to leave malloc alone. Returns whether tuning is active.
bool tune_allocator();

/// "(4, 3)": shapes as they appear in every error message.
std::string shape_str(const Shape& s);

/// Product of the dims (1 for a scalar shape).
std::size_t shape_size(const Shape& s);

/// Shape from any integer list: `to_shape({2, 3})`.
inline Shape to_shape(std::initializer_list<std::size_t> dims) { return Shape(dims); }

/// An uninitialised array of the given shape (the fast way to make an output buffer).
// GCC 12 reports a false -Wmaybe-uninitialized inside xtensor's svector when this is inlined
// with an empty (0-d) shape.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <class T>
Array<T> empty(const Shape& s) {
  return Array<T>::from_shape(s);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// An array of the given shape filled with `v` (much cheaper than xt::zeros on xarray).
template <class T>
Array<T> full(const Shape& s, T v) {
  return Array<T>(s, v);
}

template <class T>
Array<T> zeros(const Shape& s) {
  return Array<T>(s, T(0));
}

/// Normalises a possibly negative axis against `rank`; throws ShapeError naming `op`.
std::size_t normalize_axis(std::string_view op, std::ptrdiff_t axis, std::size_t rank);

/// A contiguous array seen as [outer, dim, inner] around one axis (kernels along an axis use it).
struct AxisLayout {
  std::size_t outer = 1, dim = 1, inner = 1;
};
AxisLayout axis_layout(const Shape& s, std::size_t axis);

/// NumPy broadcasting of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(std::string_view op, const Shape& a, const Shape& b);

/// Reduces a broadcast gradient back to an input's shape by summing the broadcast dims:
/// the inverse of NumPy broadcasting, used by every broadcasting op's backward.
/// `sum_to(g[2,3,4], (3,1))` sums over axis 0 and axis 2 (keeping it as size 1).
template <class T>
Array<T> sum_to(const Array<T>& g, const Shape& shape);

/// Sums over the given axes (sorted, unique, in range), keeping them as size-1 dims.
/// A plain loop: xtensor 0.24's immediate reducers crash in this build configuration.
template <class T>
Array<T> sum_axes(const Array<T>& a, const std::vector<std::size_t>& axes);

/// Throws ShapeError "op: <what> has shape (..) but (..) was expected".
void check_same_shape(std::string_view op, std::string_view what, const Shape& got,
                      const Shape& expected);

/// True when every element is finite.
template <class T>
bool all_finite(const Array<T>& a);

}  // namespace xg
