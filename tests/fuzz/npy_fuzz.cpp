// libFuzzer target for the .npy and .npz readers: any input must either parse or throw IoError,
// and whatever parses must survive a write/read round trip unchanged. Not built by CMake:
//
//   clang++ -std=c++20 -O1 -g -march=x86-64-v3 -DXTENSOR_USE_XSIMD -fsanitize=fuzzer,address,undefined \
//     -I<dir holding an xgrad -> repo symlink> tests/fuzz/npy_fuzz.cpp tensor/npy.cpp tensor/shape.cpp \
//     -lfmt -o npy_fuzz
//   ./npy_fuzz -max_len=4096 corpus_work tests/fuzz/corpus tests/fixtures/npy
#include <cstdint>
#include <cstdlib>

#include <xgrad/tensor/npy.hpp>

namespace {

// npy_bytes(parse(npy_bytes(a))) == npy_bytes(a): compares bytes, so NaNs compare equal.
void check_round_trip(const xg::AnyArray& a) {
  const std::string bytes = xg::npy_bytes(a);
  if (xg::npy_bytes(xg::parse_npy(bytes.data(), bytes.size(), "round trip")) != bytes) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  try {
    check_round_trip(xg::parse_npy(p, size, "fuzz.npy"));
  } catch (const xg::IoError&) {
  }
  try {
    for (const auto& [key, a] : xg::parse_npz(p, size, "fuzz.npz")) check_round_trip(a);
  } catch (const xg::IoError&) {
  }
  return 0;
}
