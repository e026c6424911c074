// NumPy .npy / .npz reading and writing.
//
// .npy (numpy/lib/format.py):
//   "\x93NUMPY" major minor | header length (u16 LE for 1.0, u32 LE for 2.0/3.0) | header | data
//   The header is a Python dict literal, padded with spaces and ending in '\n':
//     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   `descr` is byte order ('<' little, '>' big, '|' not applicable) + kind + item size; the data is
//   exactly prod(shape) items, in C (row-major) or Fortran (column-major) order. numpy pads the
//   header so the data starts at a multiple of 64 bytes, and (since 1.23) adds spare spaces after
//   the dict so the first dim can grow in place.
// Text: numpy str arrays ('<U<n>', n UTF-32 code units per item, trailing NULs dropped) and bytes
//   arrays ('|S<n>'); xgrad writes text as a 0-d '<U<n>' array, which numpy.load reads as a str.
// .npz: a zip archive with one "<key>.npy" member per array. numpy.savez stores members
//   uncompressed (method 0), numpy.savez_compressed deflates them (method 8, raw deflate, which
//   zlib inflates), and both always write a zip64 extra field in the local headers; the
//   archive itself only becomes zip64 beyond 4 GiB or 65535 members. Layout:
//     [local header "PK\3\4" + name + extra + data]...  [central directory "PK\1\2"...]
//     [end of central directory "PK\5\6" + comment]
//   All integers are little-endian. The reader trusts only the central directory and checks
//   every local header, size, offset and CRC-32 against it and against the bytes it was given.
#include <xgrad/tensor/npy.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <ctime>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <type_traits>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <fmt/format.h>
#include <xtensor/xmanipulation.hpp>

namespace xg {

static_assert(std::is_same_v<Shape, IndexArray::shape_type> &&
              std::is_same_v<Shape, Array<double>::shape_type>);

namespace {

constexpr std::size_t kMaxHeaderLen = std::size_t(1) << 20;
constexpr std::size_t kMaxDims = 32;  // numpy's NPY_MAXDIMS
constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;

template <class... A>
[[noreturn]] void fail(std::string_view name, fmt::format_string<A...> f, A&&... args) {
  throw IoError(fmt::format("{}: {}", name, fmt::format(f, std::forward<A>(args)...)));
}

// Untrusted bytes shown in a message: printable ASCII kept, the rest escaped, long text cut.
std::string printable(std::string_view s, std::size_t max = 120) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f)
      out += static_cast<char>(c);
    else
      out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > max) out += "...";
  return out;
}

using Bytes = const unsigned char*;
std::uint16_t rd16(Bytes p) {
  return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}
std::uint32_t rd32(Bytes p) {
  return rd16(p) | std::uint32_t(rd16(p + 2)) << 16;
}
std::uint64_t rd64(Bytes p) {
  return rd32(p) | std::uint64_t(rd32(p + 4)) << 32;
}
void put16(std::string& s, std::uint32_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>(v >> 8 & 0xff);
}
void put32(std::string& s, std::uint32_t v) {
  put16(s, v & 0xffff);
  put16(s, v >> 16);
}

// ---- .npy header dict -------------------------------------------------------------------------

struct Header {
  std::string descr;
  bool fortran = false;
  std::vector<std::uint64_t> shape;
};

// A strict parser for the subset of Python literal syntax that .npy headers use.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

  Header parse() {
    Header h;
    bool seen[3] = {false, false, false};
    expect('{', "the header must start with '{'");
    while (!eat('}')) {
      const std::string key = quoted("a quoted key");
      expect(':', "expected ':' after a key");
      int k = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
      if (k < 0) fail(name_, "unexpected key '{}' in .npy header", printable(key));
      if (seen[k]) fail(name_, "duplicate key '{}' in .npy header", key);
      seen[k] = true;
      if (k == 0) {
        if (peek() != '\'' && peek() != '"')
          fail(name_, "unsupported dtype: only simple dtypes are supported, not '{}'",
               printable(s_.substr(pos_), 60));
        h.descr = quoted("a quoted descr");
      } else if (k == 1) {
        h.fortran = boolean();
      } else {
        h.shape = tuple();
      }
      if (!eat(',')) {
        expect('}', "expected ',' or '}' after a value");
        break;
      }
    }
    skip_ws();
    if (pos_ != s_.size()) bad("unexpected text after the closing '}'");
    for (int k = 0; k < 3; ++k)
      if (!seen[k])
        fail(name_, "the .npy header lacks the key '{}'",
             k == 0   ? "descr"
             : k == 1 ? "fortran_order"
                      : "shape");
    return h;
  }

 private:
  std::string_view s_, name_;
  std::size_t pos_ = 0;

  [[noreturn]] void bad(std::string_view what) {
    fail(name_, "malformed .npy header ({} at offset {}): {}", what, pos_, printable(s_));
  }
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  char peek() {
    skip_ws();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  bool eat(char c) {
    if (peek() != c || pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  void expect(char c, std::string_view what) {
    if (!eat(c)) bad(what);
  }
  bool word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  std::string quoted(std::string_view what) {
    const char q = peek();
    if (q != '\'' && q != '"') bad(fmt::format("expected {}", what));
    const std::size_t start = ++pos_;
    while (pos_ < s_.size() && s_[pos_] != q) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '\\' || c < 0x20 || c >= 0x7f) bad("unsupported character in a string");
      ++pos_;
    }
    if (pos_ >= s_.size()) bad("unterminated string");
    return std::string(s_.substr(start, pos_++ - start));
  }
  bool boolean() {
    skip_ws();
    if (word("True")) return true;
    if (word("False")) return false;
    bad("fortran_order must be True or False");
  }
  std::vector<std::uint64_t> tuple() {
    std::vector<std::uint64_t> dims;
    if (peek() == '[') bad("shape must be a tuple, not a list");
    expect('(', "shape must be a tuple");
    bool comma = false;
    while (!eat(')')) {
      if (dims.size() == kMaxDims) fail(name_, "shape has more than {} dims", kMaxDims);
      dims.push_back(integer());
      comma = eat(',');
      if (!comma) {
        expect(')', "expected ',' or ')' in shape");
        break;
      }
    }
    if (dims.size() == 1 && !comma) bad("a one-dim shape needs a trailing comma, as in (5,)");
    return dims;
  }
  std::uint64_t integer() {
    skip_ws();
    const bool negative = pos_ < s_.size() && s_[pos_] == '-';
    if (negative) ++pos_;
    const std::size_t start = pos_;
    std::uint64_t v = 0;
    bool big = false;
    for (; pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; ++pos_) {
      const unsigned d = static_cast<unsigned>(s_[pos_] - '0');
      if (v > (std::uint64_t(std::numeric_limits<std::int64_t>::max()) - d) / 10)
        big = true;
      else
        v = v * 10 + d;
    }
    if (pos_ == start) bad("expected an integer dim in shape");
    const std::string_view text = s_.substr(start - negative, pos_ - start + negative);
    if (negative && (big || v != 0)) fail(name_, "negative dimension {} in shape", text);
    if (big) fail(name_, "dimension {} in shape is too large", text);
    return v;
  }
};

