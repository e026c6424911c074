// Optimizers, gradient clipping and learning-rate schedules. They update parameter values in
// place, outside the tape; defaults and update rules are torch.optim's.
//
//     optim::Adam opt(model.named_parameters(), optim::AdamOptions(1e-3));
//     opt.zero_grad();  loss.backward();  optim::clip_grad_norm(model.parameters(), 1.0);  opt.step();
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/autograd/var.hpp>
#include <xgrad/tensor/npy.hpp>
#include <xgrad/tensor/options.hpp>

namespace xg::optim {

template <class T>
using NamedParams = std::vector<std::pair<std::string, Var<T>>>;

/// Names "0", "1", ... for parameters given without names.
template <class T>
NamedParams<T> name_params(const std::vector<Var<T>>& params);

/// Common state: the parameters, the learning rate, per-parameter buffers, the step count.
/// ValueError when there are no parameters, when one is given twice (or two share a name), or
/// when one is not a leaf that requires grad.
template <class T = float>
class Optimizer {
 public:
  explicit Optimizer(NamedParams<T> params, double lr);
  virtual ~Optimizer() = default;

  /// One update from the current gradients. Parameters without a gradient are skipped. A NaN
  /// or Inf gradient throws ValueError naming the parameter, unless allow_nonfinite(true).
  void step();
  /// Forgets every parameter's gradient.
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);
  std::size_t steps() const { return steps_; }
  void allow_nonfinite(bool on) { allow_nonfinite_ = on; }
  const NamedParams<T>& params() const { return params_; }

  /// Buffers ("<param>.<buffer>"), "step" and "lr", for checkpoints; loading restores them exactly.
  ArrayMap state_dict() const;
  /// Validates everything, then changes everything: "step" a count (whole, >= 0), "lr" finite and
  /// >= 0, every key a known "<param>.<buffer>" of this optimizer's kind, each parameter's buffers
  /// all there or all absent (and some present once step > 0), shapes equal to the parameters',
  /// values finite after conversion to T, second moments >= 0. On any error it throws
  /// ValueError naming the key and the problem, and the optimizer is exactly as it was.
  /// Checkpoints from before nn::parameters kept names ("0.exp_avg", ...) load by position.
  void load_state_dict(const ArrayMap& state);
  /// The validation of load_state_dict alone: throws as it would, changes nothing.
  void check_state_dict(const ArrayMap& state) const;

 protected:
  /// Updates one parameter `p` from its gradient `g`; `state` holds its named buffers.
  virtual void update(Array<T>& p, const Array<T>& g, std::map<std::string, Array<T>>& state) = 0;
  /// The buffers each parameter has after its first update, for validating a loaded state
  /// (nullopt: not declared, any buffer names are accepted).
  virtual std::optional<std::vector<std::string>> buffer_names() const { return std::nullopt; }
  /// Whether a buffer must hold values >= 0 (second moments).
  virtual bool nonnegative_buffer(const std::string&) const { return false; }
  double lr_;
  std::size_t steps_ = 0;  // completed steps (Adam's t is steps_ + 1 during an update)

 private:
  NamedParams<T> params_;
  std::vector<std::map<std::string, Array<T>>> state_;
  bool allow_nonfinite_ = false;

  struct Loaded {
    std::vector<std::map<std::string, Array<T>>> state;
    std::size_t steps;
    double lr;
  };
  Loaded prepare_state(const ArrayMap& state) const;
};

struct SGDOptions {
  explicit SGDOptions(double lr) : lr_(lr) {}
  XG_OPTION(double, lr, 0.0);
  XG_OPTION(double, momentum, 0.0);
  XG_OPTION(double, dampening, 0.0);
  XG_OPTION(double, weight_decay, 0.0);
  XG_OPTION(bool, nesterov, false);
};

/// SGD: g += wd p; b = mu b + (1 - dampening) g (b = g on the first step);
/// g = nesterov ? g + mu b : b; p -= lr g.
template <class T = float>
class SGD : public Optimizer<T> {
 public:
  SGD(NamedParams<T> params, const SGDOptions& o);
  SGD(const std::vector<Var<T>>& params, const SGDOptions& o) : SGD(name_params(params), o) {}
  SGDOptions options;

