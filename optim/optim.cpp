#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/optim/optim.hpp>

namespace xg::optim {

template <class T>
NamedParams<T> name_params(const std::vector<Var<T>>& params) {
  NamedParams<T> out;
  for (std::size_t i = 0; i < params.size(); ++i) out.emplace_back(std::to_string(i), params[i]);
  return out;
}

namespace {
void check_lr(double lr) {
  if (!(lr >= 0.0) || !std::isfinite(lr))
    throw ValueError(fmt::format("optimizer: learning rate {} must be finite and >= 0", lr));
}
void check_range(const char* opt, const char* what, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi))
    throw ValueError(fmt::format("{}: {} = {} must be in [{}, {}]", opt, what, v, lo, hi));
}
}  // namespace

// ---- Optimizer --------------------------------------------------------------------------------

template <class T>
Optimizer<T>::Optimizer(NamedParams<T> params, double lr) : lr_(lr), params_(std::move(params)) {
  check_lr(lr);
  if (params_.empty()) throw ValueError("optimizer: no parameters to optimize");
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& [n, p] = params_[i];
    if (!p.defined() || !p.is_leaf() || !p.requires_grad())
      throw ValueError(fmt::format("optimizer: parameter '{}' must be a leaf that requires grad", n));
    for (std::size_t j = 0; j < i; ++j) {
      if (params_[j].second.node_ptr() == p.node_ptr())
        throw ValueError(fmt::format("optimizer: parameter '{}' is given twice (also as '{}')", n,
                                     params_[j].first));
      if (params_[j].first == n)
        throw ValueError(fmt::format("optimizer: two parameters are named '{}'", n));
    }
  }
  state_.resize(params_.size());
}

template <class T>
void Optimizer<T>::set_lr(double lr) {
  check_lr(lr);
  lr_ = lr;
}

template <class T>
void Optimizer<T>::step() {
  if (!allow_nonfinite_)
    for (auto& [n, p] : params_)
      if (p.has_grad() && !all_finite(p.grad()))
        throw ValueError(fmt::format("optimizer step: the gradient of '{}' {} contains NaN or Inf "
                                     "(step skipped; allow_nonfinite(true) to step anyway)",
                                     n, shape_str(p.shape())));
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Var<T>& p = params_[i].second;
    if (!p.has_grad()) continue;
    update(p.mutable_value(), p.grad(), state_[i]);
  }
  ++steps_;
}

template <class T>
void Optimizer<T>::zero_grad() {
  for (auto& [n, p] : params_) p.zero_grad();
}

