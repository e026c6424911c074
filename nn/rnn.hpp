// Recurrent networks built only from autograd ops: the cells' step functions read like the
// textbook, and one driver (nn::Recurrent) runs any cell over time, layers and directions.
// RNN, LSTM and GRU are that driver over their own cells.
//
//     nn::LSTM lstm(nn::LSTMOptions(16, 32).num_layers(2));
//     auto [output, h_n, c_n] = lstm.forward(x);        // x [T, B, 16] -> output [T, B, 32]
//     auto out = lstm.forward(x, {h0, c0}, lengths);      // the calling convention of every cell
//
// Parameter names, shapes, gate order (i, f, g, o for LSTM; r, z, n for GRU) and initialisation
// (U(-1/sqrt(hidden), 1/sqrt(hidden))) are PyTorch's, so state_dicts load unchanged.
#pragma once

#include <tuple>
#include <vector>

#include <xgrad/nn/cell.hpp>

namespace xg::nn {

// ---- The built-in cells' step functions -------------------------------------------------------
// `xp` is the input's projection W_ih x + b_ih (+ b_hh where it can be folded), computed for all
// time steps at once by the driver.

/// h' = act(xp + W_hh h)
template <class T>
Var<T> rnn_step(const Var<T>& xp, const Var<T>& h, const Var<T>& w_hh, Nonlinearity act);

/// LSTM:  gates = xp + W_hh h, split into i, f, g, o
///   c' = f * c + i * g         the cell state: long-term memory
///   h' = o * tanh(c')          the hidden state: short-term memory
template <class T>
std::pair<Var<T>, Var<T>> lstm_step(const Var<T>& xp, const Var<T>& h, const Var<T>& c,
                                    const Var<T>& w_hh);

/// GRU:  r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), n = tanh(x_n + r * h_n),
///       h' = (1 - z) * n + z * h,   with [h_r, h_z, h_n] = W_hh h + b_hh
template <class T>
Var<T> gru_step(const Var<T>& xp, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh);

// ---- The built-in cells ------------------------------------------------------------------------

/// Parameters weight_ih [G*H, I], weight_hh [G*H, H], bias_ih [G*H], bias_hh [G*H] (G = 1, 4, 3).
template <class T>
class CellBase : public Cell<T> {
 public:
  Var<T> weight_ih, weight_hh, bias_ih, bias_hh;

 protected:
  CellBase(const char* name, std::size_t gates, const RNNOptions& o, Generator& gen,
           std::vector<StateSpec> states = {"h"});
  /// W_ih x + b_ih (+ b_hh when `fold_hidden_bias`).
  Var<T> linear_ih(const Var<T>& x, bool fold_hidden_bias) const;
};

/// h' = tanh(W_ih x + b_ih + W_hh h + b_hh)   (or relu)
///     nn::RNNCell cell(nn::RNNOptions(3, 8));   Var<float> h = cell.forward(x, h);
template <class T = float>
class RNNCell : public CellBase<T> {
 public:
  explicit RNNCell(const RNNOptions& o, Generator& gen = default_generator());
  Var<T> project(const Var<T>& x) const override { return this->linear_ih(x, true); }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    return {rnn_step(xp, s[0], this->weight_hh, this->options.nonlinearity())};
  }
  Var<T> forward(const Var<T>& x, const Var<T>& h = {});
};

/// One LSTM step: returns (h', c'). State (h, c); the layer outputs h.
///     nn::LSTMCell cell(nn::LSTMOptions(3, 8));   auto [h, c] = cell.forward(x, h, c);
template <class T = float>
class LSTMCell : public CellBase<T> {
 public:
  explicit LSTMCell(const RNNOptions& o, Generator& gen = default_generator());
  Var<T> project(const Var<T>& x) const override { return this->linear_ih(x, true); }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    auto [h, c] = lstm_step(xp, s[0], s[1], this->weight_hh);
    return {h, c};
  }
  std::pair<Var<T>, Var<T>> forward(const Var<T>& x, const Var<T>& h = {}, const Var<T>& c = {});
};

/// One GRU step: returns h'. The hidden bias stays inside the step (b_hn sits in the reset product).
template <class T = float>
class GRUCell : public CellBase<T> {
 public:
  explicit GRUCell(const RNNOptions& o, Generator& gen = default_generator());
  Var<T> project(const Var<T>& x) const override { return this->linear_ih(x, false); }
  State<T> step(const Var<T>& xp, const State<T>& s) const override {
    return {gru_step(xp, s[0], this->weight_hh, this->bias_hh)};
  }
  Var<T> forward(const Var<T>& x, const Var<T>& h = {});
};

// ---- The driver ---------------------------------------------------------------------------------

/// What a recurrent module returns. output [T, B, D*H] (or [B, T, D*H] with batch_first); every
/// final state [L*D, B, size]. `h_n` is the output state's, `c_n` the other state's of a two-state
/// cell (the LSTM's cell state; undefined for one-state cells), `states` all of them in the cell's
/// order. Binds as three: `auto [y, h_n, c_n] = lstm.forward(x);`
template <class T>
struct RNNOutput {
  Var<T> output, h_n, c_n;
  State<T> states;
  template <std::size_t I>
  Var<T>& get() & {
    return std::get<I>(std::tie(output, h_n, c_n));
  }
  template <std::size_t I>
  const Var<T>& get() const& {
    return std::get<I>(std::tie(output, h_n, c_n));
  }
  template <std::size_t I>
  Var<T>&& get() && {
    return std::move(get<I>());
  }
};