 protected:
  void update(Array<T>& p, const Array<T>& g, std::map<std::string, Array<T>>& state) override;
  std::optional<std::vector<std::string>> buffer_names() const override;
};

struct AdamOptions {
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  XG_OPTION(double, lr, 1e-3);
  XG_OPTION(double, beta1, 0.9);
  XG_OPTION(double, beta2, 0.999);
  XG_OPTION(double, eps, 1e-8);
  XG_OPTION(double, weight_decay, 0.0);
  XG_OPTION(bool, amsgrad, false);
  /// Decoupled weight decay (AdamW): p -= lr wd p instead of adding wd p to the gradient.
  XG_OPTION(bool, decoupled_weight_decay, false);
};

/// Adam (Kingma & Ba) with bias correction, optional amsgrad and L2 weight decay.
template <class T = float>
class Adam : public Optimizer<T> {
 public:
  Adam(NamedParams<T> params, const AdamOptions& o);
  Adam(const std::vector<Var<T>>& params, const AdamOptions& o) : Adam(name_params(params), o) {}
  AdamOptions options;

 protected:
  void update(Array<T>& p, const Array<T>& g, std::map<std::string, Array<T>>& state) override;
  std::optional<std::vector<std::string>> buffer_names() const override;
  bool nonnegative_buffer(const std::string& b) const override { return b != "exp_avg"; }
};

/// AdamW: Adam with decoupled weight decay (default 1e-2, as torch.optim.AdamW).
template <class T = float>
class AdamW : public Adam<T> {
 public:
  AdamW(NamedParams<T> params, AdamOptions o = AdamOptions().weight_decay(1e-2))
      : Adam<T>(std::move(params), o.decoupled_weight_decay(true)) {}
  AdamW(const std::vector<Var<T>>& params, AdamOptions o = AdamOptions().weight_decay(1e-2))
      : AdamW(name_params(params), o) {}
};

struct RMSpropOptions {
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  XG_OPTION(double, lr, 1e-2);
  XG_OPTION(double, alpha, 0.99);
  XG_OPTION(double, eps, 1e-8);
  XG_OPTION(double, weight_decay, 0.0);
  XG_OPTION(double, momentum, 0.0);
  XG_OPTION(bool, centered, false);
};

/// RMSprop, as torch.optim.RMSprop: g += wd p; v = alpha v + (1 - alpha) g^2;
/// centered: a = alpha a + (1 - alpha) g, d = sqrt(v - a^2) + eps, else d = sqrt(v) + eps;
/// with momentum: b = mu b + g / d, p -= lr b; without: p -= lr g / d.
/// Buffers: "square_avg", "grad_avg" (centered), "momentum_buffer" (momentum > 0).
template <class T = float>
class RMSprop : public Optimizer<T> {
 public:
  RMSprop(NamedParams<T> params, const RMSpropOptions& o);
  RMSprop(const std::vector<Var<T>>& params, const RMSpropOptions& o) : RMSprop(name_params(params), o) {}
  RMSpropOptions options;

 protected:
  void update(Array<T>& p, const Array<T>& g, std::map<std::string, Array<T>>& state) override;
  std::optional<std::vector<std::string>> buffer_names() const override {
    std::vector<std::string> b{"square_avg"};
    if (options.centered()) b.push_back("grad_avg");
    if (options.momentum() != 0) b.push_back("momentum_buffer");
    return b;
  }
  bool nonnegative_buffer(const std::string& name) const override { return name == "square_avg"; }
};

struct AdagradOptions {
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  XG_OPTION(double, lr, 1e-2);
  XG_OPTION(double, lr_decay, 0.0);
  XG_OPTION(double, weight_decay, 0.0);
  XG_OPTION(double, initial_accumulator_value, 0.0);
  XG_OPTION(double, eps, 1e-10);
};

