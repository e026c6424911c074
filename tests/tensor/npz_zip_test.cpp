// Compressed .npz (numpy.savez_compressed), text entries, files that are not .npz (PyTorch files,
// pickles, other zips), zip bombs, and the whole-file read limits. Fixtures:
// tests/fixtures/make_zip_fixtures.py (standard library) and make_npy_fixtures.py (numpy).
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;
namespace fs = std::filesystem;

namespace {
const std::string kZip = std::string(XGRAD_FIXTURES) + "/zip/";
const std::string kNpy = std::string(XGRAD_FIXTURES) + "/npy/";

struct Scratch {
  fs::path dir = fs::temp_directory_path() / fmt::format("xgrad_npz_zip_test_{}", ::getpid());
  Scratch() { fs::create_directories(dir); }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

// A zip of one deflated entry (raw deflate, as zipfile writes) holding `npy`.
std::string deflated_zip(const std::string& name, const std::string& npy) {
  std::string comp(compressBound(static_cast<uLong>(npy.size())) + 64, '\0');
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(npy.data()));
  z.avail_in = static_cast<uInt>(npy.size());
  z.next_out = reinterpret_cast<Bytef*>(comp.data());
  z.avail_out = static_cast<uInt>(comp.size());
  deflate(&z, Z_FINISH);
  comp.resize(z.total_out);
  deflateEnd(&z);
  const auto crc = static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(npy.data()),
                                                    static_cast<uInt>(npy.size())));
  auto u16 = [](std::string& s, unsigned v) { s += char(v & 0xff), s += char(v >> 8 & 0xff); };
  auto u32 = [&](std::string& s, std::uint32_t v) { u16(s, v & 0xffff), u16(s, v >> 16); };
  auto common = [&](std::string& s) {
    for (unsigned v : {20u, 0u, 8u, 0u, 33u}) u16(s, v);
    u32(s, crc), u32(s, static_cast<std::uint32_t>(comp.size())), u32(s, static_cast<std::uint32_t>(npy.size()));
    u16(s, static_cast<unsigned>(name.size())), u16(s, 0);
  };
  std::string out;
  u32(out, 0x04034b50), common(out), out += name, out += comp;
  const auto cd = static_cast<std::uint32_t>(out.size());
  u32(out, 0x02014b50), u16(out, 20), common(out);
  for (int i = 0; i < 3; ++i) u16(out, 0);
  u32(out, 0), u32(out, 0), out += name;
  const auto cd_size = static_cast<std::uint32_t>(out.size() - cd);
  u32(out, 0x06054b50);
  for (unsigned v : {0u, 0u, 1u, 1u}) u16(out, v);
  u32(out, cd_size), u32(out, cd), u16(out, 0);
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(npz_zip)

BOOST_AUTO_TEST_CASE(reads_savez_compressed_files) {
  const NpzContents c = parse_npz_contents(read_file(kZip + "compressed.npz").data(),
                                           read_file(kZip + "compressed.npz").size(), "c.npz");
  BOOST_TEST(c.arrays.size() == 3u);
  BOOST_TEST((std::get<Array<float>>(c.arrays.at("w")) == Array<float>{{0.f, .25f, .5f}, {.75f, 1.f, 1.25f}}));
  BOOST_TEST((std::get<Array<double>>(c.arrays.at("b")) == Array<double>{0.5, -0.5}));
  BOOST_TEST(scalar_of(c.arrays.at("n"), "n") == 7.0);
  BOOST_TEST(c.texts.at("t") == "h\xc3\xa9llo");  // UTF-32 in the file, UTF-8 here
  // load_npz wants numbers only and says which entry is text.
  BOOST_CHECK_EXCEPTION(load_npz(kZip + "compressed.npz"), IoError,
                        mentions({kZip + "compressed.npz", "entry 't' holds text"}));
  // A model loads from a savez_compressed state_dict.
  nn::Linear<double> lin(3, 2);
  ArrayMap sd{{"weight", full<double>(Shape{2, 3}, 0.25)}, {"bias", full<double>(Shape{2}, -1.0)}};
  Scratch tmp;
  write_file_atomic(tmp / "lin.npz", deflated_zip("weight.npy", npy_bytes(sd.at("weight"))));
  BOOST_CHECK_EXCEPTION(lin.load(tmp / "lin.npz"), ValueError, mentions({"missing keys: bias", tmp / "lin.npz"}));
}

