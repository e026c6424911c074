// .npy/.npz: round trips, files written by NumPy (tests/fixtures/make_npy_fixtures.py), every
// malformed-file error by message, and mutation sweeps that must parse or throw IoError.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/tensor/npy.hpp>

using namespace xg;
namespace fs = std::filesystem;

namespace {

const std::string kFixtures = std::string(XGRAD_FIXTURES) + "/npy/";

// Predicate for BOOST_CHECK_EXCEPTION: the message starts with `name` and contains every part.
struct says {
  std::string name;
  std::vector<std::string> parts;
  says(std::string n, std::initializer_list<std::string> p) : name(std::move(n)), parts(p) {}
  bool operator()(const std::exception& e) const {
    const std::string what = e.what();
    bool ok = what.rfind(name + ": ", 0) == 0;
    for (const auto& p : parts) ok = ok && what.find(p) != std::string::npos;
    if (!ok)
      BOOST_TEST_MESSAGE("message '" << what << "' lacks '" << name << "' or "
                                     << fmt::format("{}", parts));
    return ok;
  }
};

// A scratch folder, removed at the end of each test case.
struct TempDir {
  fs::path dir = fs::temp_directory_path() / fmt::format("xgrad_npy_test_{}", ::getpid());
  TempDir() { fs::create_directories(dir); }
  ~TempDir() { fs::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

// Values i * step + offset in row-major order.
template <class T>
Array<T> ramp(const Shape& s, double step, double offset) {
  Array<T> a = Array<T>::from_shape(s);
  for (std::size_t i = 0; i < a.size(); ++i)
    a.data()[i] = static_cast<T>(static_cast<double>(i) * step + offset);
  return a;
}

template <class T>
Array<T> as(const AnyArray& a) {
  BOOST_REQUIRE(std::holds_alternative<Array<T>>(a));
  return std::get<Array<T>>(a);
}

AnyArray parse(const std::string& b, const std::string& name = "t.npy") {
  return parse_npy(b.data(), b.size(), name);
}
ArrayMap parse_z(const std::string& b, const std::string& name = "t.npz") {
  return parse_npz(b.data(), b.size(), name);
}

// A .npy file with the given header dict text (padded as numpy does) and raw data bytes.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string h = dict;
  while ((prefix + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::string out = std::string("\x93NUMPY", 6) + char(major) + '\0';
  for (std::size_t i = 0; i < prefix - 8; ++i) out += char((h.size() >> (8 * i)) & 0xff);
  return out + h + data;
}

std::uint32_t rd32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}
void wr32(std::string& s, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = char((v >> (8 * i)) & 0xff);
}

std::uint32_t crc32(const char* p, std::size_t n) {
  std::uint32_t c = 0xffffffff;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= static_cast<unsigned char>(p[i]);
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}

// Offsets in an archive written by save_npz (no extras, no comments).
struct ZipLayout {
  std::vector<std::size_t> local, central;
  std::size_t eocd;
};
ZipLayout layout(const std::string& z) {
  ZipLayout l;
  l.eocd = z.size() - 22;
  std::size_t cd = rd32(z, l.eocd + 16);
  for (std::size_t i = 0; cd < l.eocd; ++i) {
    l.central.push_back(cd);
    l.local.push_back(rd32(z, cd + 42));
    cd += 46 + (rd32(z, cd + 28) & 0xffff);
  }
  return l;
}

std::string small_npz(const TempDir& tmp) {
  ArrayMap m;
  m.emplace("w", ramp<float>(Shape{2}, 1.5, -1));
  m.emplace("n", ramp<std::int64_t>(Shape{}, 0, 42));
  save_npz(tmp / "small.npz", m);
  return read_file(tmp / "small.npz");
}

template <class F>
void sweep(const std::string& good, F parse_fn, int& parsed, int& rejected) {
  auto attempt = [&](const std::string& b) {
    try {
      parse_fn(b);
      ++parsed;
    } catch (const IoError&) {
      ++rejected;
    }
  };
  for (std::size_t n = 0; n < good.size(); ++n) attempt(good.substr(0, n));
  for (std::size_t i = 0; i < good.size(); ++i)
    for (int v : {0xff, 0x01, 0x80, 0x00, 0x7f, int('0'), int('9'), int(','), int('('), int(')'),
                  int('\''), int(' '), int('-')}) {
      std::string b = good;
      b[i] = static_cast<char>(v == 0xff || v == 0x01 || v == 0x80 ? b[i] ^ v : v);
      attempt(b);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(npy)

// npy_bytes / parse_npy and save_npy / load_npy keep dtype, shape and every bit.
BOOST_AUTO_TEST_CASE(round_trips_every_dtype_and_rank) {
  const std::vector<Shape> shapes = {{},  {5},    {2, 3},    {2, 3, 4},   {2, 1, 3, 2},
                                     {0}, {0, 3}, {2, 0, 4}, {1, 1, 1, 1}};
  int n = 0;
  for (const Shape& s : shapes) {
    const std::vector<AnyArray> arrays = {ramp<float>(s, 0.37, -5),
                                          ramp<double>(s, 1.0 / 3, -2e300 / 3),
                                          ramp<std::int64_t>(s, 123456789012.0, -4e12)};
    for (const AnyArray& a : arrays) {
      const AnyArray b = parse(npy_bytes(a));
      BOOST_TEST(b.index() == a.index());
      BOOST_TEST(shape_of(b) == shape_of(a), shape_str(shape_of(b))
                                                 << " vs " << shape_str(shape_of(a)));
      BOOST_TEST((a == b), dtype_name(dtype_of(a)) << " " << shape_str(s));
      ++n;
    }
  }
  BOOST_TEST(n == 27);
  TempDir tmp;
  const AnyArray a = ramp<double>(Shape{3, 2}, -0.1, 1);
  save_npy(tmp / "a.npy", a);
  BOOST_TEST((load_npy(tmp / "a.npy") == a));
  BOOST_TEST(load_npy_as<float>(tmp / "a.npy") == array_cast<float>(a, "a"));
  for (const auto& e : fs::directory_iterator(tmp.dir))  // no temporary file is left behind
    BOOST_TEST(e.path().filename() == "a.npy");
}

// Headers are padded to 64 bytes with a trailing newline, exactly as numpy.save writes them.
BOOST_AUTO_TEST_CASE(writes_the_same_bytes_as_numpy) {
  for (const char* f : {"f32_c_2d.npy", "i64_1d.npy", "scalar_f8.npy", "empty_0x3.npy"}) {
    const std::string bytes = read_file(kFixtures + f);
    BOOST_TEST(npy_bytes(parse(bytes)) == bytes, f);
  }
  const std::string b = npy_bytes(ramp<float>(Shape{100000, 2}, 1, 0));
  BOOST_TEST(b.substr(0, 10) == std::string("\x93NUMPY\x01\x00\x76\x00", 10));
  BOOST_TEST(b[127] == '\n');
}

BOOST_AUTO_TEST_CASE(reads_numpy_files) {
  const auto f32 = as<float>(load_npy(kFixtures + "f32_c_2d.npy"));
  BOOST_TEST(f32.shape() == (Shape{3, 4}));
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) BOOST_TEST(f32(i, j) == float(4 * i + j) * 0.5f - 1);

  const auto f64 = as<double>(load_npy(kFixtures + "f64_fortran_3d.npy"));
  BOOST_TEST(f64.shape() == (Shape{2, 3, 4}));
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t k = 0; k < 4; ++k)
        BOOST_TEST(f64(i, j, k) == double(12 * i + 4 * j + k) / 8 + 0.25);

  const auto i64 = as<std::int64_t>(load_npy(kFixtures + "i64_1d.npy"));
  BOOST_TEST(i64.shape() == (Shape{10}));
  for (std::size_t i = 0; i < 10; ++i) BOOST_TEST(i64(i) == (std::int64_t(i) - 5) * 1000000007);

  const auto scalar = as<double>(load_npy(kFixtures + "scalar_f8.npy"));
  BOOST_TEST(scalar.dimension() == 0u);
  BOOST_TEST(scalar() == 3.25);

  const auto empty = as<float>(load_npy(kFixtures + "empty_0x3.npy"));
  BOOST_TEST(empty.shape() == (Shape{0, 3}));

  const auto be = as<double>(load_npy(kFixtures + "be_f8.npy"));
  BOOST_TEST(be.shape() == (Shape{2, 3}));
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(be.data()[i] == double(i) * 1.5 - 2);

  const auto bef = as<std::int64_t>(load_npy(kFixtures + "be_i8_fortran.npy"));
  BOOST_TEST(bef == (IndexArray{{-3, -2, -1}, {0, 1, 2}}));

  for (const char* v : {"f32_v2.npy", "f32_v3.npy"})
    BOOST_TEST(as<float>(load_npy(kFixtures + v)) == (Array<float>{{0, 1}, {2, 3}}), v);

  // Narrower integer and bool files widen to int64.
  BOOST_TEST(as<std::int64_t>(load_npy(kFixtures + "i4.npy")) ==
             (IndexArray{-2147483648LL, -1, 0, 7, 2147483647LL}));
  BOOST_TEST(as<std::int64_t>(load_npy(kFixtures + "u1.npy")) ==
             (IndexArray{250, 251, 252, 253, 254, 255}));
  BOOST_TEST(as<std::int64_t>(load_npy(kFixtures + "b1.npy")) ==
             (IndexArray{{1, 0, 1}, {0, 0, 1}}));
}

BOOST_AUTO_TEST_CASE(reads_numpy_savez) {
  const ArrayMap m = load_npz(kFixtures + "savez.npz");
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) keys.push_back(k);
  BOOST_TEST(keys == (std::vector<std::string>{"bias", "empty", "ids", "steps", "weights"}),
             fmt::format("{}", keys));
  BOOST_TEST(as<float>(m.at("weights")) == (Array<float>{{0, .25f, .5f}, {.75f, 1, 1.25f}}));
  BOOST_TEST(as<double>(m.at("bias")) == (Array<double>{0.5, -0.5}));
  BOOST_TEST(as<std::int64_t>(m.at("steps")).dimension() == 0u);
  BOOST_TEST(as<std::int64_t>(m.at("steps"))() == 7);
  BOOST_TEST(as<std::int64_t>(m.at("ids")) == (IndexArray{0, 1, 2, 3, 4}));
  BOOST_TEST(as<double>(m.at("empty")).shape() == (Shape{0}));
}

BOOST_AUTO_TEST_CASE(npz_round_trip_and_empty_archive) {
  TempDir tmp;
  ArrayMap m;
  m.emplace("weights/0", ramp<float>(Shape{2, 3}, 0.5, 1));
  m.emplace("b", ramp<double>(Shape{}, 0, 2.5));
  m.emplace("ids", ramp<std::int64_t>(Shape{0, 4}, 1, 0));
  m.emplace("\xc3\xa9t\xc3\xa9", ramp<std::int64_t>(Shape{3}, -7, 1));  // UTF-8 key
  save_npz(tmp / "m.npz", m);
  const ArrayMap r = load_npz(tmp / "m.npz");
  BOOST_TEST(r.size() == m.size());
  for (const auto& [k, v] : m) BOOST_TEST((r.count(k) == 1 && r.at(k) == v), k);

  save_npz(tmp / "e.npz", {});
  BOOST_TEST(read_file(tmp / "e.npz").size() == 22u);
  BOOST_TEST(load_npz(tmp / "e.npz").empty());

  BOOST_CHECK_EXCEPTION(save_npz(tmp / "k.npz", ArrayMap{{"", AnyArray{}}}), ValueError,
                        says(tmp / "k.npz", {"non-empty"}));
  BOOST_CHECK_EXCEPTION(save_npz(tmp / "k.npz", ArrayMap{{std::string("a\0b", 3), AnyArray{}}}),
                        ValueError, says(tmp / "k.npz", {"NUL"}));
  BOOST_TEST(!fs::exists(tmp / "k.npz"));
}

// A local header with the data-descriptor flag may hold zero sizes and CRC: the central directory
// is trusted.
BOOST_AUTO_TEST_CASE(npz_data_descriptor_flag) {
  TempDir tmp;
  std::string z = small_npz(tmp);
  const ZipLayout l = layout(z);
  for (std::size_t i = 0; i < l.local.size(); ++i) {
    z[l.local[i] + 6] |= 8;
    z[l.central[i] + 8] |= 8;
    for (std::size_t f = 14; f < 26; ++f) z[l.local[i] + f] = 0;  // CRC, sizes
  }
  const ArrayMap m = parse_z(z);
  BOOST_TEST(as<float>(m.at("w")) == (Array<float>{-1, 0.5f}));
}

// array_cast<T>: float32 <-> float64; int64 to floats only when exact; floats never to int64.
BOOST_AUTO_TEST_CASE(array_cast_rules) {
  const AnyArray f = Array<float>{1.5f, -2.25f};
  BOOST_TEST(array_cast<double>(f, "x") == (Array<double>{1.5, -2.25}));
  BOOST_TEST(array_cast<float>(AnyArray{Array<double>{0.1}}, "x")() == 0.1f);
  BOOST_TEST(array_cast<std::int64_t>(AnyArray{IndexArray{-3, 4}}, "x") == (IndexArray{-3, 4}));
  BOOST_TEST(array_cast<double>(AnyArray{IndexArray{-3, std::int64_t(1) << 53}}, "x") ==
             (Array<double>{-3, 9007199254740992.0}));
  BOOST_TEST(array_cast<float>(AnyArray{IndexArray{INT64_MIN}}, "x")() == -9223372036854775808.0f);
  BOOST_CHECK_EXCEPTION(array_cast<std::int64_t>(f, "m.npz:w"), IoError,
                        says("m.npz:w", {"float32", "int64"}));
  BOOST_CHECK_EXCEPTION(
      array_cast<double>(AnyArray{IndexArray{0, (std::int64_t(1) << 53) + 1}}, "f:k"), IoError,
      says("f:k", {"9007199254740993", "float64"}));
  BOOST_CHECK_EXCEPTION(array_cast<float>(AnyArray{IndexArray{INT64_MAX}}, "f:k"), IoError,
                        says("f:k", {"float32"}));
  BOOST_TEST(dtype_name(dtype_of(f)) == "float32");
}

BOOST_AUTO_TEST_CASE(file_errors_name_the_path) {
  TempDir tmp;
  BOOST_CHECK_EXCEPTION(read_file(tmp / "missing.npy"), IoError,
                        says(tmp / "missing.npy", {"cannot open"}));
  BOOST_CHECK_EXCEPTION(load_npz(tmp / "missing.npz"), IoError,
                        says(tmp / "missing.npz", {"No such file"}));
  BOOST_CHECK_EXCEPTION(write_file_atomic(tmp / "no/dir/x.npy", "x"), IoError,
                        says(tmp / "no/dir/x.npy", {"cannot write"}));
  // Renaming over a directory fails: the temporary must not be left behind.
  fs::create_directories(tmp / "d");
  BOOST_CHECK_EXCEPTION(save_npy(tmp / "d", AnyArray{}), IoError, says(tmp / "d", {"rename"}));
  for (const auto& e : fs::directory_iterator(tmp.dir))  // the temporary is not left behind
    BOOST_TEST(e.path().filename() == "d");
  write_file_atomic(tmp / "over", "old contents");
  write_file_atomic(tmp / "over", "new");
  BOOST_TEST(read_file(tmp / "over") == "new");
}

BOOST_AUTO_TEST_CASE(npy_errors) {
  const std::string good = npy_bytes(ramp<float>(Shape{2, 3}, 1, 0));  // 128-byte header + 24 bytes
  const std::string d24(24, '\0');
  // Truncated at several points.
  BOOST_CHECK_EXCEPTION(parse(""), IoError, says("t.npy", {"truncated", "0 bytes"}));
  BOOST_CHECK_EXCEPTION(parse(good.substr(0, 4)), IoError, says("t.npy", {"truncated"}));
  BOOST_CHECK_EXCEPTION(parse(good.substr(0, 9)), IoError,
                        says("t.npy", {"truncated", "header length"}));
  BOOST_CHECK_EXCEPTION(parse(good.substr(0, 40)), IoError,
                        says("t.npy", {"truncated header", "118"}));
  BOOST_CHECK_EXCEPTION(parse(good.substr(0, 128)), IoError,
                        says("t.npy", {"truncated", "needs 24 bytes but 0"}));
  BOOST_CHECK_EXCEPTION(parse(good.substr(0, 140)), IoError,
                        says("t.npy", {"truncated", "(2, 3)", "12 are present"}));
  BOOST_CHECK_EXCEPTION(parse(good + "xy"), IoError, says("t.npy", {"2 trailing bytes"}));
  // Magic and version.
  BOOST_CHECK_EXCEPTION(parse("PK\x03\x04 not npy"), IoError,
                        says("t.npy", {"wrong magic", "PK\\x03\\x04"}));
  BOOST_CHECK_EXCEPTION(parse("\x93NUM"), IoError, says("t.npy", {"truncated"}));
  std::string v = good;
  v[6] = 4;
  BOOST_CHECK_EXCEPTION(parse(v), IoError, says("t.npy", {"unsupported .npy format version 4.0"}));
  v[6] = 1, v[7] = 1;
  BOOST_CHECK_EXCEPTION(parse(v), IoError, says("t.npy", {"version 1.1"}));
  // Header length.
  const std::string big =
      std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff", 12) + std::string(100, ' ');
  BOOST_CHECK_EXCEPTION(parse(big), IoError, says("t.npy", {"absurd header length 4294967295"}));
  const std::string mib =
      std::string("\x93NUMPY\x02\x00\x01\x00\x10\x00", 12) + std::string(100, ' ');
  BOOST_CHECK_EXCEPTION(parse(mib), IoError, says("t.npy", {"absurd header length 1048577"}));
  v = good;
  v[8] = '\xff';
  BOOST_CHECK_EXCEPTION(parse(v), IoError,
                        says("t.npy", {"truncated header", "header length 255", "only 142"}));
  // Malformed dicts.
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  BOOST_TEST((parse(npy_file(ok_dict, d24)) == AnyArray{Array<float>(Shape{2, 3}, 0.f)}));
  BOOST_TEST(shape_of(parse(npy_file("{\"shape\":(2,3),\"fortran_order\":True,\"descr\":\"<f4\"}",
                                     d24))) == (Shape{2, 3}));
  BOOST_TEST(shape_of(parse(npy_file(ok_dict, d24, 2))) == (Shape{2, 3}));
  const std::vector<std::pair<std::string, std::string>> bad_dicts = {
      {"'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", "must start with '{'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", "expected a quoted key"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}", "expected ',' or '}'"},
      {"{'descr': <f4, 'fortran_order': False, 'shape': (2, 3)}", "unsupported dtype"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", "expected ',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}", "not a list"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", "trailing comma"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}", "expected an integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x", "after the closing"},
      {"{'descr': '<f4', 'fortran_order': False}", "lacks the key 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", "unexpected key 'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
       "duplicate key 'descr'"},
      {"{'descr': '<f4\n', 'fortran_order': False, 'shape': (2, 3)}", "unsupported character"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", "expected ',' or ')'"},
  };
  for (const auto& [dict, msg] : bad_dicts)
    BOOST_CHECK_EXCEPTION(parse(npy_file(dict, d24)), IoError, says("t.npy", {msg}));
  // dtypes and shapes.
  auto dict = [](const std::string& descr, const std::string& shape) {
    return fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape);
  };
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("<c8", "(3,)"), d24)), IoError,
                        says("t.npy", {"unsupported dtype '<c8'"}));
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("|f4", "(6,)"), d24)), IoError,
                        says("t.npy", {"unsupported dtype '|f4'"}));
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("<U3", "(2,)"), d24)), IoError,
                        says("t.npy", {"holds text (numpy '<U3'), not numbers"}));
  BOOST_CHECK_EXCEPTION(
      parse(npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", d24)),
      IoError, says("t.npy", {"unsupported dtype", "[('a'"}));
  const std::string huge = "(4611686018427387904, 4611686018427387904)";  // (2**62, 2**62)
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("<f4", huge), d24)), IoError,
                        says("t.npy", {"overflows", huge}));
  BOOST_CHECK_EXCEPTION(
      parse(npy_file(dict("|u1", "(0, 4611686018427387904, 4611686018427387904)"), "")), IoError,
      says("t.npy", {"overflows"}));
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("<f8", "(3, 1537228672809129302)"), d24)), IoError,
                        says("t.npy", {"overflows"}));
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("<f4", "(9223372036854775808,)"), d24)), IoError,
                        says("t.npy", {"too large"}));
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("<f4", "(-1, 3)"), d24)), IoError,
                        says("t.npy", {"negative dimension -1"}));
  std::string many = "(";
  for (int i = 0; i < 33; ++i) many += "1, ";
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("<f4", many + ")"), d24)), IoError,
                        says("t.npy", {"more than 32 dims"}));
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict("<f4", "(2, 2)"), d24)), IoError,
                        says("t.npy", {"8 trailing bytes", "(2, 2)"}));
  BOOST_CHECK_EXCEPTION(parse(npy_file(dict(">i8", "(4,)"), d24)), IoError,
                        says("t.npy", {"truncated", "needs 32 bytes"}));
  // Huge zero-size shapes are fine and allocate nothing.
  BOOST_TEST(shape_of(parse(npy_file(dict("|u1", "(0, 4611686018427387904)"), ""))) ==
             (Shape{0, std::size_t(1) << 62}));
  // Big-endian and little-endian int64 decode the same value.
  const std::string be = std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  BOOST_TEST(as<std::int64_t>(parse(npy_file(dict(">i8", "()"), be)))() == 0x0102030405060708LL);
  BOOST_TEST(as<std::int64_t>(parse(npy_file(dict("<i8", "()"), be)))() == 0x0807060504030201LL);
  BOOST_TEST(as<float>(parse(npy_file(dict(">f4", "(1,)"), std::string("\x3f\xc0\x00\x00", 4))))(
                 0) == 1.5f);
}