/// Adagrad, as torch.optim.Adagrad: g += wd p; s += g^2 (s starts at initial_accumulator_value);
/// p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps) at step t. Buffer: "sum".
template <class T = float>
class Adagrad : public Optimizer<T> {
 public:
  Adagrad(NamedParams<T> params, const AdagradOptions& o);
  Adagrad(const std::vector<Var<T>>& params, const AdagradOptions& o) : Adagrad(name_params(params), o) {}
  AdagradOptions options;

 protected:
  void update(Array<T>& p, const Array<T>& g, std::map<std::string, Array<T>>& state) override;
  std::optional<std::vector<std::string>> buffer_names() const override { return std::vector<std::string>{"sum"}; }
  bool nonnegative_buffer(const std::string& name) const override { return name == "sum"; }
};

/// Scales all gradients so that their joint L2 norm is at most max_norm (by
/// max_norm / (norm + 1e-6), as PyTorch); returns the norm before clipping.
template <class T>
double clip_grad_norm(const std::vector<Var<T>>& params, double max_norm);
template <class T>
double clip_grad_norm(const NamedParams<T>& params, double max_norm);

/// Clamps every gradient element to [-clip, clip].
template <class T>
void clip_grad_value(const std::vector<Var<T>>& params, double clip);
template <class T>
void clip_grad_value(const NamedParams<T>& params, double clip) {
  std::vector<Var<T>> v;
  for (const auto& [n, p] : params) v.push_back(p);
  clip_grad_value(v, clip);
}

// ---- Learning-rate schedules: call step() once per epoch, after optimizer.step() --------------

/// The rate at epoch e is a function of the base rate; step() advances e and sets the optimizer's lr.
template <class T = float>
class Schedule {
 public:
  explicit Schedule(Optimizer<T>& opt) : opt_(opt), base_lr_(opt.lr()) {}
  virtual ~Schedule() = default;
  void step() {
    ++epoch_;
    opt_.set_lr(rate(epoch_));
    on_step(epoch_);
  }
  std::size_t epoch() const { return epoch_; }
  /// The rate at epoch 0: the optimizer's rate when the schedule was made. After loading an
  /// optimizer's state (which restores a decayed rate), set it back from the checkpoint.
  double base_lr() const { return base_lr_; }
  void set_base_lr(double lr) { base_lr_ = lr; }
  /// For checkpoints: the epoch counter (sets the optimizer's rate for that epoch).
  void set_epoch(std::size_t e) {
    const double lr = rate(e);
    opt_.set_lr(lr);  // throws (changing nothing) when the rate is not finite and >= 0
    epoch_ = e;
    on_step(epoch_);
  }
  /// "epoch" and "base_lr", for checkpoints.
  ArrayMap state_dict() const;
  /// Restores them (and the optimizer's rate for that epoch) after validating both: the epoch a
  /// count, base_lr finite and >= 0, and the resulting rate valid. ValueError names the key;
  /// on error nothing changes.
  void load_state_dict(const ArrayMap& state);

 protected:
  virtual double rate(std::size_t epoch) const = 0;
  /// Called after the rate is set for `epoch` (schedules that also set momentum use it).
  virtual void on_step(std::size_t /*epoch*/) {}
  Optimizer<T>& opt_;
  double base_lr_;
  std::size_t epoch_ = 0;
};

/// lr = base * gamma^(epoch / step_size)
template <class T = float>
class StepLR : public Schedule<T> {
 public:
  StepLR(Optimizer<T>& opt, std::size_t step_size, double gamma = 0.1);

 protected:
  double rate(std::size_t e) const override;
  std::size_t step_size_;
  double gamma_;
};

/// lr = base * gamma^epoch
template <class T = float>
class ExponentialLR : public Schedule<T> {
 public:
  ExponentialLR(Optimizer<T>& opt, double gamma);

 protected:
  double rate(std::size_t e) const override;
  double gamma_;
};

/// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2
template <class T = float>
class CosineAnnealingLR : public Schedule<T> {
 public:
  CosineAnnealingLR(Optimizer<T>& opt, std::size_t t_max, double eta_min = 0.0);

