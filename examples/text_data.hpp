// What the text examples share beyond common.hpp: reading files with errors that name them, UTF-8
// as characters, vocabularies, shuffling, variable-length batches and the streams that truncated
// backpropagation through time walks, and words given after `--` on the command line.
//
//     const std::string text = ex::read_file(path);            // IoError "path: ..." on failure
//     std::vector<std::string> chars = ex::utf8_chars(text);   // "é" is one character
//     ex::Vocab vocab;  for (auto& ch : chars) vocab.add(ch);  // id 0 is <pad>, 1 is <unk>
//     auto batches = ex::bucket_batches(lengths, train_idx, 64, &gen);   // similar lengths
//     together ex::Padded b = ex::pad_batch(sequences, batches[0]);     // ids [T, B] + lengths
//
// Everything here is a header (inline), so an example that includes it needs no new library.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
#include <xgrad/xgrad.hpp>

namespace ex {

// ---- Files
// -----------------------------------------------------------------------------------------

/// The whole file as bytes. Throws IoError "<path>: cannot read (<reason>)" when it cannot be
/// opened or read, and when it is a directory.
inline std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw xg::IoError(fmt::format("{}: is a directory, not a file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw xg::IoError(fmt::format("{}: cannot read ({})", path, std::strerror(errno)));
  std::ostringstream s;
  try {
    s << in.rdbuf();
  } catch (const std::exception& e) {
    throw xg::IoError(fmt::format("{}: cannot read ({})", path, e.what()));
  }
  if (in.bad()) throw xg::IoError(fmt::format("{}: cannot read (a read error)", path));
  return std::move(s).str();
}

/// Lines without their "\n" (and without a "\r" before it).
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::size_t stop = end;
    if (stop > start && text[stop - 1] == '\r') --stop;
    lines.emplace_back(text, start, stop - start);
    start = end + 1;
  }
  return lines;
}

// ---- UTF-8
// -----------------------------------------------------------------------------------------

/// The replacement character U+FFFD, which stands for every malformed byte.
inline constexpr char32_t kReplacement = 0xFFFD;

/// Decodes UTF-8 into code points. Each malformed byte (a stray continuation byte, a truncated or
/// overlong sequence, a surrogate) becomes one U+FFFD and is counted in `*invalid`.
inline std::u32string utf8_decode(std::string_view s, std::size_t* invalid = nullptr) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    char32_t cp = 0, min = 0;
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    } else if ((b0 & 0xE0) == 0xC0) {
      n = 1, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      n = 2, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      n = 3, cp = b0 & 0x07, min = 0x10000;
    }
    bool ok = n > 0;
    for (std::size_t k = 1; ok && k <= n; ++k) {
      if (i + k >= s.size()) {
        ok = false;
        break;
      }
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (ok) {
      out.push_back(cp);
      i += n + 1;
    } else {
      out.push_back(kReplacement);
      ++bad;
      ++i;
    }
  }
  if (invalid) *invalid += bad;
  return out;
}