/// Any cell over layers x directions. `initial` holds one entry per state of the cell, each
/// [L*D, B, size] or undefined (zeros); `lengths` (one per batch entry, each in [1, T]) gives
/// variable-length batches: outputs past a sequence's end are zero and the final states come
/// from each sequence's last real step, as PyTorch's packed sequences do. Cell (l, d) gets input
/// size `input_size` for l = 0 and D * output size otherwise; its parameters are named
/// "<param>_l<l>" and "<param>_l<l>_reverse", as PyTorch names nn.LSTM's.
///     nn::Recurrent<float> net(nn::RNNOptions(8, 32).num_layers(2), "peephole_lstm");
///     auto out = net.forward(x, {}, lengths);
template <class T = float>
class Recurrent : public Module<T> {
 public:
  Recurrent(const RNNOptions& o, CellFactory<T> make_cell, Generator& gen = default_generator());
  /// A registered cell by name (see cell_catalog()).
  Recurrent(const RNNOptions& o, const std::string& cell_name, Generator& gen = default_generator());

  RNNOutput<T> forward(const Var<T>& input, const State<T>& initial = {},
                       const std::vector<std::size_t>& lengths = {});

  RNNOptions options;
  std::size_t num_directions() const { return options.bidirectional() ? 2 : 1; }
  /// The cell of layer l, direction d (0 forward, 1 reverse).
  const Cell<T>& cell(std::size_t layer, std::size_t direction) const {
    return *cells_.at(layer * num_directions() + direction);
  }
  /// The built-in cells' four tensors of layer l, direction d (ValueError for other cells).
  struct Weights {
    Var<T> w_ih, w_hh, b_ih, b_hh;
  };
  Weights weights(std::size_t layer, std::size_t direction) const;
  /// The generator of the dropout between layers. Save its state() in checkpoints (the charlm
  /// example does) for a resumed run with dropout to continue exactly.
  Generator& dropout_generator() { return dropout_gen_; }
  /// Printing: "16, 32, num_layers=2, bidirectional=true" like PyTorch's; the per-layer cells
  /// are not listed.
  std::string extra_repr() const override;
  bool repr_children() const override { return false; }

 protected:
  Recurrent(const std::string& name, const RNNOptions& o, CellFactory<T> make_cell, Generator& gen);

 private:
  std::vector<std::shared_ptr<Cell<T>>> cells_;
  Generator dropout_gen_;
  std::string cell_name_;
};

/// The driver's former name.
template <class T>
using RecurrentBase = Recurrent<T>;

/// Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh).
///     nn::RNN rnn(nn::RNNOptions(16, 32).nonlinearity(nn::Nonlinearity::ReLU));
///     auto [y, h_n, unused] = rnn.forward(x);
template <class T = float>
class RNN : public Recurrent<T> {
 public:
  explicit RNN(const RNNOptions& o, Generator& gen = default_generator())
      : Recurrent<T>("RNN", o, cell_factory<RNNCell<T>>(), gen) {}
  using Recurrent<T>::forward;
  RNNOutput<T> forward(const Var<T>& input, const Var<T>& h0, const std::vector<std::size_t>& lengths = {}) {
    return this->forward(input, State<T>{h0}, lengths);
  }
};

/// LSTM with forget, input and output gates; cell state and hidden state.
///     nn::LSTM lstm(nn::LSTMOptions(16, 32).num_layers(2).bidirectional(true));
///     auto [y, h_n, c_n] = lstm.forward(x);            // zeros as initial states
///     auto [y2, h2, c2] = lstm.forward(x, h_n, c_n, lengths);
template <class T = float>
class LSTM : public Recurrent<T> {
 public:
  explicit LSTM(const LSTMOptions& o, Generator& gen = default_generator())
      : Recurrent<T>("LSTM", o, cell_factory<LSTMCell<T>>(), gen) {}
  using Recurrent<T>::forward;
  RNNOutput<T> forward(const Var<T>& input, const Var<T>& h0, const Var<T>& c0 = {},
                       const std::vector<std::size_t>& lengths = {}) {
    return this->forward(input, State<T>{h0, c0}, lengths);
  }
};

/// GRU with reset and update gates (PyTorch's formulation, b_hn inside the reset product).
template <class T = float>
class GRU : public Recurrent<T> {
 public:
  explicit GRU(const GRUOptions& o, Generator& gen = default_generator())
      : Recurrent<T>("GRU", o, cell_factory<GRUCell<T>>(), gen) {}
  using Recurrent<T>::forward;
  RNNOutput<T> forward(const Var<T>& input, const Var<T>& h0, const std::vector<std::size_t>& lengths = {}) {
    return this->forward(input, State<T>{h0}, lengths);
  }
};

}  // namespace xg::nn

template <class T>
struct std::tuple_size<xg::nn::RNNOutput<T>> : std::integral_constant<std::size_t, 3> {};
template <std::size_t I, class T>
struct std::tuple_element<I, xg::nn::RNNOutput<T>> {
  using type = xg::Var<T>;
};