// ---- dtypes ------------------------------------------------------------------------------------

enum class Kind { F4, F8, I8, I4, U1, B1 };
struct FileType {
  Kind kind;
  std::size_t itemsize;
  bool swap;  // file byte order differs from the host's
};

FileType file_type(const std::string& d, std::string_view name) {
  static constexpr struct {
    std::string_view code;
    Kind kind;
    std::size_t size;
  } kTable[] = {{"f4", Kind::F4, 4}, {"f8", Kind::F8, 8}, {"i8", Kind::I8, 8},
                {"i4", Kind::I4, 4}, {"u1", Kind::U1, 1}, {"b1", Kind::B1, 1}};
  if (d.size() == 3) {
    const char order = d[0];
    for (const auto& t : kTable) {
      if (d.substr(1) != t.code) continue;
      const bool ok = order == '<' || order == '>' || order == '=' || (order == '|' && t.size == 1);
      if (!ok) break;
      const bool big = order == '>' || (order == '=' && std::endian::native == std::endian::big);
      const bool swap = t.size > 1 && big != (std::endian::native == std::endian::big);
      return {t.kind, t.size, swap};
    }
  }
  fail(name,
       "unsupported dtype '{}' (supported: <f4 <f8 <i8, big-endian >f4 >f8 >i8, and <i4 |u1 |b1 "
       "read as int64)",
       printable(d));
}

// Decodes n items of file type In into Out, swapping bytes when the file's order is not the host's.
template <class In, class Out>
void decode(Bytes src, std::size_t n, bool swap, Out* dst) {
  unsigned char b[sizeof(In)];
  for (std::size_t i = 0; i < n; ++i, src += sizeof(In)) {
    std::memcpy(b, src, sizeof(In));
    if constexpr (std::is_same_v<In, bool>) {
      dst[i] = b[0] != 0;  // any nonzero byte is True, as in numpy; never load a bool from it
    } else {
      if (swap) std::reverse(b, b + sizeof(In));
      In v;
      std::memcpy(&v, b, sizeof(In));
      dst[i] = static_cast<Out>(v);
    }
  }
}

// The array in file order (shape reversed for Fortran order), then made row-major.
template <class In, class Out>
AnyArray read_items(Bytes src, const Shape& shape, std::size_t n, const FileType& t, bool fortran) {
  Shape stored = shape;
  if (fortran) std::reverse(stored.begin(), stored.end());
  Array<Out> a = Array<Out>::from_shape(stored);
  if (std::is_same_v<In, Out> && !t.swap) {
    if (n > 0) std::memcpy(a.data(), src, n * sizeof(Out));
  } else {
    decode<In, Out>(src, n, t.swap, a.data());
  }
  // F-order data of shape s is C-order data of reversed(s); transposing restores s.
  if (fortran && shape.size() > 1 && n > 0) return Array<Out>(xt::transpose(a));
  if (fortran) a.reshape(shape);
  return a;
}

// Writes a as little-endian items.
template <class T>
void append_le(std::string& out, const Array<T>& a) {
  const std::size_t n = a.size() * sizeof(T);
  const std::size_t at = out.size();
  out.resize(at + n);
  if (n == 0) return;
  std::memcpy(out.data() + at, a.data(), n);
  if constexpr (std::endian::native == std::endian::big)
    for (std::size_t i = at; i < out.size(); i += sizeof(T))
      std::reverse(out.begin() + i, out.begin() + i + sizeof(T));
}