/// One code point as UTF-8.
inline std::string utf8_encode(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

inline std::string utf8_encode(std::u32string_view s) {
  std::string out;
  for (char32_t cp : s) out += utf8_encode(cp);
  return out;
}

/// The characters (code points) of a UTF-8 string, each as its own UTF-8 string: "été" gives
/// {"é", "t", "é"}, three characters, not five bytes.
inline std::vector<std::string> utf8_chars(std::string_view s, std::size_t* invalid = nullptr) {
  std::vector<std::string> out;
  for (char32_t cp : utf8_decode(s, invalid)) out.push_back(utf8_encode(cp));
  return out;
}

/// Lower case for the Latin letters of the word lists: ASCII, Latin-1 (À-Þ but ×) and the
/// upper/lower pairs of Latin Extended-A (Ā-ž). Other code points are returned unchanged.
inline char32_t latin_lower(char32_t c) {
  if (c >= U'A' && c <= U'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c >= 0x100 && c <= 0x137 && c % 2 == 0) return c + 1;
  if (c >= 0x139 && c <= 0x148 && c % 2 == 1) return c + 1;
  if (c >= 0x14A && c <= 0x177 && c % 2 == 0) return c + 1;
  if (c == 0x178) return 0xFF;
  if (c >= 0x179 && c <= 0x17E && c % 2 == 1) return c + 1;
  return c;
}

/// Whether `c` is a letter of the Latin scripts (ASCII letters, Latin-1 letters, Latin
/// Extended-A/B).
inline bool is_latin_letter(char32_t c) {
  return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z') ||
         (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7);
}

// ---- Vocabularies
// ----------------------------------------------------------------------------------

/// Tokens (characters or words) to ids and back. Id 0 is "<pad>" (fills a batch past a
/// sequence's end) and id 1 is "<unk>" (anything not seen when the vocabulary was built).
class Vocab {
 public:
  static constexpr std::int64_t kPad = 0, kUnk = 1;
  Vocab() : tokens_{"<pad>", "<unk>"} {}

  /// Adds `token` if it is new; returns its id.
  std::int64_t add(const std::string& token) {
    auto [it, added] = ids_.try_emplace(token, static_cast<std::int64_t>(tokens_.size()));
    if (added) tokens_.push_back(token);
    return it->second;
  }
  /// The token's id, or kUnk.
  std::int64_t id(const std::string& token) const {
    auto it = ids_.find(token);
    return it == ids_.end() ? kUnk : it->second;
  }
  bool contains(const std::string& token) const { return ids_.count(token) > 0; }
  const std::string& token(std::int64_t id) const {
    return tokens_.at(static_cast<std::size_t>(id));
  }
  std::size_t size() const { return tokens_.size(); }
  std::vector<std::int64_t> ids(const std::vector<std::string>& tokens) const {
    std::vector<std::int64_t> out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) out.push_back(id(t));
    return out;
  }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> ids_;
};

/// A vocabulary of the tokens that occur at least `min_count` times, most frequent first (ties in
/// first-seen order, so the ids depend only on the data).
inline Vocab build_vocab(const std::vector<std::vector<std::string>>& docs,
                         std::size_t min_count = 1) {
  std::unordered_map<std::string, std::size_t> count, first;
  std::vector<std::string> order;
  for (const auto& d : docs)
    for (const auto& t : d)
      if (count[t]++ == 0) {
        first[t] = order.size();
        order.push_back(t);
      }
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return count[a] > count[b]; });
  Vocab v;
  for (const auto& t : order)
    if (count[t] >= min_count) v.add(t);
  return v;
}

/// Whitespace-separated words.
inline std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (i < s.size()) {
    while (i < s.size() && space(s[i])) ++i;
    std::size_t j = i;
    while (j < s.size() && !space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// ---- Shuffling and batches
// -------------------------------------------------------------------------

/// Fisher-Yates with `gen`, so the order depends only on the seed.
template <class V>
void shuffle(V& v, xg::Generator& gen) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen.below(i)]);
}

/// Minibatches of `indices` in which the sequences have similar lengths, so little of a batch is
/// padding. With `gen` (training): shuffled, then sorted by length inside windows of 50 batches,
/// cut into batches and the batches shuffled. Without (evaluation): sorted by length.
inline std::vector<std::vector<std::size_t>> bucket_batches(const std::vector<std::size_t>& lengths,
                                                            std::vector<std::size_t> indices,
                                                            std::size_t batch,
                                                            xg::Generator* gen = nullptr) {
  auto by_length = [&](std::size_t a, std::size_t b) { return lengths[a] < lengths[b]; };
  const std::size_t window = gen ? 50 * batch : indices.size();
  if (gen) shuffle(indices, *gen);
  for (std::size_t lo = 0; lo < indices.size(); lo += window) {
    auto first = indices.begin() + static_cast<std::ptrdiff_t>(lo);
    auto last =
        indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), lo + window));
    std::stable_sort(first, last, by_length);
  }
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t lo = 0; lo < indices.size(); lo += batch)
    out.emplace_back(
        indices.begin() + static_cast<std::ptrdiff_t>(lo),
        indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), lo + batch)));
  if (gen) shuffle(out, *gen);
  return out;
}