BOOST_AUTO_TEST_CASE(deflated_entries_are_checked_like_stored_ones) {
  const std::string npy = npy_bytes(Array<double>{1.0, 2.0, 3.0});
  const std::string good = deflated_zip("x.npy", npy);
  BOOST_TEST((std::get<Array<double>>(parse_npz(good.data(), good.size(), "d.npz").at("x")) ==
              Array<double>{1, 2, 3}));
  const std::size_t data = 30 + 5;  // local header + name
  std::string z = good;
  z[data + 2] = static_cast<char>(z[data + 2] ^ 0x55);  // corrupt the deflate stream
  BOOST_CHECK_EXCEPTION(parse_npz(z.data(), z.size(), "d.npz"), IoError, mentions("d.npz:x"));
  // The directory understates the inflated size: refused, nothing written past the buffer.
  z = good;
  const std::size_t cd = z.rfind(std::string("PK\1\2", 4));
  z[cd + 24] = static_cast<char>(z[cd + 24] - 8), z[22] = z[cd + 24];
  BOOST_CHECK_EXCEPTION(parse_npz(z.data(), z.size(), "d.npz"), IoError,
                        mentions({"d.npz:x", "more than the"}));
  // It overstates it: the stream ends early.
  z = good;
  z[cd + 24] = static_cast<char>(z[cd + 24] + 8), z[22] = z[cd + 24];
  BOOST_CHECK_EXCEPTION(parse_npz(z.data(), z.size(), "d.npz"), IoError,
                        mentions({"d.npz:x", "inflates to 152 bytes (directory: 160)"}));
  // A wrong CRC-32 over the inflated bytes.
  z = good;
  z[cd + 16] = static_cast<char>(z[cd + 16] ^ 1), z[14] = z[cd + 16];
  BOOST_CHECK_EXCEPTION(parse_npz(z.data(), z.size(), "d.npz"), IoError, mentions({"d.npz:x", "CRC-32"}));
}

BOOST_AUTO_TEST_CASE(zip_bombs_are_refused_before_allocating) {
  BOOST_CHECK_EXCEPTION(load_npz(kZip + "bomb.npz"), IoError,
                        mentions({kZip + "bomb.npz:a", "claims to inflate to 4294967294 bytes"}));
  // Honest entries over the total limit: 64 KiB of zeros inflate past a 32 KiB cap.
  const std::string z = deflated_zip("zeros.npy", npy_bytes(zeros<double>(Shape{8192})));
  BOOST_TEST(z.size() < 1024u);
  BOOST_CHECK_EXCEPTION(parse_npz_contents(z.data(), z.size(), "b.npz", 32768), IoError,
                        mentions({"b.npz", "more than 32768 bytes (the limit)"}));
  BOOST_TEST(parse_npz_contents(z.data(), z.size(), "b.npz", 1 << 20).arrays.size() == 1u);
}

BOOST_AUTO_TEST_CASE(pytorch_files_and_other_zips_get_a_clear_message) {
  nn::Linear<float> lin(3, 2);
  const ArrayMap before = lin.state_dict();
  BOOST_CHECK_EXCEPTION(lin.load(kZip + "torch.pt"), IoError,
                        mentions({kZip + "torch.pt", "PyTorch file", "archive/data.pkl", "numpy.savez"}));
  BOOST_CHECK_EXCEPTION(lin.load(kZip + "pickle.pt"), IoError,
                        mentions({kZip + "pickle.pt", "Python pickle", "numpy.savez"}));
  BOOST_CHECK_EXCEPTION(load_npy(kZip + "pickle.pt"), IoError, mentions({kZip + "pickle.pt", "Python pickle"}));
  BOOST_CHECK_EXCEPTION(load_checkpoint(kZip + "torch.pt"), IoError, mentions({"PyTorch file"}));
  BOOST_CHECK_EXCEPTION(lin.load(kZip + "other.zip"), IoError,
                        mentions({kZip + "other.zip", "'readme.txt' is not a .npy array", "not a NumPy .npz"}));
  BOOST_TEST((lin.state_dict().at("weight") == before.at("weight")));
}

