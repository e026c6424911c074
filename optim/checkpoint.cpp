#include <fmt/format.h>

#include <xgrad/optim/checkpoint.hpp>

namespace xg {

void Checkpoint::set_scalar(const std::string& key, double v) {
  extra.insert_or_assign(key, full<double>(Shape{}, v));
}

double Checkpoint::scalar(const std::string& key) const {
  auto it = extra.find(key);
  if (it == extra.end()) throw ValueError(fmt::format("checkpoint: no value '{}'", key));
  return array_cast<double>(it->second, key)();
}

void Checkpoint::set_text(const std::string& key, const std::string& text) {
  IndexArray a = IndexArray::from_shape({text.size()});
  for (std::size_t i = 0; i < text.size(); ++i) a(i) = static_cast<unsigned char>(text[i]);
  extra.insert_or_assign(key, std::move(a));
}

std::string Checkpoint::text(const std::string& key) const {
  auto it = extra.find(key);
  if (it == extra.end() || dtype_of(it->second) != DType::Int64)
    throw ValueError(fmt::format("checkpoint: no text '{}'", key));
  const IndexArray& a = std::get<IndexArray>(it->second);
  std::string s(a.size(), '\0');
  for (std::size_t i = 0; i < a.size(); ++i) s[i] = static_cast<char>(a(i));
  return s;
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  ArrayMap all;
  for (auto& [k, v] : ck.model) all.emplace("model/" + k, v);
  for (auto& [k, v] : ck.optimizer) all.emplace("optim/" + k, v);
  for (auto& [k, v] : ck.extra) all.emplace("extra/" + k, v);
  save_npz(path, all);
}

Checkpoint checkpoint_from_arrays(ArrayMap arrays, const std::string& path) {
  Checkpoint ck;
  for (auto& [k, v] : arrays) {
    const auto slash = k.find('/');
    const std::string head = k.substr(0, slash), rest = slash == std::string::npos ? "" : k.substr(slash + 1);
    if (head == "model") ck.model.emplace(rest, std::move(v));
    else if (head == "optim") ck.optimizer.emplace(rest, std::move(v));
    else if (head == "extra") ck.extra.emplace(rest, std::move(v));
    else throw IoError(fmt::format("{}: not an xgrad checkpoint (unexpected key '{}')", path, k));
  }
  return ck;
}

Checkpoint load_checkpoint(const std::string& path) { return checkpoint_from_arrays(load_npz(path), path); }

}  // namespace xg