template <class T>
ArrayMap Optimizer<T>::state_dict() const {
  ArrayMap m;
  m.emplace("step", full<double>(Shape{}, static_cast<double>(steps_)));
  m.emplace("lr", full<double>(Shape{}, lr_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    for (auto& [k, v] : state_[i]) m.emplace(params_[i].first + "." + k, v);
  return m;
}

template <class T>
typename Optimizer<T>::Loaded Optimizer<T>::prepare_state(const ArrayMap& state) const {
  auto bad = [](const std::string& key, const std::string& what) {
    return ValueError(fmt::format("optimizer load_state_dict: '{}' {}", key, what));
  };
  auto get = [&](const char* key) -> const AnyArray& {
    auto it = state.find(key);
    if (it == state.end()) throw ValueError(fmt::format("optimizer load_state_dict: no '{}' entry", key));
    return it->second;
  };
  Loaded out;
  out.steps = static_cast<std::size_t>(count_of(get("step"), "optimizer load_state_dict: 'step'"));
  out.lr = scalar_of(get("lr"), "optimizer load_state_dict: 'lr'");
  if (!std::isfinite(out.lr) || out.lr < 0) throw bad("lr", fmt::format("= {} must be finite and >= 0", out.lr));
  const std::optional<std::vector<std::string>> known = buffer_names();

  // Checkpoints written when nn::parameters() named parameters "0", "1", ...: every key is
  // "<index>.<buffer>" and no parameter has such a name, so they are matched by position.
  auto all_digits = [](const std::string& t) {
    return !t.empty() && t.size() < 10 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  bool positional = true;
  for (auto& [key, v] : state) {
    if (key == "step" || key == "lr") continue;
    const auto dot = key.find('.');
    positional = positional && dot != std::string::npos && all_digits(key.substr(0, dot)) &&
                 key.find('.', dot + 1) == std::string::npos && std::stoul(key.substr(0, dot)) < params_.size();
  }
  for (auto& [n, p] : params_) positional = positional && !all_digits(n);

  out.state.resize(params_.size());
  for (auto& [key, v] : state) {
    if (key == "step" || key == "lr") continue;
    std::size_t index = params_.size();
    std::string buffer;
    if (positional) {
      const auto dot = key.find('.');
      index = std::stoul(key.substr(0, dot));
      buffer = key.substr(dot + 1);
    } else {
      for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::string& n = params_[i].first;
        if (key.size() > n.size() + 1 && key.compare(0, n.size(), n) == 0 && key[n.size()] == '.' &&
            (index == params_.size() || n.size() > params_[index].first.size())) {
          index = i;
          buffer = key.substr(n.size() + 1);
        }
      }
    }
    if (index == params_.size()) throw bad(key, "is unexpected: it names no parameter of this optimizer");
    if (known && std::find(known->begin(), known->end(), buffer) == known->end())
      throw bad(key, fmt::format("is unexpected: this optimizer keeps no buffer '{}'{}", buffer,
                                 known->empty() ? " (it keeps none)"
                                                : fmt::format(" (it keeps {})", fmt::join(*known, ", "))));
    const Shape& want = params_[index].second.shape();
    if (shape_of(v) != want)
      throw bad(key, fmt::format("has shape {} but the parameter has {}", shape_str(shape_of(v)), shape_str(want)));
    Array<T> a;
    try {
      a = array_cast<T>(v, key);
    } catch (const IoError& e) {
      throw ValueError(fmt::format("optimizer load_state_dict: {}", e.what()));
    }
    const T* d = a.data();
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!std::isfinite(d[i]))
        throw bad(key, fmt::format("item {} is {}{}", i, d[i],
                                   std::isfinite(array_cast<double>(v, key).data()[i])
                                       ? fmt::format(" as {} (out of its range)", sizeof(T) == 4 ? "float32" : "float64")
                                       : ""));
      if (d[i] < 0 && nonnegative_buffer(buffer))
        throw bad(key, fmt::format("item {} is {}, but a second moment cannot be negative", i, d[i]));
    }
    out.state[index].emplace(buffer, std::move(a));
  }
  if (known && !known->empty()) {
    bool any = false;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto& bufs = out.state[i];
      any = any || !bufs.empty();
      if (bufs.empty()) continue;  // a parameter that has not had a gradient yet has no state
      for (const std::string& b : *known)
        if (!bufs.count(b))
          throw ValueError(fmt::format("optimizer load_state_dict: '{}.{}' is missing (the state of '{}' is incomplete)",
                                       params_[i].first, b, params_[i].first));
    }
    if (!any && out.steps > 0)
      throw ValueError(fmt::format("optimizer load_state_dict: step = {} but no buffers ({}) for any parameter",
                                   out.steps, fmt::join(*known, ", ")));
  }
  return out;
}

template <class T>
void Optimizer<T>::check_state_dict(const ArrayMap& state) const {
  prepare_state(state);
}

template <class T>
void Optimizer<T>::load_state_dict(const ArrayMap& state) {
  Loaded l = prepare_state(state);
  state_ = std::move(l.state);
  steps_ = l.steps;
  lr_ = l.lr;
}

// ---- SGD --------------------------------------------------------------------------------------

template <class T>
SGD<T>::SGD(NamedParams<T> params, const SGDOptions& o) : Optimizer<T>(std::move(params), o.lr()), options(o) {
  check_range("SGD", "momentum", o.momentum(), 0.0, 1.0);
  check_range("SGD", "dampening", o.dampening(), 0.0, 1.0);
  if (!(o.weight_decay() >= 0) || !std::isfinite(o.weight_decay()))
    throw ValueError(fmt::format("SGD: weight_decay = {} must be finite and >= 0", o.weight_decay()));
  if (o.nesterov() && (o.momentum() <= 0 || o.dampening() != 0))
    throw ValueError("SGD: nesterov needs momentum > 0 and dampening = 0");
}