BOOST_AUTO_TEST_CASE(text_is_written_as_numpy_writes_a_str) {
  // Byte for byte what numpy.save(np.array("héllo")) wrote.
  BOOST_TEST(text_npy_bytes("h\xc3\xa9llo") == read_file(kNpy + "text_U5.npy"));
  const std::string b = read_file(kNpy + "text_U5.npy");
  BOOST_TEST(parse_text_npy(b.data(), b.size(), "t") == "h\xc3\xa9llo");
  BOOST_CHECK_EXCEPTION(parse_npy(b.data(), b.size(), "t.npy"), IoError, mentions({"t.npy", "holds text"}));
  for (const std::string s : {"", "a", "rng 123 0 0x0p+0", "\xf0\x9f\x98\x80 emoji"}) {
    const std::string e = text_npy_bytes(s);
    BOOST_TEST(parse_text_npy(e.data(), e.size(), "t") == s);
  }
  BOOST_CHECK_EXCEPTION(text_npy_bytes("bad \xff byte"), ValueError, mentions("not valid UTF-8"));
  BOOST_CHECK_EXCEPTION(text_npy_bytes(std::string("nul\0", 4)), ValueError, mentions("NUL"));
  const std::string n = npy_bytes(Array<double>{1.0});
  BOOST_CHECK_EXCEPTION(parse_text_npy(n.data(), n.size(), "n.npy"), IoError, mentions({"n.npy", "not text"}));
  Scratch tmp;
  save_npz(tmp / "m.npz", {{"x", Array<double>{1.0}}}, {{"note", "hi"}});
  const std::string m = read_file(tmp / "m.npz");
  const NpzContents c = parse_npz_contents(m.data(), m.size(), "m.npz");
  BOOST_TEST(c.texts.at("note") == "hi");
  BOOST_TEST(c.arrays.size() == 1u);
  BOOST_CHECK_EXCEPTION(save_npz(tmp / "m.npz", {{"x", Array<double>{1.0}}}, {{"x", "hi"}}), ValueError,
                        mentions("both an array and a text"));
}

BOOST_AUTO_TEST_CASE(whole_file_reads_are_limited) {
  nn::Linear<float> lin(3, 2);
  BOOST_CHECK_EXCEPTION(lin.load("/dev/zero"), IoError, mentions({"/dev/zero", "a device, not a file"}));
  BOOST_CHECK_EXCEPTION(load_checkpoint("/dev/zero"), IoError, mentions({"/dev/zero", "device"}));
  Scratch tmp;
  BOOST_CHECK_EXCEPTION(lin.load(tmp.dir.string()), IoError, mentions({tmp.dir.string(), "a folder"}));
  write_file_atomic(tmp / "big", std::string(100, 'x'));
  BOOST_TEST(read_file(tmp / "big", 100).size() == 100u);
  BOOST_CHECK_EXCEPTION(read_file(tmp / "big", 99), IoError,
                        mentions({tmp / "big", "100 bytes, more than the limit of 99"}));
  // A pipe has no size up front: the limit applies while reading.
  const std::string fifo = tmp / "fifo";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::signal(SIGPIPE, SIG_IGN);  // the reader stops early; the writer must not die of it
  std::thread writer([&] {
    FILE* f = std::fopen(fifo.c_str(), "w");
    if (!f) return;
    std::string junk(5000, 'y');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  });
  BOOST_CHECK_EXCEPTION(read_file(fifo, 4096), IoError, mentions({fifo, "more than the limit of 4096"}));
  writer.join();
}

BOOST_AUTO_TEST_SUITE_END()
