// Text for sequence models: files read with errors that name them, UTF-8 read as characters,
// words, and vocabularies that map tokens (characters or words) to ids and back.
//
//     const std::string text = xg::data::read_file("book.txt");    // IoError "book.txt: ..."
//     auto chars = xg::data::utf8_chars(text);                      // "é" is one character
//     xg::data::Vocab vocab = xg::data::build_vocab({chars});       // 0 <pad>, 1 <unk>, then
//     std::vector<std::int64_t> ids = vocab.ids(chars);             //   the most frequent first
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace xg::data {

// ---- Files and lines -----------------------------------------------------------------------

/// The whole file as bytes. Throws IoError "<path>: cannot read (<reason>)" when it cannot be
/// opened or read, and "<path>: is a directory, not a file" for a directory.
std::string read_file(const std::string& path);

/// Lines without their "\n" (and without a "\r" before it). "a\nb\n" gives {"a", "b"}.
std::vector<std::string> split_lines(std::string_view text);

/// Whitespace-separated words (ASCII whitespace). " a  b\tc\n" gives {"a", "b", "c"}.
std::vector<std::string> split_words(std::string_view text);

// ---- UTF-8 ---------------------------------------------------------------------------------

/// The replacement character U+FFFD, which stands for every malformed byte.
inline constexpr char32_t kReplacement = 0xFFFD;

/// Decodes UTF-8 into code points. Each malformed byte (a stray continuation byte, a truncated or
/// overlong sequence, a surrogate) becomes one U+FFFD and is counted in `*invalid`.
std::u32string utf8_decode(std::string_view s, std::size_t* invalid = nullptr);

/// One code point, or a string of them, as UTF-8.
std::string utf8_encode(char32_t cp);
std::string utf8_encode(std::u32string_view s);

/// The characters (code points) of a UTF-8 string, each as its own UTF-8 string: "été" gives
/// {"é", "t", "é"}, three characters, not five bytes. Malformed bytes as in utf8_decode.
std::vector<std::string> utf8_chars(std::string_view s, std::size_t* invalid = nullptr);

// ---- Vocabularies --------------------------------------------------------------------------

/// Tokens (characters or words) to ids and back. Id 0 is `<pad>` (what pad_ids puts past a
/// sequence's end) and id 1 is `<unk>` (anything not seen when the vocabulary was built).
///
///     Vocab v;  v.add("a");  v.add("b");   // ids 2 and 3
///     v.ids({"b", "z"}) == {3, Vocab::kUnk}
class Vocab {
 public:
  static constexpr std::int64_t kPad = 0, kUnk = 1;
  Vocab() : tokens_{"<pad>", "<unk>"} {}

  /// Adds `token` if it is new; returns its id.
  std::int64_t add(const std::string& token);
  /// The token's id, or kUnk.
  std::int64_t id(const std::string& token) const;
  bool contains(const std::string& token) const { return ids_.count(token) > 0; }
  /// The token of `id`; throws ValueError naming the id and the size when it is out of range.
  const std::string& token(std::int64_t id) const;
  /// Ids and tokens count `<pad>` and `<unk>`.
  std::size_t size() const { return tokens_.size(); }

  /// Every token's id (kUnk for unknown ones).
  std::vector<std::int64_t> ids(const std::vector<std::string>& tokens) const;
  /// The tokens of `ids`, joined with `separator` ("" for characters, " " for words).
  std::string decode(const std::vector<std::int64_t>& ids, std::string_view separator = "") const;

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> ids_;
};

/// A vocabulary of the tokens of `docs` that occur at least `min_count` times, most frequent
/// first (ties in first-seen order, so the ids depend only on the data). The rarer tokens read
/// as `<unk>`.
Vocab build_vocab(const std::vector<std::vector<std::string>>& docs, std::size_t min_count = 1);

}  // namespace xg::data
