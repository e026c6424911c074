#include <cmath>

#include <fmt/format.h>

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
  weight = this->register_parameter("weight", normal<T>(Shape{o.num_embeddings(), o.embedding_dim()}, T(0), T(1), gen));
}

template <class T>
Dropout<T>::Dropout(double p, std::uint64_t seed) : UnaryModule<T>("Dropout"), p_(p), gen_(seed) {
  if (!(p >= 0.0 && p < 1.0)) throw ValueError(fmt::format("Dropout: p = {} must be in [0, 1)", p));
}

template class Linear<float>;
template class Linear<double>;
template class Embedding<float>;
template class Embedding<double>;
template class Dropout<float>;
template class Dropout<double>;

}  // namespace xg::nn