BOOST_AUTO_TEST_CASE(npz_errors) {
  TempDir tmp;
  const std::string good = small_npz(tmp);  // entries n.npy (0-d int64) then w.npy (float32 [2])
  const ZipLayout l = layout(good);
  BOOST_REQUIRE(l.local.size() == 2u);
  const std::size_t w_local = l.local[1], w_central = l.central[1];
  const std::size_t w_data = w_local + 30 + 5;

  BOOST_TEST((as<double>(load_npz(kFixtures + "savez_compressed.npz").at("a")) ==
              Array<double>{0, 1, 2, 3}));  // numpy.savez_compressed: deflated entries
  BOOST_CHECK_EXCEPTION(parse_z(""), IoError, says("t.npz", {"no zip end-of-central-directory"}));
  BOOST_CHECK_EXCEPTION(parse_z(good.substr(0, good.size() - 1)), IoError,
                        says("t.npz", {"end-of-central-directory"}));
  BOOST_CHECK_EXCEPTION(parse_z(good.substr(0, 100)), IoError,
                        says("t.npz", {"end-of-central-directory"}));
  BOOST_CHECK_EXCEPTION(parse_z(good + "junk"), IoError,
                        says("t.npz", {"end-of-central-directory"}));
  BOOST_CHECK_EXCEPTION(parse_z(read_file(kFixtures + "i4.npy")), IoError,
                        says("t.npz", {"a .npy file, not an .npz"}));
  // Cutting out the start keeps the end record but loses the entries.
  BOOST_CHECK_EXCEPTION(parse_z(good.substr(50)), IoError,
                        says("t.npz", {"central directory", "outside"}));

  std::string z = good;  // bad CRC: one data byte changed
  z[w_data + 130] ^= 1;
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"CRC-32 mismatch"}));

  z = good;  // the directory lies about the size (compressed and uncompressed alike)
  wr32(z, w_central + 20, 100000);
  wr32(z, w_central + 24, 100000);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"local header", "disagrees"}));
  wr32(z, w_local + 18, 100000);  // ... and so does the local header
  wr32(z, w_local + 22, 100000);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"100000 bytes", "runs past"}));
  z = good;  // stored entry with differing sizes
  wr32(z, w_central + 24, 7);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError,
                        says("t.npz:w", {"compressed size 136 but uncompressed size 7"}));
  z = good;  // first entry's size grown into the second entry
  for (std::size_t at : {l.central[0] + 20, l.central[0] + 24, l.local[0] + 18, l.local[0] + 22})
    wr32(z, at, rd32(z, at) + 40);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz", {"overlap"}));
  z = good;
  wr32(z, w_central + 42, 7);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError,
                        says("t.npz:w", {"bad local header signature at offset 7"}));
  z = good;
  wr32(z, w_central + 42, 0xfffffff0);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"local header offset", "outside"}));
  z = good;
  z[w_local + 30] = 'v';
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"local header name 'v.npy'"}));
  z = good;  // method 8 in the directory only
  z[w_central + 10] = 8;
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"local header method differs"}));
  z[w_central + 10] = 12;
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"compression method 12"}));
  z = good;
  z[w_central + 8] = 1;
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"encrypted"}));
  z = good;  // zip64
  wr32(z, w_central + 20, 0xffffffff);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"zip64"}));
  z = good;
  wr32(z, l.eocd + 16, 0xffffffff);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz", {"zip64 archives are not supported"}));
  z = good;
  z[l.eocd + 10] = 9;  // entry count
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz", {"multi-disk"}));
  z[l.eocd + 8] = 9;
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz", {"too small for 9 entries"}));
  z = good;
  z[l.eocd + 8] = z[l.eocd + 10] = 1;
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz", {"unexpected bytes after its entries"}));
  z = good;
  z[w_central] = 'X';
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz", {"entry 1 has a bad signature"}));

  // Duplicate keys: rename w.npy to n.npy in both headers.
  z = good;
  z[w_local + 30] = z[w_central + 46] = 'n';
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz", {"duplicate key 'n'"}));
  z[w_local + 30] = z[w_central + 46] = '\0';
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz", {"invalid name '\\x00.npy'"}));

  // A bad .npy inside a zip with a correct CRC: the error names file:key.
  z = good;
  z[w_data + 1] = 'X';
  const std::uint32_t crc = crc32(z.data() + w_data, 136);
  wr32(z, w_local + 14, crc);
  wr32(z, w_central + 16, crc);
  BOOST_CHECK_EXCEPTION(parse_z(z), IoError, says("t.npz:w", {"wrong magic"}));

  // A comment after the end record is allowed.
  z = good;
  z[z.size() - 2] = 5;
  BOOST_TEST(parse_z(z + "hello").size() == 2u);
}