// ---- zip ---------------------------------------------------------------------------------------

constexpr std::uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                        kZip64LocatorSig = 0x07064b50;
constexpr std::size_t kLocalLen = 30, kCentralLen = 46, kEndLen = 22;
constexpr std::uint32_t kU32Max = 0xffffffff;

constexpr std::array<std::uint32_t, 256> kCrcTable = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}();

std::uint32_t crc32(Bytes p, std::size_t n) {
  std::uint32_t c = 0xffffffff;
  for (std::size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffff;
}

// The zip64 extended-information field (id 1) in an extra block, bounds-checked.
struct Zip64Extra {
  bool present = false;
  std::size_t len = 0;
  Bytes data = nullptr;
};
Zip64Extra find_zip64(Bytes extra, std::size_t n) {
  for (std::size_t i = 0; i + 4 <= n;) {
    const std::size_t id = rd16(extra + i), len = rd16(extra + i + 2);
    if (len > n - i - 4) break;
    if (id == 1) return {true, len, extra + i + 4};
    i += 4 + len;
  }
  return {};
}

struct Entry {
  std::string key, zname;
  std::uint32_t crc, method;
  std::uint64_t local, begin, size, usize;  // local header offset, data offset and size, inflated size
};

// Inflates a raw deflate stream that must produce exactly `usize` bytes and use all its input.
std::string inflate_entry(Bytes src, std::size_t csize, std::size_t usize, std::string_view label) {
  std::string out(usize, '\0');
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) fail(label, "zlib: cannot start inflating");
  z.next_in = const_cast<Bytef*>(src);
  z.avail_in = static_cast<uInt>(csize);
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(usize);
  const int rc = inflate(&z, Z_FINISH);
  const std::size_t produced = usize - z.avail_out, left_in = z.avail_in;
  const std::string msg = z.msg ? z.msg : "";
  inflateEnd(&z);
  if (rc == Z_DATA_ERROR) fail(label, "corrupt deflate data ({})", printable(msg));
  if (rc != Z_STREAM_END && produced == usize)
    fail(label, "deflate data inflates to more than the {} bytes the directory says", usize);
  if (rc != Z_STREAM_END)
    fail(label, "deflate data ends early: {} of {} bytes inflated", produced, usize);
  if (produced != usize || left_in != 0)
    fail(label, "deflate data inflates to {} bytes (directory: {}) with {} bytes left over", produced,
         usize, left_in);
  return out;
}

}  // namespace

// ---- public API --------------------------------------------------------------------------------

std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Int64:
      return "int64";
  }
  return "unknown";
}

DType dtype_of(const AnyArray& a) {
  return a.index() == 0 ? DType::Float32 : a.index() == 1 ? DType::Float64 : DType::Int64;
}

const Shape& shape_of(const AnyArray& a) {
  return std::visit([](const auto& x) -> const Shape& { return x.shape(); }, a);
}

template <class T>
xt::xarray<T> array_cast(const AnyArray& a, std::string_view what) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                std::is_same_v<T, std::int64_t>);
  return std::visit(
      [&](const auto& src) -> xt::xarray<T> {
        using S = typename std::decay_t<decltype(src)>::value_type;
        if constexpr (std::is_same_v<S, T>) {
          return src;
        } else if constexpr (std::is_integral_v<T>) {
          throw IoError(
              fmt::format("{}: cannot read a {} array as int64", what, dtype_name(dtype_of(a))));
        } else {
          xt::xarray<T> out = xt::xarray<T>::from_shape(src.shape());
          const S* p = src.data();
          T* o = out.data();
          for (std::size_t i = 0, n = src.size(); i < n; ++i) {
            o[i] = static_cast<T>(p[i]);
            if constexpr (std::is_integral_v<S>) {
              // 2^63 is the first value past int64's range; casting it back would be undefined.
              constexpr T kLimit = static_cast<T>(9223372036854775808.0);
              if (o[i] >= kLimit || static_cast<S>(o[i]) != p[i])
                throw IoError(
                    fmt::format("{}: int64 value {} (item {}) is not exactly representable as {}",
                                what, p[i], i, std::is_same_v<T, float> ? "float32" : "float64"));
            }
          }
          return out;
        }
      },
      a);
}

template xt::xarray<float> array_cast<float>(const AnyArray&, std::string_view);
template xt::xarray<double> array_cast<double>(const AnyArray&, std::string_view);
template xt::xarray<std::int64_t> array_cast<std::int64_t>(const AnyArray&, std::string_view);

double scalar_of(const AnyArray& a, std::string_view what) {
  const std::size_t n = std::visit([](const auto& x) { return x.size(); }, a);
  if (n != 1)
    throw ValueError(fmt::format("{}: expected one number, found {} (shape {})", what,
                                 n == 0 ? "an empty array" : fmt::format("{} numbers", n),
                                 shape_str(shape_of(a))));
  return std::visit([](const auto& x) { return static_cast<double>(*x.data()); }, a);
}

std::uint64_t count_of(const AnyArray& a, std::string_view what) {
  const double v = scalar_of(a, what);
  constexpr double kMax = 9007199254740992.0;  // 2^53: every count below is exact in a float64
  if (!(v >= 0 && v <= kMax) || v != std::floor(v))
    throw ValueError(fmt::format("{}: {} is not a count (a whole number from 0 to 2^53)", what, v));
  return static_cast<std::uint64_t>(v);
}