template <class T>
std::optional<std::vector<std::string>> SGD<T>::buffer_names() const {
  if (options.momentum() != 0) return std::vector<std::string>{"momentum_buffer"};
  return std::vector<std::string>{};
}

template <class T>
void SGD<T>::update(Array<T>& p, const Array<T>& grad, std::map<std::string, Array<T>>& state) {
  const T lr = static_cast<T>(this->lr_), wd = static_cast<T>(options.weight_decay());
  const T mu = static_cast<T>(options.momentum()), damp = static_cast<T>(options.dampening());
  Array<T> g = wd != T(0) ? Array<T>(grad + wd * p) : grad;
  if (mu != T(0)) {
    auto it = state.find("momentum_buffer");
    if (it == state.end()) {
      it = state.emplace("momentum_buffer", g).first;
    } else {
      Array<T>& b = it->second;
      xt::noalias(b) = mu * b + (T(1) - damp) * g;
    }
    if (options.nesterov()) {
      g += mu * it->second;
    } else {
      g = it->second;
    }
  }
  xt::noalias(p) -= lr * g;
}

// ---- Adam -------------------------------------------------------------------------------------

template <class T>
Adam<T>::Adam(NamedParams<T> params, const AdamOptions& o) : Optimizer<T>(std::move(params), o.lr()), options(o) {
  check_range("Adam", "beta1", o.beta1(), 0.0, 1.0 - 1e-12);
  check_range("Adam", "beta2", o.beta2(), 0.0, 1.0 - 1e-12);
  if (!(o.eps() >= 0) || !std::isfinite(o.eps()))
    throw ValueError(fmt::format("Adam: eps = {} must be finite and >= 0", o.eps()));
  if (!(o.weight_decay() >= 0) || !std::isfinite(o.weight_decay()))
    throw ValueError(fmt::format("Adam: weight_decay = {} must be finite and >= 0", o.weight_decay()));
}

template <class T>
std::optional<std::vector<std::string>> Adam<T>::buffer_names() const {
  if (options.amsgrad()) return std::vector<std::string>{"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return std::vector<std::string>{"exp_avg", "exp_avg_sq"};
}

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
void Adam<T>::update(Array<T>& p, const Array<T>& grad, std::map<std::string, Array<T>>& state) {
  const double t = static_cast<double>(this->steps_ + 1);
  const T lr = static_cast<T>(this->lr_), wd = static_cast<T>(options.weight_decay());
  const T b1 = static_cast<T>(options.beta1()), b2 = static_cast<T>(options.beta2());
  const T eps = static_cast<T>(options.eps());
  const bool decoupled = options.decoupled_weight_decay();
  if (decoupled && wd != T(0)) p *= T(1) - lr * wd;
  const Array<T>* g = &grad;
  Array<T> g_wd;
  if (!decoupled && wd != T(0)) {
    g_wd = grad + wd * p;
    g = &g_wd;
  }
  auto buf = [&](const char* name) -> Array<T>& {
    auto it = state.find(name);
    if (it == state.end()) it = state.emplace(name, zeros<T>(p.shape())).first;
    return it->second;
  };
  Array<T>& m = buf("exp_avg");
  Array<T>& v = buf("exp_avg_sq");
  xt::noalias(m) = b1 * m + (T(1) - b1) * *g;
  xt::noalias(v) = b2 * v + (T(1) - b2) * *g * *g;
  const T step_size = static_cast<T>(this->lr_ / (1.0 - std::pow(options.beta1(), t)));
  const T bc2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(options.beta2(), t)));
  if (options.amsgrad()) {
    Array<T>& vmax = buf("max_exp_avg_sq");
    xt::noalias(vmax) = xt::maximum(vmax, v);
    xt::noalias(p) -= step_size * m / (xt::sqrt(vmax) / bc2_sqrt + eps);
  } else {
    xt::noalias(p) -= step_size * m / (xt::sqrt(v) / bc2_sqrt + eps);
  }
}

// ---- RMSprop ----------------------------------------------------------------------------------

