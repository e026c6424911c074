// Linear, Embedding, Dropout, Functional and Sequential.
#pragma once

#include <functional>

#include <xgrad/nn/module.hpp>

namespace xg::nn {

struct LinearOptions {
  LinearOptions(std::size_t in, std::size_t out) : in_features_(in), out_features_(out) {}
  XG_OPTION(std::size_t, in_features, 0);
  XG_OPTION(std::size_t, out_features, 0);
  XG_OPTION(bool, bias, true);
};

/// y = x W^T + b, W [out, in], b [out]; initialised U(-1/sqrt(in), 1/sqrt(in)) like PyTorch.
///     nn::Linear head(nn::LinearOptions(256, 10));
///     Var<float> logits = head(h);
template <class T = float>
class Linear : public UnaryModule<T> {
 public:
  explicit Linear(const LinearOptions& o, Generator& gen = default_generator());
  Linear(std::size_t in, std::size_t out, Generator& gen = default_generator())
      : Linear(LinearOptions(in, out), gen) {}
  Var<T> forward(const Var<T>& x) override { return linear(x, weight, bias); }
  Var<T> weight, bias;  // bias is undefined when options.bias(false)
  LinearOptions options;
};

struct EmbeddingOptions {
  EmbeddingOptions(std::size_t num, std::size_t dim) : num_embeddings_(num), embedding_dim_(dim) {}
  XG_OPTION(std::size_t, num_embeddings, 0);
  XG_OPTION(std::size_t, embedding_dim, 0);
};

/// A lookup table [num_embeddings, embedding_dim] initialised N(0, 1) like PyTorch.
///     nn::Embedding emb(nn::EmbeddingOptions(vocab, 32));
///     Var<float> x = emb(ids);          // ids [T, B] -> [T, B, 32]
template <class T = float>
class Embedding : public Module<T> {
 public:
  explicit Embedding(const EmbeddingOptions& o, Generator& gen = default_generator());
  Var<T> forward(const IndexArray& ids) { return embedding(weight, ids); }
  Var<T> operator()(const IndexArray& ids) { return forward(ids); }
  Var<T> weight;
  EmbeddingOptions options;
};

/// Inverted dropout in training mode; the identity in eval mode.
template <class T = float>
class Dropout : public UnaryModule<T> {
 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = default_generator().next_u64());
  Var<T> forward(const Var<T>& x) override { return dropout(x, p_, this->is_training(), gen_); }
  Generator& generator() { return gen_; }

 private:
  double p_;
  Generator gen_;
};

/// Wraps a function of one Var (an activation, usually): `Functional<float>(tanh<float>)`.
template <class T = float>
class Functional : public UnaryModule<T> {
 public:
  explicit Functional(std::function<Var<T>(const Var<T>&)> f, std::string name = "Functional")
      : UnaryModule<T>(std::move(name)), f_(std::move(f)) {}
  Var<T> forward(const Var<T>& x) override { return f_(x); }

 private:
  std::function<Var<T>(const Var<T>&)> f_;
};

/// Chains unary modules; parameters are named "<index>.<name>" like torch.nn.Sequential.
///     nn::Sequential<float> mlp;
///     mlp.push_back(std::make_shared<nn::Linear<float>>(4, 16));
///     mlp.push_back(std::make_shared<nn::Functional<float>>(relu<float>));
template <class T = float>
class Sequential : public UnaryModule<T> {
 public:
  Sequential() : UnaryModule<T>("Sequential") {}
  Sequential& push_back(std::shared_ptr<UnaryModule<T>> m) {
    mods_.push_back(this->register_module(std::to_string(mods_.size()), std::move(m)));
    return *this;
  }
  Var<T> forward(const Var<T>& x) override {
    Var<T> y = x;
    for (auto& m : mods_) y = m->forward(y);
    return y;
  }
  std::size_t size() const { return mods_.size(); }

 private:
  std::vector<std::shared_ptr<UnaryModule<T>>> mods_;
};

}  // namespace xg::nn
