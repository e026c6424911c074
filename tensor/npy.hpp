// NumPy .npy and .npz files: float32, float64 and int64 arrays (and text, as numpy str), read and
// written compatibly with numpy.save / numpy.savez / numpy.savez_compressed. Every malformed,
// truncated or mismatched file raises IoError naming the file and what is wrong; the reader never
// reads past the bytes it was given, and never allocates more than its limits allow.
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

/// The one number held in `a` (any dtype, exactly one element, any shape); ValueError naming
/// `what` (a file and key) for an empty or larger array.
double scalar_of(const AnyArray& a, std::string_view what);
/// A count (a step or an epoch): one number that is whole, >= 0 and at most 2^53; ValueError
/// naming `what` for NaN, negative, fractional or absurd values.
std::uint64_t count_of(const AnyArray& a, std::string_view what);

/// Parses the bytes of a .npy file. `name` is used in error messages (a path or "file.npz:key").
/// Accepts little- and big-endian f4/f8/i8 (also i4, u1/b1 widened to int64), C and Fortran order,
/// format versions 1.0, 2.0 and 3.0. A text (numpy str) file raises IoError.
AnyArray parse_npy(const char* data, std::size_t size, std::string_view name);

/// A 0-d numpy str array ('<U', UTF-32) holding `utf8`, as .npy bytes: numpy.load reads it as text.
/// ValueError when `utf8` is not valid UTF-8 or contains NUL (numpy strips trailing NULs).
std::string text_npy_bytes(std::string_view utf8);
/// The text in a .npy holding a numpy str or bytes array (dtype '<U' or '|S' followed by a
/// length), 0-d or 1-d of one item, as UTF-8. IoError naming `name` when it is not text.
std::string parse_text_npy(const char* data, std::size_t size, std::string_view name);

/// Serialises an array as .npy (version 1.0, little-endian, C order) bytes.
std::string npy_bytes(const AnyArray& a);

/// Reads a .npy file (at most kMaxFileBytes).
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
/// Named texts (UTF-8), stored in .npz files as 0-d numpy str arrays.
using TextMap = std::map<std::string, std::string, std::less<>>;

/// Everything an .npz holds: number arrays and texts.
struct NpzContents {
  ArrayMap arrays;
  TextMap texts;
};

/// The most bytes the deflated (numpy.savez_compressed) entries of one .npz may inflate to, in
/// total (1 GiB): a small file claiming more is refused before anything is allocated.
inline constexpr std::size_t kMaxInflatedBytes = std::size_t(1) << 30;
/// The largest file read_file (and so every load) accepts: 4 GiB, the most a zip without zip64
/// can hold.
inline constexpr std::size_t kMaxFileBytes = std::size_t(4) << 30;

/// Parses the bytes of an .npz file (a zip archive of .npy entries, as numpy.savez and
/// numpy.savez_compressed write). Entry names lose their ".npy" suffix. Stored and deflated
/// entries are read (deflated ones within kMaxInflatedBytes); zip64 archives are unsupported;
/// entries whose sizes or CRC-32 disagree are rejected; PyTorch files (torch.save) and zips that
/// are not .npz get a message that says so. A text entry raises IoError (use parse_npz_contents).
ArrayMap parse_npz(const char* data, std::size_t size, std::string_view name);
/// The same, keeping text entries (numpy str arrays) apart from the number arrays; deflated
/// entries may inflate to `max_inflated` bytes in total.
NpzContents parse_npz_contents(const char* data, std::size_t size, std::string_view name,
                               std::size_t max_inflated = kMaxInflatedBytes);

/// Reads an .npz file.
ArrayMap load_npz(const std::string& path);

/// Writes an .npz file (uncompressed zip, entries "<key>.npy", CRC-32 checked by numpy)
/// atomically; `texts` become 0-d numpy str entries (keys must differ from the arrays').
void save_npz(const std::string& path, const ArrayMap& arrays, const TextMap& texts = {});

/// Writes `bytes` to `path` atomically and safely: a new temporary file is created next to
/// `path` with O_CREAT|O_EXCL|O_NOFOLLOW under an unpredictable name ("<name>.tmp.<pid>.<random>"),
/// written, fsynced and renamed over `path` (replacing a symlink there, never following it), and
/// the folder is fsynced. Several threads or processes may save to one path at once: each save
/// succeeds and the file holds one of them whole. Temporary files left by killed saves (their
/// process is gone) are removed by the next save to the same path.
void write_file_atomic(const std::string& path, std::string_view bytes);

/// Reads a whole file of at most `max_bytes`; IoError names the path when it cannot be opened or
/// read, is a folder or a device (/dev/zero), or is larger than the limit.
std::string read_file(const std::string& path, std::size_t max_bytes = kMaxFileBytes);

}  // namespace xg