template <class T>
RMSprop<T>::RMSprop(NamedParams<T> params, const RMSpropOptions& o)
    : Optimizer<T>(std::move(params), o.lr()), options(o) {
  check_range("RMSprop", "alpha", o.alpha(), 0.0, 1.0);
  if (!(o.eps() >= 0)) throw ValueError(fmt::format("RMSprop: eps = {} must be >= 0", o.eps()));
  if (!(o.weight_decay() >= 0))
    throw ValueError(fmt::format("RMSprop: weight_decay = {} must be >= 0", o.weight_decay()));
  if (!(o.momentum() >= 0)) throw ValueError(fmt::format("RMSprop: momentum = {} must be >= 0", o.momentum()));
}

// v = alpha v + (1 - alpha) g^2;  d = sqrt(v [- a^2]) + eps;  p -= lr g / d  (or via b = mu b + g / d)
template <class T>
void RMSprop<T>::update(Array<T>& p, const Array<T>& grad, std::map<std::string, Array<T>>& state) {
  const T lr = static_cast<T>(this->lr_), wd = static_cast<T>(options.weight_decay());
  const T alpha = static_cast<T>(options.alpha()), eps = static_cast<T>(options.eps());
  const T mu = static_cast<T>(options.momentum());
  Array<T> g = wd != T(0) ? Array<T>(grad + wd * p) : grad;
  auto buf = [&](const char* name) -> Array<T>& {
    auto it = state.find(name);
    if (it == state.end()) it = state.emplace(name, zeros<T>(p.shape())).first;
    return it->second;
  };
  Array<T>& v = buf("square_avg");
  xt::noalias(v) = alpha * v + (T(1) - alpha) * g * g;
  Array<T> d;
  if (options.centered()) {
    Array<T>& a = buf("grad_avg");
    xt::noalias(a) = alpha * a + (T(1) - alpha) * g;
    d = xt::sqrt(v - a * a) + eps;
  } else {
    d = xt::sqrt(v) + eps;
  }
  if (mu > T(0)) {
    Array<T>& b = buf("momentum_buffer");
    xt::noalias(b) = mu * b + g / d;
    xt::noalias(p) -= lr * b;
  } else {
    xt::noalias(p) -= lr * g / d;
  }
}

// ---- Adagrad ----------------------------------------------------------------------------------

template <class T>
Adagrad<T>::Adagrad(NamedParams<T> params, const AdagradOptions& o)
    : Optimizer<T>(std::move(params), o.lr()), options(o) {
  if (!(o.lr_decay() >= 0)) throw ValueError(fmt::format("Adagrad: lr_decay = {} must be >= 0", o.lr_decay()));
  if (!(o.weight_decay() >= 0))
    throw ValueError(fmt::format("Adagrad: weight_decay = {} must be >= 0", o.weight_decay()));
  if (!(o.initial_accumulator_value() >= 0))
    throw ValueError(fmt::format("Adagrad: initial_accumulator_value = {} must be >= 0",
                                 o.initial_accumulator_value()));
  if (!(o.eps() >= 0)) throw ValueError(fmt::format("Adagrad: eps = {} must be >= 0", o.eps()));
}

// s += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
template <class T>
void Adagrad<T>::update(Array<T>& p, const Array<T>& grad, std::map<std::string, Array<T>>& state) {
  const double t = static_cast<double>(this->steps_ + 1);
  const T wd = static_cast<T>(options.weight_decay()), eps = static_cast<T>(options.eps());
  const T clr = static_cast<T>(this->lr_ / (1.0 + (t - 1.0) * options.lr_decay()));
  Array<T> g = wd != T(0) ? Array<T>(grad + wd * p) : grad;
  auto it = state.find("sum");
  if (it == state.end())
    it = state.emplace("sum", full<T>(p.shape(), static_cast<T>(options.initial_accumulator_value()))).first;
  Array<T>& acc = it->second;
  xt::noalias(acc) += g * g;
  xt::noalias(p) -= clr * g / (xt::sqrt(acc) + eps);
}

// ---- Clipping ---------------------------------------------------------------------------------