 protected:
  double rate(std::size_t e) const override;
  std::size_t t_max_;
  double eta_min_;
};

/// Linear warm-up (torch's LinearLR): the rate goes from base * start_factor to base * end_factor
/// in total_iters steps, then stays: lr = base (start + (end - start) min(e, total_iters) / total_iters).
template <class T = float>
class LinearLR : public Schedule<T> {
 public:
  LinearLR(Optimizer<T>& opt, double start_factor = 1.0 / 3, double end_factor = 1.0,
           std::size_t total_iters = 5);

 protected:
  double rate(std::size_t e) const override;
  double start_, end_;
  std::size_t total_;
};

/// The one-cycle policy (torch's OneCycleLR), stepped after every optimizer step (not every
/// epoch): the rate rises from max_lr / div_factor to max_lr over the first pct_start of
/// total_steps, then falls to max_lr / (div_factor * final_div_factor); with three_phase it
/// first falls back to max_lr / div_factor and then to the minimum. Annealing is cosine or
/// linear. With cycle_momentum, SGD's and RMSprop's momentum and Adam's beta1 move the
/// other way, between max_momentum and base_momentum. The rate at construction is the first one;
/// steps 0 .. total_steps - 1 match PyTorch's, and step total_steps (allowed, as in PyTorch)
/// keeps the final rate where PyTorch extrapolates past it.
struct OneCycleOptions {
  OneCycleOptions(double max_lr, std::size_t total_steps) : max_lr_(max_lr), total_steps_(total_steps) {}
  enum class Anneal { Cos, Linear };
  XG_OPTION(double, max_lr, 0.0);
  XG_OPTION(std::size_t, total_steps, 0);
  XG_OPTION(double, pct_start, 0.3);
  XG_OPTION(Anneal, anneal_strategy, Anneal::Cos);
  XG_OPTION(bool, cycle_momentum, true);
  XG_OPTION(double, base_momentum, 0.85);
  XG_OPTION(double, max_momentum, 0.95);
  XG_OPTION(double, div_factor, 25.0);
  XG_OPTION(double, final_div_factor, 1e4);
  XG_OPTION(bool, three_phase, false);
};

template <class T = float>
class OneCycleLR : public Schedule<T> {
 public:
  OneCycleLR(Optimizer<T>& opt, const OneCycleOptions& o);
  /// The momentum (or beta1) at step e.
  double momentum(std::size_t e) const;

 protected:
  double rate(std::size_t e) const override;
  void on_step(std::size_t e) override;

 private:
  struct Phase {
    double end_step, start_lr, end_lr, start_m, end_m;
  };
  double anneal(double start, double end, double pct) const;
  // Where step e lies: the phase and the fraction of it done.
  std::pair<const Phase*, double> locate(std::size_t e) const;
  OneCycleOptions o_;
  std::vector<Phase> phases_;
};

/// Multiplies the rate by `factor` when a metric has not improved (relative threshold, mode min)
/// for more than `patience` epochs; then waits `cooldown` epochs. Never below min_lr.
template <class T = float>
class ReduceLROnPlateau {
 public:
  struct Options {
    XG_OPTION(double, factor, 0.1);
    XG_OPTION(std::size_t, patience, 10);
    XG_OPTION(double, threshold, 1e-4);
    XG_OPTION(std::size_t, cooldown, 0);
    XG_OPTION(double, min_lr, 0.0);
    XG_OPTION(double, eps, 1e-8);
  };
  ReduceLROnPlateau(Optimizer<T>& opt, Options o = Options());
  /// Feeds this epoch's metric (lower is better).
  void step(double metric);
  std::size_t num_bad_epochs() const { return bad_; }
  /// "best", "num_bad_epochs" and "cooldown_left", for checkpoints; loading validates all three
  /// (best not NaN, counts whole and >= 0) before changing anything.
  ArrayMap state_dict() const;
  void load_state_dict(const ArrayMap& state);

 private:
  Optimizer<T>& opt_;
  Options o_;
  double best_;
  std::size_t bad_ = 0, cooldown_left_ = 0;
};

}  // namespace xg::optim
