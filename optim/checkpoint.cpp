#include <fmt/format.h>

#include <xgrad/optim/checkpoint.hpp>

namespace xg {

namespace {
std::string label(const Checkpoint& ck, const std::string& key) {
  return ck.source.empty() ? fmt::format("checkpoint: extra/{}", key)
                           : fmt::format("{}: extra/{}", ck.source, key);
}
}  // namespace

void Checkpoint::set_scalar(const std::string& key, double v) {
  texts.erase(key);
  extra.insert_or_assign(key, full<double>(Shape{}, v));
}

double Checkpoint::scalar(const std::string& key) const {
  auto it = extra.find(key);
  if (it == extra.end())
    throw ValueError(fmt::format("{}: missing{}", label(*this, key),
                                 texts.count(key) ? " (it holds text, not a number)" : ""));
  return scalar_of(it->second, label(*this, key));
}

std::uint64_t Checkpoint::count(const std::string& key) const {
  auto it = extra.find(key);
  if (it == extra.end()) throw ValueError(fmt::format("{}: missing", label(*this, key)));
  return count_of(it->second, label(*this, key));
}

void Checkpoint::set_text(const std::string& key, const std::string& text) {
  extra.erase(key);
  texts.insert_or_assign(key, text);
}

std::string Checkpoint::text(const std::string& key) const {
  if (auto t = texts.find(key); t != texts.end()) return t->second;
  auto it = extra.find(key);
  if (it == extra.end()) throw ValueError(fmt::format("{}: missing", label(*this, key)));
  // Checkpoints before text entries: a 1-D int64 array of character codes.
  if (dtype_of(it->second) != DType::Int64 || shape_of(it->second).size() != 1)
    throw ValueError(fmt::format("{}: expected text, found a {} array of shape {}", label(*this, key),
                                 dtype_name(dtype_of(it->second)), shape_str(shape_of(it->second))));
  const IndexArray& a = std::get<IndexArray>(it->second);
  std::string s(a.size(), '\0');
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a(i) < 1 || a(i) > 255)
      throw ValueError(fmt::format("{}: item {} ({}) is not a character code", label(*this, key), i, a(i)));
    s[i] = static_cast<char>(a(i));
  }
  return s;
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  ArrayMap all;
  TextMap texts;
  for (auto& [k, v] : ck.model) all.emplace("model/" + k, v);
  for (auto& [k, v] : ck.optimizer) all.emplace("optim/" + k, v);
  for (auto& [k, v] : ck.extra) all.emplace("extra/" + k, v);
  for (auto& [k, v] : ck.texts)
    if (!ck.extra.count(k)) texts.emplace("extra/" + k, v);
  save_npz(path, all, texts);
}

Checkpoint checkpoint_from_arrays(ArrayMap arrays, const std::string& path, TextMap texts) {
  Checkpoint ck;
  ck.source = path;
  auto split = [&](const std::string& k) {
    const auto slash = k.find('/');
    const std::string head = k.substr(0, slash), rest = slash == std::string::npos ? "" : k.substr(slash + 1);
    if (rest.empty() || (head != "model" && head != "optim" && head != "extra"))
      throw IoError(fmt::format("{}: not an xgrad checkpoint (unexpected key '{}')", path, k));
    return std::pair{head, rest};
  };
  for (auto& [k, v] : arrays) {
    const auto [head, rest] = split(k);
    (head == "model" ? ck.model : head == "optim" ? ck.optimizer : ck.extra).emplace(rest, std::move(v));
  }
  for (auto& [k, v] : texts) {
    const auto [head, rest] = split(k);
    if (head != "extra")
      throw IoError(fmt::format("{}: '{}' holds text; only extra/ values may", path, k));
    ck.texts.emplace(rest, std::move(v));
  }
  return ck;
}

Checkpoint parse_checkpoint(const char* data, std::size_t size, const std::string& path) {
  NpzContents c = parse_npz_contents(data, size, path);
  return checkpoint_from_arrays(std::move(c.arrays), path, std::move(c.texts));
}

Checkpoint load_checkpoint(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_checkpoint(bytes.data(), bytes.size(), path);
}

}  // namespace xg