namespace {
const auto& as_var(const auto& p) {
  if constexpr (requires { p.second; }) {
    return p.second;
  } else {
    return p;
  }
}
// Over Vars or (name, Var) pairs, with no copy of the list (a training step allocates nothing).
template <class T, class List>
double clip_norm(const List& params, double max_norm) {
  if (!(max_norm > 0)) throw ValueError(fmt::format("clip_grad_norm: max_norm = {} must be > 0", max_norm));
  double sq = 0;
  for (const auto& item : params) {
    const Var<T>& p = as_var(item);
    if (p.has_grad())
      for (const T* v = p.grad().data(); v != p.grad().data() + p.grad().size(); ++v) sq += static_cast<double>(*v) * *v;
  }
  const double norm = std::sqrt(sq);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (const auto& item : params) {
      Var<T> p = as_var(item);
      if (p.has_grad()) p.mutable_grad() *= static_cast<T>(coef);
    }
  return norm;
}
}  // namespace

template <class T>
double clip_grad_norm(const std::vector<Var<T>>& params, double max_norm) {
  return clip_norm<T>(params, max_norm);
}

template <class T>
double clip_grad_norm(const NamedParams<T>& params, double max_norm) {
  return clip_norm<T>(params, max_norm);
}

template <class T>
void clip_grad_value(const std::vector<Var<T>>& params, double clip) {
  if (!(clip > 0)) throw ValueError(fmt::format("clip_grad_value: clip = {} must be > 0", clip));
  const T c = static_cast<T>(clip);
  for (auto p : params)
    if (p.has_grad()) {
      Array<T>& g = p.mutable_grad();
      g = xt::clip(g, -c, c);
    }
}

// ---- Schedules --------------------------------------------------------------------------------

namespace {
const AnyArray& entry(const ArrayMap& state, const char* who, const char* key) {
  auto it = state.find(key);
  if (it == state.end()) throw ValueError(fmt::format("{} load_state_dict: no '{}' entry", who, key));
  return it->second;
}
void no_unexpected(const ArrayMap& state, const char* who, std::initializer_list<std::string_view> keys) {
  for (auto& [k, v] : state)
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      throw ValueError(fmt::format("{} load_state_dict: unexpected key '{}'", who, k));
}
}  // namespace

template <class T>
ArrayMap Schedule<T>::state_dict() const {
  ArrayMap m;
  m.emplace("epoch", full<double>(Shape{}, static_cast<double>(epoch_)));
  m.emplace("base_lr", full<double>(Shape{}, base_lr_));
  return m;
}

template <class T>
void Schedule<T>::load_state_dict(const ArrayMap& state) {
  const char* who = "schedule";
  no_unexpected(state, who, {"epoch", "base_lr"});
  const std::size_t e = static_cast<std::size_t>(count_of(entry(state, who, "epoch"), "schedule load_state_dict: 'epoch'"));
  const double base = scalar_of(entry(state, who, "base_lr"), "schedule load_state_dict: 'base_lr'");
  if (!std::isfinite(base) || base < 0)
    throw ValueError(fmt::format("schedule load_state_dict: 'base_lr' = {} must be finite and >= 0", base));
  const double old_base = base_lr_;
  base_lr_ = base;
  const double lr = rate(e);
  base_lr_ = old_base;
  if (!std::isfinite(lr) || lr < 0)
    throw ValueError(fmt::format("schedule load_state_dict: the rate at epoch {} would be {}", e, lr));
  opt_.set_lr(lr);
  base_lr_ = base;
  epoch_ = e;
}

template <class T>
StepLR<T>::StepLR(Optimizer<T>& opt, std::size_t step_size, double gamma)
    : Schedule<T>(opt), step_size_(step_size), gamma_(gamma) {
  if (step_size == 0) throw ValueError("StepLR: step_size must be positive");
}
template <class T>
double StepLR<T>::rate(std::size_t e) const {
  return this->base_lr_ * std::pow(gamma_, static_cast<double>(e / step_size_));
}

template <class T>
ExponentialLR<T>::ExponentialLR(Optimizer<T>& opt, double gamma) : Schedule<T>(opt), gamma_(gamma) {}
template <class T>
double ExponentialLR<T>::rate(std::size_t e) const {
  return this->base_lr_ * std::pow(gamma_, static_cast<double>(e));
}

