// The open cell interface. A recurrent cell says what its state is and how one time step
// changes it; the driver (nn::Recurrent, in rnn.hpp) gives every cell layers, directions,
// batch_first, initial states, variable lengths and dropout between layers.
//
//     template <class T>
//     struct MyCell : nn::Cell<T> {
//       Var<T> w_ih, w_hh;
//       MyCell(const nn::RNNOptions& o, Generator& g = default_generator()) : nn::Cell<T>("MyCell", o) {
//         w_ih = this->uniform_parameter("weight_ih", {o.hidden_size(), o.input_size()}, g);
//         w_hh = this->uniform_parameter("weight_hh", {o.hidden_size(), o.hidden_size()}, g);
//       }
//       Var<T> project(const Var<T>& x) const override { return linear(x, w_ih); }   // all steps, one GEMM
//       nn::State<T> step(const Var<T>& xp, const nn::State<T>& s) const override {
//         return {tanh(xp + linear(s[0], w_hh))};
//       }
//     };
//     nn::Recurrent<float> net(nn::RNNOptions(8, 32).num_layers(2), nn::cell_factory<MyCell<float>>());
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <xgrad/nn/module.hpp>

namespace xg::nn {

enum class Nonlinearity { Tanh, ReLU };

/// Options of RNN, LSTM, GRU, the generic driver nn::Recurrent, and every cell (cells use
/// input_size, hidden_size, bias and their own options; the driver uses the rest).
struct RNNOptions {
  RNNOptions(std::size_t input_size, std::size_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  XG_OPTION(std::size_t, input_size, 0);
  XG_OPTION(std::size_t, hidden_size, 0);
  XG_OPTION(std::size_t, num_layers, 1);
  XG_OPTION(bool, bias, true);
  /// Input and output as [B, T, features] instead of [T, B, features].
  XG_OPTION(bool, batch_first, false);
  XG_OPTION(bool, bidirectional, false);
  /// Dropout on the outputs of each layer but the last, in training mode.
  XG_OPTION(double, dropout, 0.0);
  /// RNN only: tanh or relu.
  XG_OPTION(Nonlinearity, nonlinearity, Nonlinearity::Tanh);
  /// Cells with a forget gate: when set, the forget gate's total bias starts at this value
  /// (for LSTM: b_ih's forget chunk = value, b_hh's = 0) instead of the random initialisation.
  XG_OPTION(std::optional<double>, forget_bias, std::nullopt);
};
using LSTMOptions = RNNOptions;
using GRUOptions = RNNOptions;

/// A cell's state: one [batch, size] tensor per declared state (h; or h and c; or more).
template <class T>
using State = PoolVector<Var<T>>;

/// One declared state: its name ("h", "c") and its size (0: the hidden size).
struct StateSpec {
  StateSpec(const char* n, std::size_t s = 0) : name(n), size(s) {}
  StateSpec(std::string n, std::size_t s = 0) : name(std::move(n)), size(s) {}
  std::string name;
  std::size_t size;
};

/// The base of every recurrent cell, built-in or user-written. A cell declares:
///   - its parameters (it is a Module: register them in the constructor);
///   - its state: names and sizes, and which one is the layer's output (h by default);
///   - project(x): the part of a step that depends on the input alone. The driver applies it
///     to all time steps at once ([T, B, in] -> [T, B, P]: one GEMM for a linear projection);
///     the default passes x through;
///   - step(xp, state): the next state from the projected input xp [B, P] and the state.
/// Nothing else: no backward, no time loop, no masking.
template <class T = float>
class Cell : public Module<T> {
 public:
  RNNOptions options;

  const std::vector<StateSpec>& state_spec() const { return states_; }
  std::size_t num_states() const { return states_.size(); }
  /// Index (in state_spec()) of the state the layer outputs.
  std::size_t output_state() const { return output_; }
  std::size_t state_size(std::size_t i) const { return states_.at(i).size; }
  std::size_t input_size() const { return options.input_size(); }
  std::size_t output_size() const { return states_[output_].size; }

  /// "input_size, hidden_size" and the options that differ from the defaults, for printing.
  std::string extra_repr() const override;

  /// The input-only part of a step, for every time step at once: [..., input_size] -> [..., P].
  virtual Var<T> project(const Var<T>& x) const { return x; }
  /// One time step: the next state from the projected input xp [B, P] and the state.
  virtual State<T> step(const Var<T>& xp, const State<T>& state) const = 0;

  /// One step from a raw input x [B, input_size], for step-by-step use; missing or undefined
  /// states start at zeros. Checks every shape and names the cell and the state.
  State<T> operator()(const Var<T>& x, const State<T>& state = {}) const;

  /// The given state, or zeros [batch, size] when undefined; checks its shape.
  Var<T> state_or_zeros(const Var<T>& s, std::size_t i, std::size_t batch) const;
  /// Checks what step() returned: the number of states and each shape [batch, size].
  void check_step(const State<T>& next, std::size_t batch) const;

 protected:
  /// `states`: names and sizes of the state (size 0 = hidden_size); `output`: the state the
  /// layer outputs. Checks input_size and hidden_size are positive and forget_bias is finite.
  Cell(std::string name, const RNNOptions& o, std::vector<StateSpec> states = {"h"},
       const std::string& output = "h");
  /// A parameter initialised U(-1/sqrt(hidden), 1/sqrt(hidden)), PyTorch's RNN initialisation.
  Var<T> uniform_parameter(const std::string& name, const Shape& shape, Generator& gen);
  /// For cells without the option: throws ValueError if forget_bias or a ReLU nonlinearity is set.
  void reject_forget_bias() const;
  void reject_nonlinearity() const;
  /// Applies options.forget_bias, when set, to chunk `k` ([k*H, (k+1)*H)) of a gate bias.
  void init_forget_bias(Var<T>& bias, std::size_t k);

 private:
  std::vector<StateSpec> states_;
  std::size_t output_ = 0;
};

/// Makes one cell for the given options (the driver passes each layer's input size).
template <class T>
using CellFactory = std::function<std::shared_ptr<Cell<T>>(const RNNOptions&, Generator&)>;

/// The factory of a cell type constructible as C(const RNNOptions&, Generator&).
template <class C>
CellFactory<typename C::value_type> cell_factory() {
  return [](const RNNOptions& o, Generator& g) { return std::make_shared<C>(o, g); };
}

// ---- Cells by name, for programs that take --cell NAME ---------------------------------------

/// A registered cell: its name, a one-line description and its factories.
struct CellInfo {
  std::string name, about;
};
/// Every registered cell, built-in and gallery ones first, in registration order.
std::vector<CellInfo> cell_catalog();
/// The names alone, for checking flags.
std::vector<std::string> cell_names();
/// The factory of a registered cell; throws ValueError listing the known names.
template <class T>
CellFactory<T> cell_factory(const std::string& name);
/// Registers factories under `name` (replacing an earlier entry of that name).
void register_cell_factories(const std::string& name, const std::string& about, CellFactory<float> f,
                             CellFactory<double> d);
/// Registers a cell template for float and double under `name`.
///     nn::register_cell<MyCell>("mine", "my cell (tanh RNN without bias)");
template <template <class> class C>
void register_cell(const std::string& name, const std::string& about) {
  register_cell_factories(name, about, cell_factory<C<float>>(), cell_factory<C<double>>());
}

}  // namespace xg::nn