/// A padded, time-major batch: ids [T, B] (kPad past each end) and each sequence's length, as
/// the recurrent modules' `lengths` argument wants them.
struct Padded {
  xg::IndexArray ids;
  std::vector<std::size_t> lengths;
};

/// Pads the sequences `seqs[idx[0]], seqs[idx[1]], ...` (each at least one token) to the longest.
inline Padded pad_batch(const std::vector<std::vector<std::int64_t>>& seqs,
                        const std::vector<std::size_t>& idx) {
  Padded p;
  std::size_t T = 1;
  for (std::size_t k : idx) T = std::max(T, seqs[k].size());
  p.ids = xg::full<std::int64_t>(xg::Shape{T, idx.size()}, Vocab::kPad);
  for (std::size_t j = 0; j < idx.size(); ++j) {
    const auto& s = seqs[idx[j]];
    if (s.empty()) throw std::logic_error("pad_batch: an empty sequence");
    for (std::size_t t = 0; t < s.size(); ++t) p.ids(t, j) = s[t];
    p.lengths.push_back(s.size());
  }
  return p;
}

// ---- Streams for truncated backpropagation through time
// -------------------------------------------

/// A token sequence cut into `streams` equal strands read side by side, as a character language
/// model trained with truncated BPTT reads its text: batch k holds the next `chunk` tokens of every
/// strand, and the target is the token after each. The recurrent state of strand j carries over
/// from one batch to the next.
///
///     ex::Streams s(ids, /*streams*/ 32, /*chunk*/ 64);
///     for (std::size_t k = 0; k < s.batches(); ++k) { auto [x, y] = s.batch(k); ... }  // [64, 32]
class Streams {
 public:
  Streams(const std::vector<std::int64_t>& ids, std::size_t streams, std::size_t chunk)
      : ids_(&ids), streams_(streams), chunk_(chunk) {
    if (streams == 0 || chunk == 0)
      throw xg::ValueError("Streams: streams and chunk must be positive");
    strand_ = ids.size() / streams;
    if (strand_ < 2)
      throw xg::ValueError(
          fmt::format("the text ({} characters) is too short for {} streams", ids.size(), streams));
  }
  /// Batches in one pass over the strands (the last may be shorter than `chunk`).
  std::size_t batches() const { return (strand_ - 1 + chunk_ - 1) / chunk_; }
  std::size_t streams() const { return streams_; }
  /// Tokens predicted in one pass.
  std::size_t tokens() const { return (strand_ - 1) * streams_; }

  /// Inputs and targets [T, streams] of batch k (k < batches()).
  std::pair<xg::IndexArray, xg::IndexArray> batch(std::size_t k) const {
    const std::size_t start = k * chunk_;
    const std::size_t T = std::min(chunk_, strand_ - 1 - start);
    xg::IndexArray x = xg::IndexArray::from_shape({T, streams_}),
                   y = xg::IndexArray::from_shape({T, streams_});
    for (std::size_t j = 0; j < streams_; ++j) {
      const std::int64_t* strand = ids_->data() + j * strand_ + start;
      for (std::size_t t = 0; t < T; ++t) {
        x(t, j) = strand[t];
        y(t, j) = strand[t + 1];
      }
    }
    return {std::move(x), std::move(y)};
  }

 private:
  const std::vector<std::int64_t>* ids_;
  std::size_t streams_, chunk_, strand_ = 0;
};

// ---- Words after `--`
// ------------------------------------------------------------------------------

/// Splits argv at the first "--": flags before it (for Flags::parse, argv[0] kept), free words
/// after it. `classify --epochs 5 -- Haus maison` gives {"classify", "--epochs", "5"} and
/// {"Haus", "maison"}.
struct SplitArgs {
  std::vector<const char*> flags;
  std::vector<std::string> rest;
  int argc() const { return static_cast<int>(flags.size()); }
  const char* const* argv() const { return flags.data(); }
};

inline SplitArgs split_at_double_dash(int argc, char** argv) {
  SplitArgs s;
  int i = 0;
  for (; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], "--") == 0) break;
    s.flags.push_back(argv[i]);
  }
  for (++i; i < argc; ++i) s.rest.emplace_back(argv[i]);
  return s;
}

}  // namespace ex