template <class T>
CosineAnnealingLR<T>::CosineAnnealingLR(Optimizer<T>& opt, std::size_t t_max, double eta_min)
    : Schedule<T>(opt), t_max_(t_max), eta_min_(eta_min) {
  if (t_max == 0) throw ValueError("CosineAnnealingLR: T_max must be positive");
}
template <class T>
double CosineAnnealingLR<T>::rate(std::size_t e) const {
  return eta_min_ + (this->base_lr_ - eta_min_) *
                        (1 + std::cos(M_PI * static_cast<double>(e) / static_cast<double>(t_max_))) / 2;
}

template <class T>
LinearLR<T>::LinearLR(Optimizer<T>& opt, double start_factor, double end_factor, std::size_t total_iters)
    : Schedule<T>(opt), start_(start_factor), end_(end_factor), total_(total_iters) {
  if (!(start_factor > 0 && start_factor <= 1))
    throw ValueError(fmt::format("LinearLR: start_factor = {} must be in (0, 1]", start_factor));
  if (!(end_factor >= 0 && end_factor <= 1))
    throw ValueError(fmt::format("LinearLR: end_factor = {} must be in [0, 1]", end_factor));
  if (total_iters == 0) throw ValueError("LinearLR: total_iters must be positive");
  opt.set_lr(rate(0));
}
template <class T>
double LinearLR<T>::rate(std::size_t e) const {
  const double done = static_cast<double>(std::min(e, total_)) / static_cast<double>(total_);
  return this->base_lr_ * (start_ + (end_ - start_) * done);
}

template <class T>
OneCycleLR<T>::OneCycleLR(Optimizer<T>& opt, const OneCycleOptions& o) : Schedule<T>(opt), o_(o) {
  if (o.total_steps() == 0) throw ValueError("OneCycleLR: total_steps must be positive");
  if (!(o.max_lr() > 0) || !std::isfinite(o.max_lr()))
    throw ValueError(fmt::format("OneCycleLR: max_lr = {} must be finite and > 0", o.max_lr()));
  if (!(o.pct_start() >= 0 && o.pct_start() <= 1))
    throw ValueError(fmt::format("OneCycleLR: pct_start = {} must be in [0, 1]", o.pct_start()));
  if (!(o.div_factor() > 0 && o.final_div_factor() > 0))
    throw ValueError("OneCycleLR: div_factor and final_div_factor must be > 0");
  if (o.cycle_momentum() && !dynamic_cast<SGD<T>*>(&opt) && !dynamic_cast<Adam<T>*>(&opt) &&
      !dynamic_cast<RMSprop<T>*>(&opt))
    throw ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum (SGD, RMSprop) or "
                     "beta1 (Adam, AdamW); pass cycle_momentum(false)");
  const double initial = o.max_lr() / o.div_factor(), min_lr = initial / o.final_div_factor();
  const double n = static_cast<double>(o.total_steps()), up = o.pct_start() * n;
  const double mx = o.max_momentum(), base = o.base_momentum();
  if (o.three_phase())
    phases_ = {{up - 1, initial, o.max_lr(), mx, base},
               {2 * up - 2, o.max_lr(), initial, base, mx},
               {n - 1, initial, min_lr, mx, mx}};
  else
    phases_ = {{up - 1, initial, o.max_lr(), mx, base}, {n - 1, o.max_lr(), min_lr, base, mx}};
  this->set_epoch(0);
}

template <class T>
double OneCycleLR<T>::anneal(double start, double end, double pct) const {
  if (o_.anneal_strategy() == OneCycleOptions::Anneal::Linear) return (end - start) * pct + start;
  return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1);
}

template <class T>
std::pair<const typename OneCycleLR<T>::Phase*, double> OneCycleLR<T>::locate(std::size_t e) const {
  if (e > o_.total_steps())
    throw ValueError(fmt::format("OneCycleLR: stepped {} times, but total_steps is {}", e, o_.total_steps()));
  const double step = static_cast<double>(e);
  double start = 0;
  for (std::size_t i = 0; i < phases_.size(); ++i) {
    const Phase& ph = phases_[i];
    if (step <= ph.end_step || i + 1 == phases_.size()) {
      // Step total_steps (one past the last used) keeps the final values.
      const double pct = ph.end_step > start ? (step - start) / (ph.end_step - start) : 1.0;
      return {&ph, std::min(pct, 1.0)};
    }
    start = ph.end_step;
  }
  return {&phases_.back(), 1.0};  // not reached
}