// Every truncation and many single-byte mutations either parse or throw IoError (no crash,
// no other exception, no read out of bounds under ASan).
BOOST_AUTO_TEST_CASE(mutation_sweep_never_crashes) {
  TempDir tmp;
  int parsed = 0, rejected = 0;
  const std::string z = small_npz(tmp);
  sweep(
      z, [](const std::string& b) { parse_z(b); }, parsed, rejected);
  BOOST_TEST_MESSAGE("npz: " << parsed << " parsed, " << rejected << " rejected");
  BOOST_TEST(rejected > int(z.size()));
  const std::string fortran = read_file(kFixtures + "be_i8_fortran.npy");
  const std::string plain = npy_bytes(ramp<double>(Shape{2, 3}, 1, 0));
  for (const std::string& npy : {fortran, plain}) {
    parsed = rejected = 0;
    sweep(
        npy, [](const std::string& b) { parse(b); }, parsed, rejected);
    BOOST_TEST_MESSAGE("npy: " << parsed << " parsed, " << rejected << " rejected");
    BOOST_TEST(parsed > 0);
    BOOST_TEST(rejected > int(npy.size()));
  }
}

// Writes files for `make_npy_fixtures.py --check DIR` when XGRAD_NPY_EXPORT=DIR is set
// (a manual check that numpy reads what xgrad writes); otherwise just round-trips them.
BOOST_AUTO_TEST_CASE(export_for_numpy) {
  TempDir tmp;
  const char* env = std::getenv("XGRAD_NPY_EXPORT");
  const std::string dir = env ? env : tmp.dir.string();
  ArrayMap m;
  m.emplace("xg_f32_2d", ramp<float>(Shape{2, 3}, 0.25, -1));
  m.emplace("xg_f64_4d", ramp<double>(Shape{2, 3, 4, 5}, 1.0 / 3, 0));
  m.emplace("xg_i64_1d", ramp<std::int64_t>(Shape{7}, 1e15, -3e15));
  m.emplace("xg_f64_0d", ramp<double>(Shape{}, 0, -2.5));
  m.emplace("xg_i64_empty", ramp<std::int64_t>(Shape{2, 0, 3}, 1, 0));
  for (const auto& [k, a] : m) {
    save_npy(dir + "/" + k + ".npy", a);
    BOOST_TEST((load_npy(dir + "/" + k + ".npy") == a), k);
  }
  save_npz(dir + "/xg_arrays.npz", m);
  save_npz(dir + "/xg_empty.npz", {});
  BOOST_TEST(load_npz(dir + "/xg_arrays.npz").size() == 5u);
}

BOOST_AUTO_TEST_SUITE_END()
