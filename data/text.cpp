#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <xgrad/data/text.hpp>
#include <xgrad/tensor/tensor.hpp>

namespace xg::data {

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw IoError(fmt::format("{}: is a directory, not a file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot read ({})", path, std::strerror(errno)));
  std::ostringstream s;
  try {
    s << in.rdbuf();
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: cannot read ({})", path, e.what()));
  }
  if (in.bad()) throw IoError(fmt::format("{}: cannot read (a read error)", path));
  return std::move(s).str();
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::size_t stop = end;
    if (stop > start && text[stop - 1] == '\r') --stop;
    lines.emplace_back(text.substr(start, stop - start));
    start = end + 1;
  }
  return lines;
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && space(s[i])) ++i;
    std::size_t j = i;
    while (j < s.size() && !space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::u32string utf8_decode(std::string_view s, std::size_t* invalid) {
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

std::string utf8_encode(char32_t cp) {
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

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  for (char32_t cp : s) out += utf8_encode(cp);
  return out;
}

std::vector<std::string> utf8_chars(std::string_view s, std::size_t* invalid) {
  std::vector<std::string> out;
  for (char32_t cp : utf8_decode(s, invalid)) out.push_back(utf8_encode(cp));
  return out;
}

std::int64_t Vocab::add(const std::string& token) {
  auto [it, added] = ids_.try_emplace(token, static_cast<std::int64_t>(tokens_.size()));
  if (added) tokens_.push_back(token);
  return it->second;
}

std::int64_t Vocab::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? kUnk : it->second;
}

const std::string& Vocab::token(std::int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size())
    throw ValueError(
        fmt::format("Vocab::token: id {} is outside the vocabulary of {}", id, tokens_.size()));
  return tokens_[static_cast<std::size_t>(id)];
}

std::vector<std::int64_t> Vocab::ids(const std::vector<std::string>& tokens) const {
  std::vector<std::int64_t> out;
  out.reserve(tokens.size());
  for (const auto& t : tokens) out.push_back(id(t));
  return out;
}

std::string Vocab::decode(const std::vector<std::int64_t>& ids, std::string_view separator) const {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += separator;
    out += token(ids[i]);
  }
  return out;
}

Vocab build_vocab(const std::vector<std::vector<std::string>>& docs, std::size_t min_count) {
  std::unordered_map<std::string, std::size_t> count;
  std::vector<std::string> order;  // first-seen order
  for (const auto& d : docs)
    for (const auto& t : d)
      if (count[t]++ == 0) order.push_back(t);
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return count[a] > count[b]; });
  Vocab v;
  for (const auto& t : order)
    if (count[t] >= min_count) v.add(t);
  return v;
}

}  // namespace xg::data
