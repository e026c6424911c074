// Normalisation over the last axis: layer_norm.
#pragma once

#include <xgrad/autograd/var.hpp>

namespace xg {

/// Layer normalisation over the last axis (Ba, Kiros and Hinton, 2016), like
/// torch.nn.functional.layer_norm(x, [D], weight, bias, eps):
///   y = (x - mean) / sqrt(var + eps) * weight + bias      (var is the biased variance)
///   with x^ = the normalised x and s = 1 / sqrt(var + eps), per row of D elements:
///   dx = s (g^ - mean(g^) - x^ mean(g^ x^)),  g^ = g * weight
/// `weight` and `bias` are [D] and optional (undefined Vars skip them).
///     Var<float> y = layer_norm(x, gamma, beta);       // x [B, D], gamma and beta [D]
template <class T>
Var<T> layer_norm(const Var<T>& x, const Var<T>& weight = {}, const Var<T>& bias = {}, double eps = 1e-5);

}  // namespace xg