namespace {

// A file that is not .npy/.npz at all: say what it is when it is a PyTorch file or a pickle.
void refuse_foreign(const char* data, std::size_t size, std::string_view name) {
  const auto* p = reinterpret_cast<Bytes>(data);
  constexpr std::string_view kHint =
      "save a state_dict with numpy.savez(path, **{k: v.numpy() for k, v in "
      "model.state_dict().items()})";
  if (size >= kLocalLen && rd32(p) == kLocalSig) {
    const std::string_view first(data + kLocalLen, std::min<std::size_t>(rd16(p + 26), size - kLocalLen));
    if (first.ends_with("data.pkl") || first.ends_with(".pkl"))
      fail(name, "this is a PyTorch file (torch.save: a zip holding the pickle '{}'), not an .npz; {}",
           printable(first), kHint);
  }
  if (size >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5)
    fail(name, "this is a Python pickle (as the old torch.save writes), not an .npy/.npz; {}", kHint);
}

struct NpyHead {
  Header h;
  std::size_t offset;  // where the data starts
};

NpyHead parse_head(const char* data, std::size_t size, std::string_view name) {
  const auto* p = reinterpret_cast<Bytes>(data);
  const std::string_view magic(data, std::min(size, kMagicLen));
  if (magic != std::string_view(kMagic, magic.size())) {
    refuse_foreign(data, size, name);
    fail(name, "not a .npy file (wrong magic '{}', expected '\\x93NUMPY')", printable(magic));
  }
  if (size < kMagicLen + 2) fail(name, "truncated .npy file ({} bytes, no version)", size);
  const int major = p[6], minor = p[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail(name, "unsupported .npy format version {}.{} (supported: 1.0, 2.0, 3.0)", major, minor);
  const std::size_t prefix = major == 1 ? 10 : 12;
  if (size < prefix) fail(name, "truncated .npy file ({} bytes, no header length)", size);
  const std::size_t hlen = major == 1 ? rd16(p + 8) : rd32(p + 8);
  if (hlen > kMaxHeaderLen) fail(name, "absurd header length {} (the limit is 1 MiB)", hlen);
  if (hlen > size - prefix)
    fail(name, "truncated header: header length {} but only {} bytes follow", hlen, size - prefix);

  return {HeaderParser({data + prefix, hlen}, name).parse(), prefix + hlen};
}

// '<U5' -> ('U', 5), '|S3' -> ('S', 3); kind 0 when the descr is not text.
std::pair<char, std::size_t> text_descr(std::string_view d) {
  if (d.size() < 3 || (d[1] != 'U' && d[1] != 'S') || d.size() > 12) return {0, 0};
  if (d[0] != '<' && d[0] != '>' && d[0] != '=' && d[0] != '|') return {0, 0};
  if (d[1] == 'U' && d[0] == '|') return {0, 0};
  std::size_t n = 0;
  for (char c : d.substr(2)) {
    if (c < '0' || c > '9') return {0, 0};
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  return {d[1], n};
}

bool is_text_npy(const char* data, std::size_t size, std::string_view name) {
  return text_descr(parse_head(data, size, name).h.descr).first != 0;
}

void append_utf8(std::string& out, std::uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | c >> 6);
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | c >> 12);
    out += static_cast<char>(0x80 | (c >> 6 & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | c >> 18);
    out += static_cast<char>(0x80 | (c >> 12 & 0x3f));
    out += static_cast<char>(0x80 | (c >> 6 & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

}  // namespace

std::string parse_text_npy(const char* data, std::size_t size, std::string_view name) {
  const auto [h, offset] = parse_head(data, size, name);
  const auto [kind, n] = text_descr(h.descr);
  if (kind == 0) fail(name, "holds numbers ('{}'), not text", printable(h.descr));
  if (!(h.shape.empty() || (h.shape.size() == 1 && h.shape[0] == 1)))
    fail(name, "a text entry must hold one string, not shape {}", shape_str(Shape(h.shape.begin(), h.shape.end())));
  const std::size_t unit = kind == 'U' ? 4 : 1, bytes = n * unit;
  if (size - offset != bytes)
    fail(name, "text data has {} bytes but '{}' needs {}", size - offset, printable(h.descr), bytes);
  const auto* p = reinterpret_cast<Bytes>(data) + offset;
  const bool big = h.descr[0] == '>' || (h.descr[0] == '=' && std::endian::native == std::endian::big);
  std::string out;
  std::size_t len = n;  // numpy drops trailing NULs
  auto unit_at = [&](std::size_t i) -> std::uint32_t {
    if (unit == 1) return p[i];
    const Bytes q = p + 4 * i;
    return big ? std::uint32_t(q[0]) << 24 | std::uint32_t(q[1]) << 16 | std::uint32_t(q[2]) << 8 | q[3]
               : rd32(q);
  };
  while (len > 0 && unit_at(len - 1) == 0) --len;
  for (std::size_t i = 0; i < len; ++i) {
    const std::uint32_t c = unit_at(i);
    if (unit == 1) {
      out += static_cast<char>(c);
      continue;
    }
    if (c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
      fail(name, "text item {} is not a Unicode code point (0x{:x})", i, c);
    append_utf8(out, c);
  }
  return out;
}

std::string text_npy_bytes(std::string_view utf8) {
  std::vector<std::uint32_t> cps;
  for (std::size_t i = 0; i < utf8.size();) {
    const auto b = static_cast<unsigned char>(utf8[i]);
    const std::size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > utf8.size())
      throw ValueError(fmt::format("text '{}' is not valid UTF-8 (byte {})", printable(utf8), i));
    std::uint32_t c = len == 1 ? b : b & (0x7f >> len);
    for (std::size_t k = 1; k < len; ++k) {
      const auto cb = static_cast<unsigned char>(utf8[i + k]);
      if ((cb & 0xc0) != 0x80)
        throw ValueError(fmt::format("text '{}' is not valid UTF-8 (byte {})", printable(utf8), i + k));
      c = c << 6 | (cb & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < kMin[len] || c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
      throw ValueError(fmt::format("text '{}' is not valid UTF-8 (byte {})", printable(utf8), i));
    if (c == 0) throw ValueError(fmt::format("text '{}' contains a NUL character", printable(utf8)));
    cps.push_back(c);
    i += len;
  }
  // numpy writes '' as '<U1' holding one NUL.
  const std::size_t n = std::max<std::size_t>(cps.size(), 1);
  std::string dict = fmt::format("{{'descr': '<U{}', 'fortran_order': False, 'shape': (), }}", n);
  const std::size_t hlen = dict.size() + 1, pad = 64 - (10 + hlen) % 64;
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\0';
  put16(out, static_cast<std::uint32_t>(hlen + pad));
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  for (std::uint32_t c : cps) put32(out, c);
  if (cps.empty()) put32(out, 0);
  return out;
}

AnyArray parse_npy(const char* data, std::size_t size, std::string_view name) {
  const auto* p = reinterpret_cast<Bytes>(data);
  const auto [h, offset] = parse_head(data, size, name);
  if (text_descr(h.descr).first != 0)
    fail(name, "holds text (numpy '{}'), not numbers", printable(h.descr));
  const FileType t = file_type(h.descr, name);

  // Item count with overflow-safe multiplication; zero dims are skipped so that (0, 2**62,
  // 2**62) overflows just as numpy reports it, and the byte count is checked before allocating.
  Shape shape(h.shape.size());
  std::copy(h.shape.begin(), h.shape.end(), shape.begin());
  std::size_t bytes = t.itemsize;
  bool empty = false;
  for (const std::size_t d : shape) {
    if (d == 0)
      empty = true;
    else if (bytes > std::numeric_limits<std::size_t>::max() / d)
      fail(name, "shape {} overflows: the array would exceed 2^64 bytes", shape_str(shape));
    else
      bytes *= d;
  }
  if (empty) bytes = 0;
  const std::size_t have = size - offset;
  if (have < bytes)
    fail(name, "data is truncated: shape {} of '{}' needs {} bytes but {} are present",
         shape_str(shape), h.descr, bytes, have);
  if (have > bytes)
    fail(name, "{} trailing bytes after the data (shape {} of '{}' needs {} bytes)", have - bytes,
         shape_str(shape), h.descr, bytes);

  Bytes src = p + offset;
  const std::size_t n = bytes / t.itemsize;
  switch (t.kind) {
    case Kind::F4:
      return read_items<float, float>(src, shape, n, t, h.fortran);
    case Kind::F8:
      return read_items<double, double>(src, shape, n, t, h.fortran);
    case Kind::I8:
      return read_items<std::int64_t, std::int64_t>(src, shape, n, t, h.fortran);
    case Kind::I4:
      return read_items<std::int32_t, std::int64_t>(src, shape, n, t, h.fortran);
    case Kind::U1:
      return read_items<std::uint8_t, std::int64_t>(src, shape, n, t, h.fortran);
    case Kind::B1:
      return read_items<bool, std::int64_t>(src, shape, n, t, h.fortran);
  }
  fail(name, "internal error: unhandled dtype");
}

std::string npy_bytes(const AnyArray& a) {
  static constexpr std::string_view kDescr[] = {"<f4", "<f8", "<i8"};
  const Shape& s = shape_of(a);
  // Exactly numpy's _write_array_header: sorted keys, repr values, growth spaces, then padding
  // so that magic + length + header + '\n' is a multiple of 64 (a full 64 when already aligned).
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 kDescr[a.index()], shape_str(s));
  if (!s.empty()) dict.append(21 - std::min<std::size_t>(21, fmt::formatted_size("{}", s[0])), ' ');
  std::size_t prefix = 10;
  std::size_t hlen = dict.size() + 1;
  std::size_t pad = 64 - (prefix + hlen) % 64;
  if (hlen + pad > 0xffff) {  // numpy switches to version 2.0 when 1.0 cannot hold the header
    prefix = 12;
    pad = 64 - (prefix + hlen) % 64;
  }
  std::string out(kMagic, kMagicLen);
  out += prefix == 10 ? '\x01' : '\x02';
  out += '\0';
  if (prefix == 10)
    put16(out, static_cast<std::uint32_t>(hlen + pad));
  else
    put32(out, static_cast<std::uint32_t>(hlen + pad));
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  std::visit([&](const auto& x) { append_le(out, x); }, a);
  return out;
}

AnyArray load_npy(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_npy(bytes.data(), bytes.size(), path);
}

void save_npy(const std::string& path, const AnyArray& a) {
  write_file_atomic(path, npy_bytes(a));
}

NpzContents parse_npz_contents(const char* data, std::size_t size, std::string_view name,
                               std::size_t max_inflated) {
  const auto* p = reinterpret_cast<Bytes>(data);
  refuse_foreign(data, size, name);
  // End of central directory: the last 22 bytes, or earlier when followed by a comment (< 64 KiB).
  std::size_t end = size;
  if (size >= kEndLen) {
    for (std::size_t pos = size - kEndLen;; --pos) {
      if (rd32(p + pos) == kEndSig && rd16(p + pos + 20) == size - pos - kEndLen) {
        end = pos;
        break;
      }
      if (pos == 0 || size - kEndLen - pos >= 0xffff) break;
    }
  }
  if (end == size) {
    if (size >= kMagicLen && std::memcmp(data, kMagic, kMagicLen) == 0)
      fail(name, "this is a .npy file, not an .npz archive");
    fail(name, "not an .npz file or truncated: no zip end-of-central-directory record found");
  }
  Bytes e = p + end;
  if (end >= 20 && rd32(e - 20) == kZip64LocatorSig)
    fail(name, "zip64 archives are not supported (more than 65535 entries or 4 GiB)");
  const std::size_t count = rd16(e + 10);
  const std::uint64_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);
  if (count == 0xffff || cd_size == kU32Max || cd_off == kU32Max)
    fail(name, "zip64 archives are not supported (more than 65535 entries or 4 GiB)");
  if (rd16(e + 4) != 0 || rd16(e + 6) != 0 || rd16(e + 8) != count)
    fail(name, "multi-disk zip archives are not supported");
  if (cd_off + cd_size > end)
    fail(name,
         "central directory (offset {}, {} bytes) lies outside the {} bytes before its end record",
         cd_off, cd_size, end);
  if (count * kCentralLen > cd_size)
    fail(name, "central directory of {} bytes is too small for {} entries", cd_size, count);

  // Pass 1: the central directory, each entry checked against its local header.
  std::vector<Entry> entries;
  entries.reserve(count);
  std::set<std::string, std::less<>> keys;
  std::uint64_t inflated = 0;
  std::size_t pos = static_cast<std::size_t>(cd_off);
  const std::size_t cd_end = static_cast<std::size_t>(cd_off + cd_size);
  for (std::size_t i = 0; i < count; ++i) {
    if (cd_end - pos < kCentralLen)
      fail(name, "central directory entry {} runs past the directory", i);
    Bytes c = p + pos;
    if (rd32(c) != kCentralSig) fail(name, "central directory entry {} has a bad signature", i);
    const std::size_t nlen = rd16(c + 28), elen = rd16(c + 30), clen = rd16(c + 32);
    if (kCentralLen + nlen + elen + clen > cd_end - pos)
      fail(name, "central directory entry {} runs past the directory", i);
    const std::string_view zname(data + pos + kCentralLen, nlen);
    std::string key(zname.ends_with(".npy") ? zname.substr(0, nlen - 4) : zname);
    const std::string label = fmt::format("{}:{}", name, printable(key));
    const std::uint32_t flags = rd16(c + 8), method = rd16(c + 10), crc = rd32(c + 16);
    const std::uint64_t csize = rd32(c + 20), usize = rd32(c + 24), local = rd32(c + 42);
    if (key.empty() || key.find('\0') != std::string::npos)
      fail(name, "entry {} has an invalid name '{}'", i, printable(zname));
    if (flags & 1) fail(label, "encrypted zip entries are not supported");
    if (method != 0 && method != 8)
      fail(label, "unsupported zip compression method {} (only stored and deflated entries)", method);
    if (csize == kU32Max || usize == kU32Max || local == kU32Max ||
        find_zip64(c + kCentralLen + nlen, elen).present)
      fail(label, "zip64 entries are not supported");
    if (method == 0 && csize != usize)
      fail(label, "stored entry has compressed size {} but uncompressed size {}", csize, usize);
    // deflate expands at most about 1032:1; a larger claim is a lie (or a bomb).
    if (method == 8 && usize > 1032 * csize + 64)
      fail(label, "deflated entry of {} bytes claims to inflate to {} bytes", csize, usize);
    if (method == 8 && (inflated += usize) > max_inflated)
      fail(name, "deflated entries would inflate to more than {} bytes (the limit)", max_inflated);

    if (local + kLocalLen > cd_off)
      fail(label, "local header offset {} lies outside the archive", local);
    Bytes l = p + local;
    if (rd32(l) != kLocalSig) fail(label, "bad local header signature at offset {}", local);
    const std::size_t lnlen = rd16(l + 26), lelen = rd16(l + 28);
    const std::uint64_t begin = local + kLocalLen + lnlen + lelen;
    if (begin > cd_off) fail(label, "local header at offset {} runs past the entry area", local);
    if (std::string_view(data + local + kLocalLen, lnlen) != zname)
      fail(label, "local header name '{}' differs from the central directory",
           printable({data + local + kLocalLen, lnlen}));
    if (rd16(l + 8) != method)
      fail(label, "local header method differs from the central directory");
    if (!((flags | rd16(l + 6)) & 8)) {  // without a data descriptor the local fields must agree
      const std::uint64_t lcsize = rd32(l + 18), lusize = rd32(l + 22);
      const Zip64Extra z = find_zip64(l + kLocalLen + lnlen, lelen);
      const bool z_ok =
          !z.present || (z.len >= 16 && rd64(z.data) == usize && rd64(z.data + 8) == csize);
      const bool sizes_ok = (lcsize == csize && lusize == usize) ||
                            (lcsize == kU32Max && lusize == kU32Max && z.present);
      if (rd32(l + 14) != crc || !sizes_ok || !z_ok)
        fail(label, "local header (CRC-32 or sizes) disagrees with the central directory");
    }
    if (csize > cd_off - begin)
      fail(label, "entry data ({} bytes at offset {}) runs past the entry area ({} bytes)", csize,
           begin, cd_off);
    if (!keys.insert(key).second) fail(name, "duplicate key '{}'", printable(key));
    entries.push_back({std::move(key), std::string(zname), crc, method, local, begin, csize, usize});
    pos += kCentralLen + nlen + elen + clen;
  }
  if (pos != cd_end)
    fail(name, "central directory has {} unexpected bytes after its entries", cd_end - pos);

  // Entries must not share bytes: this bounds the total work and memory by the archive size.
  std::vector<const Entry*> order;
  for (const auto& en : entries) order.push_back(&en);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->local < b->local; });
  for (std::size_t i = 1; i < order.size(); ++i)
    if (order[i - 1]->begin + order[i - 1]->size > order[i]->local)
      fail(name, "zip entries '{}' and '{}' overlap", printable(order[i - 1]->key),
           printable(order[i]->key));

  // Pass 2: inflation, CRC-32 and contents.
  NpzContents out;
  for (const auto& en : entries) {
    const std::string label = fmt::format("{}:{}", name, printable(en.key));
    std::string inflated_bytes;
    const char* bytes = data + en.begin;
    std::size_t n = en.size;
    if (en.method == 8) {
      inflated_bytes = inflate_entry(p + en.begin, en.size, en.usize, label);
      bytes = inflated_bytes.data();
      n = inflated_bytes.size();
    }
    const std::uint32_t crc = crc32(reinterpret_cast<Bytes>(bytes), n);
    if (crc != en.crc)
      fail(label, "CRC-32 mismatch (directory says {:08x}, data has {:08x})", en.crc, crc);
    if (!en.zname.ends_with(".npy") &&
        (n < kMagicLen || std::memcmp(bytes, kMagic, kMagicLen) != 0))
      fail(name, "zip entry '{}' is not a .npy array: this zip archive is not a NumPy .npz",
           printable(en.zname));
    if (is_text_npy(bytes, n, label))
      out.texts.emplace(en.key, parse_text_npy(bytes, n, label));
    else
      out.arrays.emplace(en.key, parse_npy(bytes, n, label));
  }
  return out;
}

ArrayMap parse_npz(const char* data, std::size_t size, std::string_view name) {
  NpzContents c = parse_npz_contents(data, size, name);
  if (!c.texts.empty())
    fail(name, "entry '{}' holds text, not numbers", printable(c.texts.begin()->first));
  return std::move(c.arrays);
}

ArrayMap load_npz(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_npz(bytes.data(), bytes.size(), path);
}

void save_npz(const std::string& path, const ArrayMap& arrays, const TextMap& texts) {
  struct Member {
    std::string name;
    std::uint32_t crc, size, offset;
  };
  // The fields local headers and central directory entries share, from "version needed" to
  // "extra length". The timestamp is fixed (1980-01-01, the DOS epoch), so equal maps give
  // equal files; flag bit 11 marks a UTF-8 name.
  auto put_common = [](std::string& out, const Member& m) {
    const bool utf8 = std::any_of(m.name.begin(), m.name.end(), [](char ch) { return ch & 0x80; });
    for (std::uint32_t v : {20u, utf8 ? 1u << 11 : 0u, 0u, 0u, (1u << 5) | 1u}) put16(out, v);
    for (std::uint32_t v : {m.crc, m.size, m.size}) put32(out, v);
    put16(out, static_cast<std::uint32_t>(m.name.size()));
    put16(out, 0);
  };
  // Arrays and texts, written in key order.
  std::map<std::string_view, std::pair<const AnyArray*, const std::string*>> all;
  for (const auto& [key, a] : arrays) all.emplace(key, std::pair{&a, nullptr});
  for (const auto& [key, t] : texts)
    if (!all.emplace(key, std::pair{nullptr, &t}).second)
      throw ValueError(fmt::format("{}: npz key '{}' is both an array and a text", path, printable(key)));
  if (all.size() >= 0xffff)
    fail(path, "{} arrays are too many for a zip without zip64", all.size());
  std::vector<Member> members;
  std::string out;
  for (const auto& [key, entry] : all) {
    if (key.empty()) throw ValueError(fmt::format("{}: npz keys must be non-empty", path));
    if (key.find('\0') != std::string::npos)
      throw ValueError(
          fmt::format("{}: npz key '{}' contains a NUL character", path, printable(key)));
    if (key.size() > 0xfff0)
      throw ValueError(fmt::format("{}: npz key '{}' is too long", path, printable(key)));
    std::string npy;
    if (entry.first) {
      npy = npy_bytes(*entry.first);
    } else {
      try {
        npy = text_npy_bytes(*entry.second);
      } catch (const ValueError& e) {
        throw ValueError(fmt::format("{}: text '{}': {}", path, printable(key), e.what()));
      }
    }
    if (out.size() + kLocalLen + key.size() + 4 + npy.size() >= kU32Max)
      fail(path, "array '{}' does not fit a zip without zip64 (4 GiB)", printable(key));
    Member m{std::string(key) + ".npy", crc32(reinterpret_cast<Bytes>(npy.data()), npy.size()),
             static_cast<std::uint32_t>(npy.size()), static_cast<std::uint32_t>(out.size())};
    put32(out, kLocalSig);
    put_common(out, m);
    out += m.name;
    out += npy;
    members.push_back(std::move(m));
  }
  const std::size_t cd_off = out.size();
  for (const Member& m : members) {
    put32(out, kCentralSig);
    put16(out, 20);  // made by: MS-DOS attributes, zip 2.0
    put_common(out, m);
    for (int i = 0; i < 3; ++i) put16(out, 0);  // comment length, disk, internal attributes
    put32(out, 0);                              // external attributes
    put32(out, m.offset);
    out += m.name;
  }
  const std::size_t cd_size = out.size() - cd_off;
  if (out.size() >= kU32Max) fail(path, "the archive does not fit a zip without zip64 (4 GiB)");
  put32(out, kEndSig);
  for (std::size_t v : {std::size_t(0), std::size_t(0), members.size(), members.size()})
    put16(out, static_cast<std::uint32_t>(v));  // disk numbers, entry counts
  put32(out, static_cast<std::uint32_t>(cd_size));
  put32(out, static_cast<std::uint32_t>(cd_off));
  put16(out, 0);  // comment length
  write_file_atomic(path, out);
}

namespace {

// "dir/name" -> ("dir", "name"); "name" -> (".", "name").
std::pair<std::string, std::string> split_path(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::uint64_t random64() {
  std::uint64_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    static std::atomic<std::uint64_t> counter{0};  // no entropy yet: O_EXCL still keeps it safe
    r = static_cast<std::uint64_t>(::time(nullptr)) * 0x9e3779b97f4a7c15ull ^ ++counter;
  }
  return r;
}

// Removes "<name>.tmp.<pid>[.<hex>]" files in `dir` whose process no longer exists: what a save
// killed between creating and renaming its temporary file leaves behind. Files of live processes
// (this one's other threads included) are left alone, and only plain files and links are removed.
void remove_stale_temps(const std::string& dir, const std::string& name) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = name + ".tmp.";
  while (const dirent* e = ::readdir(d)) {
    const std::string_view f = e->d_name;
    if (!f.starts_with(prefix)) continue;
    std::string_view rest = f.substr(prefix.size());
    const std::size_t digits = std::min(rest.find('.'), rest.size());
    if (digits == 0 || digits > 9 ||
        !std::all_of(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(digits),
                     [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    const std::string_view tail = rest.substr(digits);
    if (!tail.empty() && (tail.size() != 17 || !std::all_of(tail.begin() + 1, tail.end(), [](char c) {
                            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                          })))
      continue;
    const pid_t pid = static_cast<pid_t>(std::stol(std::string(rest.substr(0, digits))));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    const std::string full = dir + "/" + std::string(f);
    struct stat st;
    if (::lstat(full.c_str(), &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
      ::unlink(full.c_str());
  }
  ::closedir(d);
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const auto [dir, name] = split_path(path);
  if (name.empty() || name == "." || name == "..") fail(path, "cannot write: not a file name");
  // A fresh file that nobody can have planted: O_EXCL fails on any existing name (a symlink
  // included), and the random part makes the name unpredictable.
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = fmt::format("{}/{}.tmp.{}.{:016x}", dir, name, ::getpid(), random64());
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt == 100))
      fail(path, "cannot write (creating {}: {})", tmp, std::strerror(errno));
  }
  int err = 0;
  for (std::size_t done = 0; done < bytes.size() && err == 0;) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n > 0)
      done += static_cast<std::size_t>(n);
    else if (n < 0 && errno != EINTR)
      err = errno;
    else if (n == 0)
      err = EIO;
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    fail(path, "cannot write {}: {}", tmp, std::strerror(err));
  }
  // rename replaces the name `path` itself: a symlink there is replaced, never followed.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail(path, "cannot rename {} over it: {}", tmp, std::strerror(e));
  }
  // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  remove_stale_temps(dir, name);
}

std::string read_file(const std::string& path, std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open: {}", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) fail(path, "cannot read: {}", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(path, "cannot read: it is a folder, not a file");
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    fail(path, "cannot read: it is a device, not a file");
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > max_bytes)
    fail(path, "the file has {} bytes, more than the limit of {}", st.st_size, max_bytes);
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, "cannot read: {}", std::strerror(errno));
    }
    if (out.size() + static_cast<std::size_t>(n) > max_bytes)
      fail(path, "the file has more than the limit of {} bytes", max_bytes);
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace xg
