// Losses and dropout. Class dims are last: logits [..., C] with targets [...].
#pragma once

#include <xgrad/autograd/var.hpp>
#include <xgrad/tensor/random.hpp>

namespace xg {

enum class Reduction { None, Mean, Sum };

/// Mean (or sum) of (pred - target)^2. A composite.
template <class T>
Var<T> mse_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction = Reduction::Mean);

struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
  /// Targets equal to this contribute nothing and are not counted by the mean.
  std::int64_t ignore_index = -100;
};

/// Negative log likelihood of log-probabilities [..., C] at class indices [...].
/// `mask` (optional, shape of targets) weighs each position, e.g. 0 past a sequence's end;
/// the mean divides by the total weight of the counted positions.
///   loss = -sum_i m_i logp[i, t_i] / sum_i m_i          dlogp[i, t_i] = -g m_i / sum m
template <class T>
Var<T> nll_loss(const Var<T>& logp, const IndexArray& targets, const CrossEntropyOptions& opts = {},
                const Array<T>* mask = nullptr);

/// Cross entropy from logits [..., C] and class indices [...]: nll_loss(log_softmax(logits)).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const IndexArray& targets,
                     const CrossEntropyOptions& opts = {}, const Array<T>* mask = nullptr);

/// Binary cross entropy from logits with targets in [0, 1]: softplus(x) - x t, stable.
/// `mask` (optional, shape of logits) weighs each element, e.g. 0 past a sequence's end; the
/// mean divides by the total weight, as nll_loss's mask does. A composite.
///   loss = sum_i m_i (softplus(x_i) - x_i t_i) / sum_i m_i
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets,
                                        Reduction reduction = Reduction::Mean,
                                        const Array<T>* mask = nullptr);

/// Inverted dropout: in training, zeroes each element with probability p and scales the rest by
/// 1 / (1 - p) using `gen`; the identity when !training or p == 0.
template <class T>
Var<T> dropout(const Var<T>& x, double p, bool training, Generator& gen);

}  // namespace xg
