// NumPy .npy and .npz files: float32, float64 and int64 arrays, read and written compatibly with
// numpy.save / numpy.savez. Every malformed, truncated or mismatched file raises IoError naming
// the file and what is wrong; the reader never reads past the bytes it was given.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include <xgrad/tensor/tensor.hpp>

namespace xg {

/// The element types xgrad reads and writes.
enum class DType { Float32, Float64, Int64 };

/// "float32", "float64", "int64".
std::string_view dtype_name(DType d);

/// An array of any supported dtype, as read from a file.
using AnyArray = std::variant<Array<float>, Array<double>, IndexArray>;

DType dtype_of(const AnyArray& a);
const Shape& shape_of(const AnyArray& a);

/// Converts to element type T (float32 <-> float64 freely; int64 only to int64 or exactly
/// representable floats). `what` names the source in errors (a file and key).
template <class T>
xt::xarray<T> array_cast(const AnyArray& a, std::string_view what);

/// Parses the bytes of a .npy file. `name` is used in error messages (a path or "file.npz:key").
/// Accepts little- and big-endian f4/f8/i8 (also i4, u1/b1 widened to int64), C and Fortran order,
/// format versions 1.0, 2.0 and 3.0.
AnyArray parse_npy(const char* data, std::size_t size, std::string_view name);

/// Serialises an array as .npy (version 1.0, little-endian, C order) bytes.
std::string npy_bytes(const AnyArray& a);

/// Reads a .npy file.
AnyArray load_npy(const std::string& path);

/// Reads a .npy file as element type T (see array_cast).
template <class T>
xt::xarray<T> load_npy_as(const std::string& path) {
  return array_cast<T>(load_npy(path), path);
}

/// Writes a .npy file atomically (temporary file, flush, rename over the target).
void save_npy(const std::string& path, const AnyArray& a);

/// Named arrays; ordered so files are written deterministically.
using ArrayMap = std::map<std::string, AnyArray, std::less<>>;

/// Parses the bytes of an .npz file (a zip archive of .npy entries, as numpy.savez writes).
/// Entry names lose their ".npy" suffix. Compressed entries (numpy.savez_compressed) and zip64
/// archives are reported as unsupported; entries whose sizes or CRC-32 disagree are rejected.
ArrayMap parse_npz(const char* data, std::size_t size, std::string_view name);

/// Reads an .npz file.
ArrayMap load_npz(const std::string& path);

/// Writes an .npz file (uncompressed zip, entries "<key>.npy", CRC-32 checked by numpy) atomically.
void save_npz(const std::string& path, const ArrayMap& arrays);

/// Writes `bytes` to `path` atomically: a temporary file in the same folder is written, flushed
/// (fsync) and renamed over `path`, so a crash never leaves a half-written file behind.
void write_file_atomic(const std::string& path, std::string_view bytes);

/// Reads a whole file; IoError names the path when it cannot be opened or read.
std::string read_file(const std::string& path);

}  // namespace xg
