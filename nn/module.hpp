// Modules: named parameters and submodules, train/eval mode, save/load to .npz.
// Modules only compose autograd ops; nothing in nn/ defines a backward.
#pragma once

#include <memory>
#include <ostream>
#include <string_view>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <xgrad/autograd/autograd.hpp>
#include <xgrad/tensor/npy.hpp>
#include <xgrad/tensor/options.hpp>
#include <xgrad/tensor/random.hpp>

namespace xg {

/// This thread's default generator for parameter initialisation and dropout masks.
Generator& default_generator();
/// Seeds it (like torch.manual_seed): the same seed builds the same modules.
void manual_seed(std::uint64_t seed);

}  // namespace xg

namespace xg::nn {

/// What load() found: keys it expected but did not find, keys it did not expect, and keys whose
/// shapes disagree ("name: file (3, 4) vs model (4, 4)").
struct LoadReport {
  std::vector<std::string> missing, unexpected, mismatched;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

template <class T = float>
class Module {
 public:
  using value_type = T;
  virtual ~Module() = default;

  /// Parameters with dotted names, this module's first, then each submodule's in order.
  std::vector<std::pair<std::string, Var<T>>> named_parameters() const;
  std::vector<Var<T>> parameters() const;
  /// Total number of scalar parameters.
  std::size_t num_parameters() const;
  /// Forgets every parameter's gradient.
  void zero_grad();

  /// Training mode (dropout active) or evaluation mode, for this module and its submodules.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Parameter values by name (copies).
  ArrayMap state_dict() const;
  /// Loads values by name. With `strict`, any missing, unexpected or mis-shaped key throws
  /// ValueError naming them all, and nothing is changed. Float32 and float64 files both load.
  LoadReport load_state_dict(const ArrayMap& state, bool strict = true);
  /// Saves parameters to an .npz keyed by their names (written atomically).
  void save(const std::string& path) const;
  /// Loads an .npz written by save() or by numpy.savez(path, **torch_model.state_dict()).
  LoadReport load(const std::string& path, bool strict = true);

  const std::string& name() const { return name_; }

  /// This module's options on one line, shown by printing: "in_features=4, out_features=2,
  /// bias=true" (PyTorch's extra_repr). Empty by default; each module overrides it.
  virtual std::string extra_repr() const { return {}; }
  /// The registered submodules with their names, in registration order (a submodule registered
  /// with a suffix is listed under its suffix, e.g. "_l0_reverse").
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
    for (const auto& c : children_) out.emplace_back(c.name, c.module);
    return out;
  }

 protected:
  explicit Module(std::string name) : name_(std::move(name)) {}
  void set_name(std::string name) { name_ = std::move(name); }
  /// Registers a parameter (a leaf that requires grad) under `name`; returns its handle.
  Var<T> register_parameter(const std::string& name, Array<T> value);
  /// Registers a submodule; its parameters appear as "<name>.<param>".
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.push_back({name, m, false});
    return m;
  }
  /// Registers a submodule whose parameters appear as "<param><suffix>": the recurrent driver
  /// names a cell's "weight_ih" in layer 1's reverse direction "weight_ih_l1_reverse", as PyTorch does.
  template <class M>
  std::shared_ptr<M> register_module_with_suffix(const std::string& suffix, std::shared_ptr<M> m) {
    children_.push_back({suffix, m, true});
    return m;
  }

 private:
  std::string name_;
  std::vector<std::pair<std::string, Var<T>>> params_;
  struct Child {
    std::string name;
    std::shared_ptr<Module> module;
    bool suffix;  // parameter names are "<param><name>" instead of "<name>.<param>"
  };
  std::vector<Child> children_;
  bool training_ = true;
};

/// The module tree as text, like PyTorch's print(model): each module with its options and, when
/// it has any, its parameter count; the first line's module ends with the total.
///
///     Sequential(
///       (0): Linear(in_features=4, out_features=16, bias=true)  # 80 parameters
///       (1): tanh()
///       (2): Linear(in_features=16, out_features=2, bias=true)  # 34 parameters
///     )  # 114 parameters in total
template <class T>
std::string to_string(const Module<T>& m);

/// `std::cout << model` prints to_string(model).
template <class T>
std::ostream& operator<<(std::ostream& os, const Module<T>& m) {
  return os << to_string(m);
}

/// The parameters of several modules in one list, for one optimizer:
/// `optim::Adam opt(nn::parameters(lstm, head), optim::AdamOptions(1e-3));`
template <class M, class... Ms>
auto parameters(const M& first, const Ms&... rest) {
  auto out = first.parameters();
  (..., [&] { for (auto& p : rest.parameters()) out.push_back(p); }());
  return out;
}

/// A module mapping one Var to one Var (what Sequential chains).
template <class T = float>
class UnaryModule : public Module<T> {
 public:
  virtual Var<T> forward(const Var<T>& x) = 0;
  Var<T> operator()(const Var<T>& x) { return forward(x); }

 protected:
  using Module<T>::Module;
};

}  // namespace xg::nn

namespace fmt {
/// `fmt::print("{}\n", model)` for every module type: xg::nn::to_string(model).
template <class M>
struct formatter<M, char,
                 std::enable_if_t<std::is_base_of_v<xg::nn::Module<float>, M> ||
                                  std::is_base_of_v<xg::nn::Module<double>, M>>>
    : formatter<std::string_view> {
  template <class Ctx>
  auto format(const M& m, Ctx& ctx) const {
    const std::string s = xg::nn::to_string(m);
    return formatter<std::string_view>::format(s, ctx);
  }
};
}  // namespace fmt
