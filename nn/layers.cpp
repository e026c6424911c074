#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/nn/layers.hpp>

namespace xg::nn {

template <class T>
Linear<T>::Linear(const LinearOptions& o, Generator& gen) : UnaryModule<T>("Linear"), options(o) {
  if (o.in_features() == 0 || o.out_features() == 0)
    throw ValueError(fmt::format("Linear: in_features ({}) and out_features ({}) must be positive",
                                 o.in_features(), o.out_features()));
  const T k = T(1) / std::sqrt(static_cast<T>(o.in_features()));
  weight = this->register_parameter("weight", uniform<T>(Shape{o.out_features(), o.in_features()}, -k, k, gen));
  if (o.bias()) bias = this->register_parameter("bias", uniform<T>(Shape{o.out_features()}, -k, k, gen));
}

template <class T>
Embedding<T>::Embedding(const EmbeddingOptions& o, Generator& gen) : Module<T>("Embedding"), options(o) {
  if (o.num_embeddings() == 0 || o.embedding_dim() == 0)
    throw ValueError(fmt::format("Embedding: num_embeddings ({}) and embedding_dim ({}) must be positive",
                                 o.num_embeddings(), o.embedding_dim()));
  Array<T> w = normal<T>(Shape{o.num_embeddings(), o.embedding_dim()}, T(0), T(1), gen);
  if (o.padding_idx()) {
    const auto n = static_cast<std::int64_t>(o.num_embeddings()), p = *o.padding_idx();
    if (p < -n || p >= n)
      throw ValueError(fmt::format("Embedding: padding_idx {} is out of range for {} embeddings", p, n));
    options.padding_idx(p < 0 ? p + n : p);
    std::fill_n(w.data() + static_cast<std::size_t>(*options.padding_idx()) * o.embedding_dim(),
                o.embedding_dim(), T(0));
  }
  weight = this->register_parameter("weight", std::move(w));
}

template <class T>
std::string Embedding<T>::extra_repr() const {
  std::string s = fmt::format("{}, {}", options.num_embeddings(), options.embedding_dim());
  if (options.padding_idx()) s += fmt::format(", padding_idx={}", *options.padding_idx());
  return s;
}

template <class T>
std::string Linear<T>::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", options.in_features(),
                     options.out_features(), options.bias());
}

template <class T>
std::string Dropout<T>::extra_repr() const {
  return fmt::format("p={}", p_);
}

template <class T>
Dropout<T>::Dropout(double p, std::uint64_t seed) : UnaryModule<T>("Dropout"), p_(p), gen_(seed) {
  if (!(p >= 0.0 && p < 1.0)) throw ValueError(fmt::format("Dropout: p = {} must be in [0, 1)", p));
}

template <class T>
LayerNorm<T>::LayerNorm(const LayerNormOptions& o) : UnaryModule<T>("LayerNorm"), options(o) {
  if (o.normalized_shape() == 0) throw ValueError("LayerNorm: normalized_shape must be positive");
  if (!(o.eps() > 0) || !std::isfinite(o.eps()))
    throw ValueError(fmt::format("LayerNorm: eps = {} must be positive and finite", o.eps()));
  if (o.elementwise_affine()) {
    weight = this->register_parameter("weight", full<T>(Shape{o.normalized_shape()}, T(1)));
    bias = this->register_parameter("bias", zeros<T>(Shape{o.normalized_shape()}));
  }
}

template <class T>
Var<T> LayerNorm<T>::forward(const Var<T>& x) {
  if (x.dim() == 0 || x.shape(x.dim() - 1) != options.normalized_shape())
    throw ShapeError(fmt::format("LayerNorm: input {} must end in a dim of size normalized_shape = {}",
                                 shape_str(x.shape()), options.normalized_shape()));
  return layer_norm(x, weight, bias, options.eps());
}

template <class T>
std::string LayerNorm<T>::extra_repr() const {
  return fmt::format("({},), eps={}, elementwise_affine={}", options.normalized_shape(), options.eps(),
                     options.elementwise_affine());
}

template <class T>
std::shared_ptr<Module<T>> ModuleDict<T>::operator[](const std::string& name) const {
  for (const auto& [n, m] : this->named_children())
    if (n == name) return m;
  throw ValueError(fmt::format("ModuleDict: no module '{}' (keys: {})", name, fmt::join(keys(), ", ")));
}

template <class T>
bool ModuleDict<T>::contains(const std::string& name) const {
  for (const auto& [n, m] : this->named_children())
    if (n == name) return true;
  return false;
}

template <class T>
std::vector<std::string> ModuleDict<T>::keys() const {
  std::vector<std::string> k;
  for (const auto& [n, m] : this->named_children()) k.push_back(n);
  return k;
}

template <class T>
void ModuleDict<T>::check_new_key(const std::string& name, bool non_null) const {
  if (!non_null) throw ValueError(fmt::format("ModuleDict: the module given for '{}' is null", name));
  if (name.empty() || name.find('.') != std::string::npos)
    throw ValueError(fmt::format("ModuleDict: key '{}' must be non-empty and contain no '.'", name));
  if (contains(name)) throw ValueError(fmt::format("ModuleDict: key '{}' is already taken", name));
}

template class Linear<float>;
template class Linear<double>;
template class Embedding<float>;
template class Embedding<double>;
template class Dropout<float>;
template class Dropout<double>;
template class LayerNorm<float>;
template class LayerNorm<double>;
template class ModuleDict<float>;
template class ModuleDict<double>;

}  // namespace xg::nn
