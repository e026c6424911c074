// Linear, Embedding, Dropout, Functional and Sequential.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>

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
  std::string extra_repr() const override;
  Var<T> weight, bias;  // bias is undefined when options.bias(false)
  LinearOptions options;
};

struct EmbeddingOptions {
  EmbeddingOptions(std::size_t num, std::size_t dim) : num_embeddings_(num), embedding_dim_(dim) {}
  XG_OPTION(std::size_t, num_embeddings, 0);
  XG_OPTION(std::size_t, embedding_dim, 0);
  /// A row that stays zero and gets no gradient (the id of padding), as in PyTorch; negative
  /// values count from the end.
  XG_OPTION(std::optional<std::int64_t>, padding_idx, std::nullopt);
};

/// A lookup table [num_embeddings, embedding_dim] initialised N(0, 1) like PyTorch; with
/// padding_idx, that row starts at zero and no gradient reaches it (its output is the row).
///     nn::Embedding emb(nn::EmbeddingOptions(vocab, 32).padding_idx(0));
///     Var<float> x = emb(ids);          // ids [T, B] -> [T, B, 32]
template <class T = float>
class Embedding : public Module<T> {
 public:
  explicit Embedding(const EmbeddingOptions& o, Generator& gen = default_generator());
  Var<T> forward(const IndexArray& ids) {
    return options.padding_idx() ? embedding(weight, ids, *options.padding_idx()) : embedding(weight, ids);
  }
  Var<T> operator()(const IndexArray& ids) { return forward(ids); }
  std::string extra_repr() const override;
  Var<T> weight;
  EmbeddingOptions options;
};

/// Inverted dropout in training mode; the identity in eval mode.
template <class T = float>
class Dropout : public UnaryModule<T> {
 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = default_generator().next_u64());
  Var<T> forward(const Var<T>& x) override { return dropout(x, p_, this->is_training(), gen_); }
  std::string extra_repr() const override;
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

struct LayerNormOptions {
  explicit LayerNormOptions(std::size_t normalized_shape) : normalized_shape_(normalized_shape) {}
  /// The size of the last dim, over which each row is normalised.
  XG_OPTION(std::size_t, normalized_shape, 0);
  XG_OPTION(double, eps, 1e-5);
  /// Learn a scale ("weight", starts at 1) and a shift ("bias", starts at 0).
  XG_OPTION(bool, elementwise_affine, true);
};

/// Layer normalisation over the last dim (torch.nn.LayerNorm with one normalised dim): the
/// layer_norm op with the module's weight and bias.
///   y = (x - mean) / sqrt(var + eps) * weight + bias
///     nn::LayerNorm norm(256);             // x [..., 256] -> y [..., 256]
template <class T = float>
class LayerNorm : public UnaryModule<T> {
 public:
  explicit LayerNorm(const LayerNormOptions& o);
  explicit LayerNorm(std::size_t normalized_shape) : LayerNorm(LayerNormOptions(normalized_shape)) {}
  /// ShapeError when x's last dim is not normalized_shape.
  Var<T> forward(const Var<T>& x) override;
  std::string extra_repr() const override;
  Var<T> weight, bias;  // undefined without elementwise_affine
  LayerNormOptions options;
};

/// Named submodules in insertion order (PyTorch's ModuleDict), so that a model made of several
/// modules has one state_dict with dotted names ("lstm.weight_ih_l0", "head.bias") and saves,
/// loads, prints and trains as one:
///     nn::ModuleDict<float> model;
///     auto lstm = model.insert("lstm", std::make_shared<nn::LSTM<float>>(nn::LSTMOptions(8, 32)));
///     auto head = model.insert("head", std::make_shared<nn::Linear<float>>(32, 4));
///     model.save("model.npz");   optim::Adam opt(model.named_parameters(), optim::AdamOptions());
template <class T = float>
class ModuleDict : public Module<T> {
 public:
  ModuleDict() : Module<T>("ModuleDict") {}
  /// Adds `m` under `name` (not empty, no '.', not taken yet) and returns it.
  template <class M>
  std::shared_ptr<M> insert(const std::string& name, std::shared_ptr<M> m) {
    static_assert(std::is_base_of_v<Module<T>, M>, "ModuleDict holds modules of the same type T");
    check_new_key(name, m != nullptr);
    return this->register_module(name, std::move(m));
  }
  /// The module under `name`; ValueError listing the keys when there is none.
  std::shared_ptr<Module<T>> operator[](const std::string& name) const;
  /// The module under `name` as its own type: `model.get<nn::Linear<float>>("head")`.
  /// ValueError when it is missing or of another type.
  template <class M>
  std::shared_ptr<M> get(const std::string& name) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[name]);
    if (!m) throw ValueError("ModuleDict: '" + name + "' is a " + (*this)[name]->name() + ", not the type asked for");
    return m;
  }
  bool contains(const std::string& name) const;
  std::size_t size() const { return this->named_children().size(); }
  /// The names, in insertion order.
  std::vector<std::string> keys() const;

 private:
  void check_new_key(const std::string& name, bool non_null) const;
};

}  // namespace xg::nn
