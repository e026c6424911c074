#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/nn/rnn.hpp>

namespace xg::nn {

// ---- Step functions: the textbook cells ------------------------------------------------------

// h' = act(xp + W_hh h)
template <class T>
Var<T> rnn_step(const Var<T>& xp, const Var<T>& h, const Var<T>& w_hh, Nonlinearity act) {
  Var<T> pre = addmm(xp, h, w_hh, NoTrans, DoTrans);  // xp + h W_hh^T
  return act == Nonlinearity::Tanh ? tanh(pre) : relu(pre);
}

template <class T>
std::pair<Var<T>, Var<T>> lstm_step(const Var<T>& xp, const Var<T>& h, const Var<T>& c,
                                    const Var<T>& w_hh) {
  const std::size_t H = c.shape(1);
  Var<T> gates = addmm(xp, h, w_hh, NoTrans, DoTrans);  // xp + h W_hh^T: [B, 4H], one matmul
  // PyTorch's gate order: input, forget, cell candidate, output (slices are views, not copies).
  auto gate = [&](std::size_t k) { return slice(gates, 1, k * H, H); };
  // Each line is one fused pass and one tape record; its derivative comes from the expression.
  Var<T> c_next = fuse("lstm_cell_c", [](auto zi, auto zf, auto zg, auto c_prev) {
    auto input_gate = sigmoid(zi), forget_gate = sigmoid(zf), candidate = tanh(zg);
    return forget_gate * c_prev + input_gate * candidate;  // long-term memory
  }, gate(0), gate(1), gate(2), c);
  Var<T> h_next = fuse("lstm_cell_h", [](auto zo, auto c_new) {
    auto output_gate = sigmoid(zo);
    return output_gate * tanh(c_new);  // short-term memory
  }, gate(3), c_next);
  return {h_next, c_next};
}

template <class T>
Var<T> gru_step(const Var<T>& xp, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh) {
  const std::size_t H = h.shape(1);
  Var<T> hh = linear(h, w_hh, b_hh);  // [B, 3H]; gate order reset, update, new (PyTorch's)
  return fuse("gru_cell", [](auto xr, auto hr, auto xz, auto hz, auto xn, auto hn, auto h_prev) {
    auto reset_gate = sigmoid(xr + hr), update_gate = sigmoid(xz + hz);
    auto candidate = tanh(xn + reset_gate * hn);
    return candidate + update_gate * (h_prev - candidate);  // (1 - z) n + z h
  }, slice(xp, 1, 0, H), slice(hh, 1, 0, H), slice(xp, 1, H, H), slice(hh, 1, H, H),
     slice(xp, 1, 2 * H, H), slice(hh, 1, 2 * H, H), h);
}

// ---- The built-in cells -----------------------------------------------------------------------

// U(-1/sqrt(H), 1/sqrt(H)) for every tensor, in PyTorch's order: w_ih, w_hh, b_ih, b_hh.
template <class T>
CellBase<T>::CellBase(const char* name, std::size_t gates, const RNNOptions& o, Generator& gen,
                      std::vector<StateSpec> states)
    : Cell<T>(name, o, std::move(states)) {
  const std::size_t H = o.hidden_size();
  weight_ih = this->uniform_parameter("weight_ih", Shape{gates * H, o.input_size()}, gen);
  weight_hh = this->uniform_parameter("weight_hh", Shape{gates * H, H}, gen);
  if (o.bias()) {
    bias_ih = this->uniform_parameter("bias_ih", Shape{gates * H}, gen);
    bias_hh = this->uniform_parameter("bias_hh", Shape{gates * H}, gen);
  }
}

template <class T>
Var<T> CellBase<T>::linear_ih(const Var<T>& x, bool fold_hidden_bias) const {
  if (!this->options.bias()) return linear(x, weight_ih);
  return linear(x, weight_ih, fold_hidden_bias ? bias_ih + bias_hh : bias_ih);
}

template <class T>
RNNCell<T>::RNNCell(const RNNOptions& o, Generator& gen) : CellBase<T>("RNNCell", 1, o, gen) {
  this->reject_forget_bias();
}

template <class T>
LSTMCell<T>::LSTMCell(const RNNOptions& o, Generator& gen) : CellBase<T>("LSTMCell", 4, o, gen, {"h", "c"}) {
  this->reject_nonlinearity();
  this->init_forget_bias(this->bias_ih, 1);  // gate order i, f, g, o: chunk 1; b_hh's chunk is 0
  if (o.forget_bias())
    for (std::size_t j = o.hidden_size(); j < 2 * o.hidden_size(); ++j) this->bias_hh.mutable_value()(j) = T(0);
}

template <class T>
GRUCell<T>::GRUCell(const RNNOptions& o, Generator& gen) : CellBase<T>("GRUCell", 3, o, gen) {
  this->reject_forget_bias();
  this->reject_nonlinearity();
}

template <class T>
Var<T> RNNCell<T>::forward(const Var<T>& x, const Var<T>& h) {
  return (*this)(x, {h})[0];
}

template <class T>
std::pair<Var<T>, Var<T>> LSTMCell<T>::forward(const Var<T>& x, const Var<T>& h, const Var<T>& c) {
  State<T> s = (*this)(x, {h, c});
  return {s[0], s[1]};
}

template <class T>
Var<T> GRUCell<T>::forward(const Var<T>& x, const Var<T>& h) {
  return (*this)(x, {h})[0];
}

// ---- The driver -----------------------------------------------------------------------------

template <class T>
Recurrent<T>::Recurrent(const RNNOptions& o, CellFactory<T> make_cell, Generator& gen)
    : Recurrent("Recurrent", o, std::move(make_cell), gen) {}

template <class T>
Recurrent<T>::Recurrent(const RNNOptions& o, const std::string& cell_name, Generator& gen)
    : Recurrent("Recurrent", o, cell_factory<T>(cell_name), gen) {}

template <class T>
Recurrent<T>::Recurrent(const std::string& name, const RNNOptions& o, CellFactory<T> make_cell, Generator& gen)
    : Module<T>(name), options(o), dropout_gen_(gen.next_u64()) {
  if (o.num_layers() == 0) throw ValueError(fmt::format("{}: num_layers must be positive", name));
  if (!(o.dropout() >= 0.0 && o.dropout() < 1.0))
    throw ValueError(fmt::format("{}: dropout = {} must be in [0, 1)", name, o.dropout()));
  if (!make_cell) throw ValueError(fmt::format("{}: no cell factory given", name));
  const std::size_t D = num_directions();
  std::size_t in = o.input_size();
  for (std::size_t l = 0; l < o.num_layers(); ++l) {
    std::size_t out = 0;
    for (std::size_t d = 0; d < D; ++d) {
      RNNOptions co = o;
      co.input_size(in);
      std::shared_ptr<Cell<T>> c;
      try {
        c = make_cell(co, gen);
      } catch (const ValueError& e) {
        throw ValueError(fmt::format("{}: {}", name, e.what()));
      }
      if (!c) throw ValueError(fmt::format("{}: the cell factory returned no cell", name));
      if (c->input_size() != in)
        throw ValueError(fmt::format("{}: cell {} was built for input size {}, layer {} gives {}", name,
                                     c->name(), c->input_size(), l, in));
      out = c->output_size();
      this->register_module_with_suffix(fmt::format("_l{}{}", l, d == 1 ? "_reverse" : ""), c);
      cells_.push_back(std::move(c));
    }
    in = D * out;
  }
  cell_name_ = cells_[0]->name();
  if (name == "Recurrent") this->set_name(fmt::format("Recurrent({})", cell_name_));
}

std::string recurrent_options_repr(const RNNOptions& o);  // nn/cell.cpp

template <class T>
std::string Recurrent<T>::extra_repr() const {
  return recurrent_options_repr(options);
}

template <class T>
typename Recurrent<T>::Weights Recurrent<T>::weights(std::size_t layer, std::size_t direction) const {
  auto* c = dynamic_cast<const CellBase<T>*>(&cell(layer, direction));
  if (!c) throw ValueError(fmt::format("{}: weights() is for the built-in cells; use cell(l, d)", this->name()));
  return {c->weight_ih, c->weight_hh, c->bias_ih, c->bias_hh};
}

template <class T>
RNNOutput<T> Recurrent<T>::forward(const Var<T>& input, const State<T>& initial,
                                   const std::vector<std::size_t>& lengths) {
  const std::string& name = this->name();
  const RNNOptions& o = options;
  const Cell<T>& first = *cells_[0];
  const std::size_t S = first.num_states(), out_idx = first.output_state();
  if (input.dim() != 3 || input.shape(2) != o.input_size())
    throw ShapeError(fmt::format("{}: input must be {} with {} features, got {}", name,
                                 o.batch_first() ? "[batch, time, features]" : "[time, batch, features]",
                                 o.input_size(), shape_str(input.shape())));
  Var<T> x = o.batch_first() ? permute(input, {1, 0, 2}) : input;  // [T, B, I]
  const std::size_t T_ = x.shape(0), B = x.shape(1), D = num_directions(), L = o.num_layers();
  if (T_ == 0 || B == 0)
    throw ShapeError(fmt::format("{}: input {} has no {}; a sequence needs at least one step", name,
                                 shape_str(input.shape()), T_ == 0 ? "time steps" : "batch entries"));
  if (!initial.empty() && initial.size() != S) {
    std::vector<std::string> names;
    for (const auto& s : first.state_spec()) names.push_back(s.name);
    throw ValueError(fmt::format("{}: {} initial states given, cell {} has {} ({})", name, initial.size(),
                                 first.name(), S, fmt::join(names, ", ")));
  }
  for (std::size_t k = 0; k < initial.size(); ++k) {
    const Shape want{L * D, B, first.state_size(k)};
    if (initial[k].defined() && initial[k].shape() != want)
      throw ShapeError(fmt::format("{}: {}0 (initial state '{}' of cell {}) must be {} (layers * directions, "
                                   "batch, {}), got {}",
                                   name, first.state_spec()[k].name, first.state_spec()[k].name, first.name(),
                                   shape_str(want), first.state_size(k), shape_str(initial[k].shape())));
  }

  // Variable lengths: masks [B, 1] for the steps where some sequence has ended.
  bool ragged = false;
  if (!lengths.empty()) {
    if (lengths.size() != B)
      throw ShapeError(fmt::format("{}: {} lengths given for a batch of {}", name, lengths.size(), B));
    for (std::size_t b = 0; b < B; ++b) {
      if (lengths[b] == 0 || lengths[b] > T_)
        throw ValueError(fmt::format("{}: lengths[{}] = {} must be in [1, {}]", name, b, lengths[b], T_));
      ragged = ragged || lengths[b] != T_;
    }
  }
  PoolVector<Array<bool>> keep(ragged ? T_ : 0);  // keep[t](b, 0): step t is real for b
  PoolVector<Var<T>> keep_f(ragged ? T_ : 0);
  PoolVector<bool> all_real(T_, true);
  for (std::size_t t = 0; ragged && t < T_; ++t) {
    keep[t] = Array<bool>::from_shape({B, 1});
    Array<T> m = empty<T>(Shape{B, 1});
    for (std::size_t b = 0; b < B; ++b) {
      keep[t](b, 0) = t < lengths[b];
      m(b, 0) = t < lengths[b] ? T(1) : T(0);
      all_real[t] = all_real[t] && t < lengths[b];
    }
    keep_f[t] = Var<T>(std::move(m));
  }

  PoolVector<State<T>> finals(S);  // finals[k][l * D + d]
  Var<T> layer_in = x;
  for (std::size_t l = 0; l < L; ++l) {
    PoolVector<Var<T>> dir_out;
    for (std::size_t d = 0; d < D; ++d) {
      const Cell<T>& cell = *cells_[l * D + d];
      const std::size_t idx = l * D + d;
      // The input-only part of every step at once: one GEMM for [T, B, in] -> [T, B, P].
      Var<T> xp = cell.project(layer_in);
      if (xp.dim() != 3 || xp.shape(0) != T_ || xp.shape(1) != B)
        throw ShapeError(fmt::format("{}: cell {}'s project() must keep [time, batch] = ({}, {}), got {}", name,
                                     cell.name(), T_, B, shape_str(xp.shape())));
      State<T> state(S);
      for (std::size_t k = 0; k < S; ++k)
        state[k] = cell.state_or_zeros(k < initial.size() && initial[k].defined() ? select(initial[k], 0, idx) : Var<T>(),
                                       k, B);
      PoolVector<Var<T>> outs(T_);
      for (std::size_t s = 0; s < T_; ++s) {
        const std::size_t t = d == 0 ? s : T_ - 1 - s;
        State<T> next = cell.step(select(xp, 0, t), state);
        cell.check_step(next, B);
        if (ragged && !all_real[t]) {  // ended sequences keep their state and output zeros
          outs[t] = next[out_idx] * keep_f[t];
          for (std::size_t k = 0; k < S; ++k) state[k] = xg::where(keep[t], next[k], state[k]);
        } else {
          outs[t] = next[out_idx];
          state = std::move(next);
        }
      }
      dir_out.push_back(stack(outs, 0));
      for (std::size_t k = 0; k < S; ++k) finals[k].push_back(state[k]);
    }
    layer_in = D == 1 ? dir_out[0] : concat(dir_out, 2);
    if (l + 1 < L && o.dropout() > 0 && this->is_training())
      layer_in = dropout(layer_in, o.dropout(), true, dropout_gen_);
  }
  RNNOutput<T> out;
  out.output = o.batch_first() ? permute(layer_in, {1, 0, 2}) : layer_in;
  for (std::size_t k = 0; k < S; ++k) out.states.push_back(stack(finals[k], 0));
  out.h_n = out.states[out_idx];
  if (S == 2) out.c_n = out.states[1 - out_idx];
  return out;
}

#define XG_INSTANTIATE(T)                                                                        \
  template Var<T> rnn_step(const Var<T>&, const Var<T>&, const Var<T>&, Nonlinearity);           \
  template std::pair<Var<T>, Var<T>> lstm_step(const Var<T>&, const Var<T>&, const Var<T>&,      \
                                               const Var<T>&);                                   \
  template Var<T> gru_step(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&);          \
  template class CellBase<T>;                                                                    \
  template class RNNCell<T>;                                                                     \
  template class LSTMCell<T>;                                                                    \
  template class GRUCell<T>;                                                                     \
  template class Recurrent<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg::nn
