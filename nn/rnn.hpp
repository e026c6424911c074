// Recurrent networks built only from autograd ops: the cells' step functions read like the
// textbook, and the sequence modules (RNN, LSTM, GRU) run them over time, layers and directions.
//
//     nn::LSTM lstm(nn::LSTMOptions(16, 32).num_layers(2));
//     auto [output, h_n, c_n] = lstm.forward(x);     // x [T, B, 16] -> output [T, B, 32]
//
// Parameter names, shapes, gate order (i, f, g, o for LSTM; r, z, n for GRU) and initialisation
// (U(-1/sqrt(hidden), 1/sqrt(hidden))) are PyTorch's, so state_dicts load unchanged.
#pragma once

#include <optional>
#include <vector>

#include <xgrad/nn/module.hpp>

namespace xg::nn {

enum class Nonlinearity { Tanh, ReLU };

/// Options of RNN, LSTM and GRU (and their cells, which use input_size, hidden_size, bias).
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
  /// LSTM only: when set, the forget gate's total bias starts at this value (b_ih's forget
  /// chunk = value, b_hh's = 0) instead of PyTorch's random initialisation.
  XG_OPTION(std::optional<double>, forget_bias, std::nullopt);
};
using LSTMOptions = RNNOptions;
using GRUOptions = RNNOptions;

// ---- The cells' step functions --------------------------------------------------------------
// `xp` is the input's projection W_ih x + b_ih (+ b_hh where it can be folded), computed for all
// time steps at once by the sequence modules.

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

// ---- Cells: one time step, for step-by-step use ----------------------------------------------

enum class CellKind { RNN, LSTM, GRU };

/// Parameters weight_ih [G*H, I], weight_hh [G*H, H], bias_ih [G*H], bias_hh [G*H] (G = 1, 4, 3).
template <class T>
class CellBase : public Module<T> {
 public:
  Var<T> weight_ih, weight_hh, bias_ih, bias_hh;
  RNNOptions options;

 protected:
  CellBase(const char* name, CellKind kind, const RNNOptions& o, Generator& gen);
  /// W_ih x + b_ih (+ b_hh when `fold_hidden_bias`); checks x is [B, input_size].
  Var<T> project(const Var<T>& x, bool fold_hidden_bias) const;
  /// The given state, or zeros [B, H] when undefined; checks its shape.
  Var<T> state_or_zeros(const Var<T>& s, std::size_t batch, const char* what) const;
};

/// h' = tanh(W_ih x + b_ih + W_hh h + b_hh)   (or relu)
///     nn::RNNCell cell(nn::RNNOptions(3, 8));   Var<float> h = cell.forward(x, h);
template <class T = float>
class RNNCell : public CellBase<T> {
 public:
  explicit RNNCell(const RNNOptions& o, Generator& gen = default_generator())
      : CellBase<T>("RNNCell", CellKind::RNN, o, gen) {}
  Var<T> forward(const Var<T>& x, const Var<T>& h = {});
};

/// One LSTM step: returns (h', c').
///     nn::LSTMCell cell(nn::LSTMOptions(3, 8));   auto [h, c] = cell.forward(x, h, c);
template <class T = float>
class LSTMCell : public CellBase<T> {
 public:
  explicit LSTMCell(const RNNOptions& o, Generator& gen = default_generator())
      : CellBase<T>("LSTMCell", CellKind::LSTM, o, gen) {}
  std::pair<Var<T>, Var<T>> forward(const Var<T>& x, const Var<T>& h = {}, const Var<T>& c = {});
};

/// One GRU step: returns h'.
template <class T = float>
class GRUCell : public CellBase<T> {
 public:
  explicit GRUCell(const RNNOptions& o, Generator& gen = default_generator())
      : CellBase<T>("GRUCell", CellKind::GRU, o, gen) {}
  Var<T> forward(const Var<T>& x, const Var<T>& h = {});
};

// ---- Sequence modules -------------------------------------------------------------------------

/// output [T, B, D*H] (or [B, T, D*H] with batch_first); h_n and c_n [L*D, B, H].
/// c_n is undefined for RNN and GRU.
template <class T>
struct RNNOutput {
  Var<T> output, h_n, c_n;
};

/// Layers x directions of one cell kind. `lengths` (one per batch entry, each in [1, T]) gives
/// variable-length batches: outputs past a sequence's end are zero and the final states come
/// from each sequence's last real step, as PyTorch's packed sequences do.
template <class T>
class RecurrentBase : public Module<T> {
 public:
  RNNOptions options;
  /// Parameters of layer l, direction d (0 forward, 1 reverse).
  struct Weights {
    Var<T> w_ih, w_hh, b_ih, b_hh;
  };
  const Weights& weights(std::size_t layer, std::size_t direction) const {
    return weights_.at(layer * num_directions() + direction);
  }
  std::size_t num_directions() const { return options.bidirectional() ? 2 : 1; }
  /// The generator of the dropout between layers. Save its state() in checkpoints (the charlm
  /// example does) for a resumed run with dropout to continue exactly.
  Generator& dropout_generator() { return dropout_gen_; }

 protected:
  RecurrentBase(const char* name, CellKind kind, const RNNOptions& o, Generator& gen);
  RNNOutput<T> run(const Var<T>& input, const Var<T>& h0, const Var<T>& c0,
                   const std::vector<std::size_t>& lengths);

 private:
  CellKind kind_;
  std::vector<Weights> weights_;
  Generator dropout_gen_;
};

/// Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh).
///     nn::RNN rnn(nn::RNNOptions(16, 32).nonlinearity(nn::Nonlinearity::ReLU));
///     auto [y, h_n, unused] = rnn.forward(x);
template <class T = float>
class RNN : public RecurrentBase<T> {
 public:
  explicit RNN(const RNNOptions& o, Generator& gen = default_generator())
      : RecurrentBase<T>("RNN", CellKind::RNN, o, gen) {}
  RNNOutput<T> forward(const Var<T>& input, const Var<T>& h0 = {},
                       const std::vector<std::size_t>& lengths = {}) {
    return this->run(input, h0, Var<T>(), lengths);
  }
};

/// LSTM with forget, input and output gates; cell state and hidden state.
///     nn::LSTM lstm(nn::LSTMOptions(16, 32).num_layers(2).bidirectional(true));
///     auto [y, h_n, c_n] = lstm.forward(x);            // zeros as initial states
///     auto [y2, h2, c2] = lstm.forward(x, h_n, c_n, lengths);
template <class T = float>
class LSTM : public RecurrentBase<T> {
 public:
  explicit LSTM(const LSTMOptions& o, Generator& gen = default_generator())
      : RecurrentBase<T>("LSTM", CellKind::LSTM, o, gen) {}
  RNNOutput<T> forward(const Var<T>& input, const Var<T>& h0 = {}, const Var<T>& c0 = {},
                       const std::vector<std::size_t>& lengths = {}) {
    return this->run(input, h0, c0, lengths);
  }
};

/// GRU with reset and update gates (PyTorch's formulation, b_hn inside the reset product).
template <class T = float>
class GRU : public RecurrentBase<T> {
 public:
  explicit GRU(const GRUOptions& o, Generator& gen = default_generator())
      : RecurrentBase<T>("GRU", CellKind::GRU, o, gen) {}
  RNNOutput<T> forward(const Var<T>& input, const Var<T>& h0 = {},
                       const std::vector<std::size_t>& lengths = {}) {
    return this->run(input, h0, Var<T>(), lengths);
  }
};

}  // namespace xg::nn
