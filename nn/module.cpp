#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/nn/module.hpp>

namespace xg {

Generator& default_generator() {
  thread_local Generator gen(0);
  return gen;
}

void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

}  // namespace xg

namespace xg::nn {

std::string LoadReport::str() const {
  std::string s;
  if (!missing.empty()) s += fmt::format("missing keys: {}; ", fmt::join(missing, ", "));
  if (!unexpected.empty()) s += fmt::format("unexpected keys: {}; ", fmt::join(unexpected, ", "));
  if (!mismatched.empty()) s += fmt::format("shape mismatches: {}; ", fmt::join(mismatched, ", "));
  if (s.empty()) return "all keys matched";
  s.resize(s.size() - 2);
  return s;
}

template <class T>
Var<T> Module<T>::register_parameter(const std::string& name, Array<T> value) {
  for (const auto& [n, p] : params_)
    if (n == name) throw ValueError(fmt::format("{}: parameter '{}' is registered twice", name_, name));
  Var<T> v(std::move(value), true);
  params_.emplace_back(name, v);
  return v;
}

template <class T>
std::vector<std::pair<std::string, Var<T>>> Module<T>::named_parameters() const {
  std::vector<std::pair<std::string, Var<T>>> out = params_;
  for (const auto& c : children_)
    for (auto& [pname, p] : c.module->named_parameters())
      out.emplace_back(c.suffix ? pname + c.name : c.name + "." + pname, p);
  return out;
}

template <class T>
std::vector<Var<T>> Module<T>::parameters() const {
  std::vector<Var<T>> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

template <class T>
std::size_t Module<T>::num_parameters() const {
  std::size_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p.size();
  return n;
}

template <class T>
void Module<T>::zero_grad() {
  for (auto& [n, p] : named_parameters()) p.zero_grad();
}

template <class T>
void Module<T>::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.module->train(on);
}

template <class T>
ArrayMap Module<T>::state_dict() const {
  ArrayMap m;
  for (auto& [n, p] : named_parameters()) m.emplace(n, p.value());
  return m;
}

template <class T>
LoadReport Module<T>::load_state_dict(const ArrayMap& state, bool strict) {
  LoadReport r;
  auto params = named_parameters();
  std::vector<std::pair<Var<T>, Array<T>>> updates;
  for (auto& [n, p] : params) {
    auto it = state.find(n);
    if (it == state.end()) {
      r.missing.push_back(n);
      continue;
    }
    const Shape& fs = shape_of(it->second);
    if (fs != p.shape()) {
      r.mismatched.push_back(fmt::format("{}: file {} vs model {}", n, shape_str(fs), shape_str(p.shape())));
      continue;
    }
    updates.emplace_back(p, array_cast<T>(it->second, n));
  }
  for (auto& [k, v] : state) {
    bool known = false;
    for (auto& [n, p] : params) known = known || n == k;
    if (!known) r.unexpected.push_back(k);
  }
  if (strict && !r.ok()) throw ValueError(fmt::format("{}: load_state_dict: {}", name_, r.str()));
  for (auto& [p, v] : updates) p.mutable_value() = std::move(v);
  return r;
}

template <class T>
void Module<T>::save(const std::string& path) const {
  save_npz(path, state_dict());
}

template <class T>
LoadReport Module<T>::load(const std::string& path, bool strict) {
  try {
    return load_state_dict(load_npz(path), strict);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{} (file {})", e.what(), path));
  }
}

namespace {
std::string count_note(std::size_t n, bool root) {
  if (n == 0 && !root) return {};
  return fmt::format("  # {} parameter{}{}", n, n == 1 ? "" : "s", root ? " in total" : "");
}

template <class T>
std::string repr(const Module<T>& m, bool root) {
  const std::string extra = m.extra_repr();
  const auto& children = m.named_children();
  std::string s = m.name() + "(";
  if (children.empty()) {
    s += extra + ")";
  } else {
    if (!extra.empty()) s += "\n  " + extra;
    for (const auto& [name, child] : children) {
      std::string c = repr(*child, false);
      for (std::size_t i = c.find('\n'); i != std::string::npos; i = c.find('\n', i + 1))
        c.insert(i + 1, "  ");
      s += "\n  (" + name + "): " + c;
    }
    s += "\n)";
  }
  return s + count_note(m.num_parameters(), root);
}
}  // namespace

template <class T>
std::string to_string(const Module<T>& m) {
  return repr(m, true);
}

template class Module<float>;
template class Module<double>;
template std::string to_string(const Module<float>&);
template std::string to_string(const Module<double>&);

}  // namespace xg::nn