template <class T>
double OneCycleLR<T>::rate(std::size_t e) const {
  auto [ph, pct] = locate(e);
  return anneal(ph->start_lr, ph->end_lr, pct);
}

template <class T>
double OneCycleLR<T>::momentum(std::size_t e) const {
  auto [ph, pct] = locate(e);
  return anneal(ph->start_m, ph->end_m, pct);
}

template <class T>
void OneCycleLR<T>::on_step(std::size_t e) {
  if (!o_.cycle_momentum()) return;
  const double m = momentum(e);
  if (auto* sgd = dynamic_cast<SGD<T>*>(&this->opt_)) sgd->options.momentum(m);
  else if (auto* adam = dynamic_cast<Adam<T>*>(&this->opt_)) adam->options.beta1(m);
  else if (auto* rms = dynamic_cast<RMSprop<T>*>(&this->opt_)) rms->options.momentum(m);
}

template <class T>
ReduceLROnPlateau<T>::ReduceLROnPlateau(Optimizer<T>& opt, Options o)
    : opt_(opt), o_(o), best_(std::numeric_limits<double>::infinity()) {
  if (!(o.factor() > 0 && o.factor() < 1))
    throw ValueError(fmt::format("ReduceLROnPlateau: factor = {} must be in (0, 1)", o.factor()));
}

template <class T>
ArrayMap ReduceLROnPlateau<T>::state_dict() const {
  ArrayMap m;
  m.emplace("best", full<double>(Shape{}, best_));
  m.emplace("num_bad_epochs", full<double>(Shape{}, static_cast<double>(bad_)));
  m.emplace("cooldown_left", full<double>(Shape{}, static_cast<double>(cooldown_left_)));
  return m;
}

template <class T>
void ReduceLROnPlateau<T>::load_state_dict(const ArrayMap& state) {
  const char* who = "ReduceLROnPlateau";
  no_unexpected(state, who, {"best", "num_bad_epochs", "cooldown_left"});
  const double best = scalar_of(entry(state, who, "best"), "ReduceLROnPlateau load_state_dict: 'best'");
  if (std::isnan(best)) throw ValueError("ReduceLROnPlateau load_state_dict: 'best' is NaN");
  const auto bad = count_of(entry(state, who, "num_bad_epochs"), "ReduceLROnPlateau load_state_dict: 'num_bad_epochs'");
  const auto cool = count_of(entry(state, who, "cooldown_left"), "ReduceLROnPlateau load_state_dict: 'cooldown_left'");
  best_ = best;
  bad_ = static_cast<std::size_t>(bad);
  cooldown_left_ = static_cast<std::size_t>(cool);
}

template <class T>
void ReduceLROnPlateau<T>::step(double metric) {
  if (metric < best_ * (1.0 - o_.threshold())) {
    best_ = metric;
    bad_ = 0;
  } else {
    ++bad_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_ = 0;
  }
  if (bad_ > o_.patience()) {
    const double old_lr = opt_.lr(), new_lr = std::max(old_lr * o_.factor(), o_.min_lr());
    if (old_lr - new_lr > o_.eps()) opt_.set_lr(new_lr);
    cooldown_left_ = o_.cooldown();
    bad_ = 0;
  }
}

#define XG_INSTANTIATE(T)                                                      \
  template NamedParams<T> name_params(const std::vector<Var<T>>&);             \
  template class Optimizer<T>;                                                 \
  template class Schedule<T>;                                                  \
  template class SGD<T>;                                                       \
  template class Adam<T>;                                                      \
  template double clip_grad_norm(const std::vector<Var<T>>&, double);          \
  template double clip_grad_norm(const NamedParams<T>&, double);               \
  template void clip_grad_value(const std::vector<Var<T>>&, double);           \
  template class StepLR<T>;                                                    \
  template class ExponentialLR<T>;                                             \
  template class CosineAnnealingLR<T>;                                         \
  template class ReduceLROnPlateau<T>;                                          \
  template class RMSprop<T>;                                                    \
  template class Adagrad<T>;                                                    \
  template class LinearLR<T>;                                                   \
  template class OneCycleLR<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg::optim
