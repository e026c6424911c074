#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

#include <xgrad/nn/rnn.hpp>

namespace xg::nn {

namespace {
std::size_t gate_count(CellKind k) { return k == CellKind::LSTM ? 4 : (k == CellKind::GRU ? 3 : 1); }

void check_options(const char* name, CellKind kind, const RNNOptions& o) {
  if (o.input_size() == 0 || o.hidden_size() == 0 || o.num_layers() == 0)
    throw ValueError(fmt::format("{}: input_size ({}), hidden_size ({}) and num_layers ({}) must be "
                                 "positive",
                                 name, o.input_size(), o.hidden_size(), o.num_layers()));
  if (!(o.dropout() >= 0.0 && o.dropout() < 1.0))
    throw ValueError(fmt::format("{}: dropout = {} must be in [0, 1)", name, o.dropout()));
  if (kind != CellKind::RNN && o.nonlinearity() != Nonlinearity::Tanh)
    throw ValueError(fmt::format("{}: nonlinearity is an option of RNN only", name));
  if (kind != CellKind::LSTM && o.forget_bias())
    throw ValueError(fmt::format("{}: forget_bias is an option of LSTM only", name));
}

// U(-1/sqrt(H), 1/sqrt(H)) for every tensor, in PyTorch's order: w_ih, w_hh, b_ih, b_hh.
template <class T>
std::array<Array<T>, 4> init_weights(std::size_t gates, std::size_t in, const RNNOptions& o,
                                     Generator& gen) {
  const std::size_t H = o.hidden_size();
  const T k = T(1) / std::sqrt(static_cast<T>(H));
  std::array<Array<T>, 4> w;
  w[0] = uniform<T>(Shape{gates * H, in}, -k, k, gen);
  w[1] = uniform<T>(Shape{gates * H, H}, -k, k, gen);
  if (o.bias()) {
    w[2] = uniform<T>(Shape{gates * H}, -k, k, gen);
    w[3] = uniform<T>(Shape{gates * H}, -k, k, gen);
    if (o.forget_bias()) {  // gate order i, f, g, o: the forget chunk is [H, 2H)
      for (std::size_t j = H; j < 2 * H; ++j) {
        w[2](j) = static_cast<T>(*o.forget_bias());
        w[3](j) = T(0);
      }
    }
  }
  return w;
}
}  // namespace

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
  Var<T> gates = addmm(xp, h, w_hh, NoTrans, DoTrans);  // xp + h W_hh^T: [B, 4H], one matmul
  std::vector<Var<T>> g = chunk(gates, 4, -1);
  Var<T> input_gate = sigmoid(g[0]);
  Var<T> forget_gate = sigmoid(g[1]);
  Var<T> candidate = tanh(g[2]);
  Var<T> output_gate = sigmoid(g[3]);
  Var<T> c_next = forget_gate * c + input_gate * candidate;  // long-term memory
  Var<T> h_next = output_gate * tanh(c_next);                // short-term memory
  return {h_next, c_next};
}

template <class T>
Var<T> gru_step(const Var<T>& xp, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh) {
  std::vector<Var<T>> x = chunk(xp, 3, -1);
  std::vector<Var<T>> hh = chunk(linear(h, w_hh, b_hh), 3, -1);
  Var<T> reset_gate = sigmoid(x[0] + hh[0]);
  Var<T> update_gate = sigmoid(x[1] + hh[1]);
  Var<T> candidate = tanh(x[2] + reset_gate * hh[2]);
  return candidate + update_gate * (h - candidate);  // (1 - z) n + z h
}

// ---- Cells ------------------------------------------------------------------------------------

template <class T>
CellBase<T>::CellBase(const char* name, CellKind kind, const RNNOptions& o, Generator& gen)
    : Module<T>(name), options(o) {
  check_options(name, kind, o);
  auto w = init_weights<T>(gate_count(kind), o.input_size(), o, gen);
  weight_ih = this->register_parameter("weight_ih", std::move(w[0]));
  weight_hh = this->register_parameter("weight_hh", std::move(w[1]));
  if (o.bias()) {
    bias_ih = this->register_parameter("bias_ih", std::move(w[2]));
    bias_hh = this->register_parameter("bias_hh", std::move(w[3]));
  }
}

template <class T>
Var<T> CellBase<T>::project(const Var<T>& x, bool fold_hidden_bias) const {
  if (x.dim() != 2 || x.shape(1) != options.input_size())
    throw ShapeError(fmt::format("{}: input must be [batch, {}], got {}", this->name(),
                                 options.input_size(), shape_str(x.shape())));
  if (!options.bias()) return linear(x, weight_ih);
  return linear(x, weight_ih, fold_hidden_bias ? bias_ih + bias_hh : bias_ih);
}

template <class T>
Var<T> CellBase<T>::state_or_zeros(const Var<T>& s, std::size_t batch, const char* what) const {
  const Shape expect{batch, options.hidden_size()};
  if (!s.defined()) return Var<T>(zeros<T>(expect));
  if (s.shape() != expect)
    throw ShapeError(fmt::format("{}: {} must be {}, got {}", this->name(), what, shape_str(expect),
                                 shape_str(s.shape())));
  return s;
}

template <class T>
Var<T> RNNCell<T>::forward(const Var<T>& x, const Var<T>& h) {
  Var<T> xp = this->project(x, true);
  return rnn_step(xp, this->state_or_zeros(h, x.shape(0), "h"), this->weight_hh,
                  this->options.nonlinearity());
}

template <class T>
std::pair<Var<T>, Var<T>> LSTMCell<T>::forward(const Var<T>& x, const Var<T>& h, const Var<T>& c) {
  Var<T> xp = this->project(x, true);
  return lstm_step(xp, this->state_or_zeros(h, x.shape(0), "h"),
                   this->state_or_zeros(c, x.shape(0), "c"), this->weight_hh);
}

template <class T>
Var<T> GRUCell<T>::forward(const Var<T>& x, const Var<T>& h) {
  Var<T> xp = this->project(x, false);
  return gru_step(xp, this->state_or_zeros(h, x.shape(0), "h"), this->weight_hh, this->bias_hh);
}

// ---- Sequence modules -------------------------------------------------------------------------

template <class T>
RecurrentBase<T>::RecurrentBase(const char* name, CellKind kind, const RNNOptions& o, Generator& gen)
    : Module<T>(name), options(o), kind_(kind), dropout_gen_(gen.next_u64()) {
  check_options(name, kind, o);
  const std::size_t D = num_directions(), H = o.hidden_size();
  for (std::size_t l = 0; l < o.num_layers(); ++l)
    for (std::size_t d = 0; d < D; ++d) {
      const std::string sfx = fmt::format("_l{}{}", l, d == 1 ? "_reverse" : "");
      auto w = init_weights<T>(gate_count(kind), l == 0 ? o.input_size() : D * H, o, gen);
      Weights p;
      p.w_ih = this->register_parameter("weight_ih" + sfx, std::move(w[0]));
      p.w_hh = this->register_parameter("weight_hh" + sfx, std::move(w[1]));
      if (o.bias()) {
        p.b_ih = this->register_parameter("bias_ih" + sfx, std::move(w[2]));
        p.b_hh = this->register_parameter("bias_hh" + sfx, std::move(w[3]));
      }
      weights_.push_back(p);
    }
}

template <class T>
RNNOutput<T> RecurrentBase<T>::run(const Var<T>& input, const Var<T>& h0, const Var<T>& c0,
                                   const std::vector<std::size_t>& lengths) {
  const char* name = this->name().c_str();
  const RNNOptions& o = options;
  if (input.dim() != 3 || input.shape(2) != o.input_size())
    throw ShapeError(fmt::format("{}: input must be {} with {} features, got {}", name,
                                 o.batch_first() ? "[batch, time, features]" : "[time, batch, features]",
                                 o.input_size(), shape_str(input.shape())));
  Var<T> x = o.batch_first() ? permute(input, {1, 0, 2}) : input;  // [T, B, I]
  const std::size_t T_ = x.shape(0), B = x.shape(1), H = o.hidden_size(), D = num_directions();
  const std::size_t L = o.num_layers();
  const Shape state_shape{L * D, B, H};
  auto check_state = [&](const Var<T>& s, const char* what) {
    if (s.defined() && s.shape() != state_shape)
      throw ShapeError(fmt::format("{}: {} must be {} (layers * directions, batch, hidden), got {}",
                                   name, what, shape_str(state_shape), shape_str(s.shape())));
  };
  check_state(h0, "h0");
  check_state(c0, "c0");
  if (kind_ != CellKind::LSTM && c0.defined())
    throw ValueError(fmt::format("{}: only an LSTM has a cell state c0", name));

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
  std::vector<xt::xarray<bool>> keep(ragged ? T_ : 0);  // keep[t](b, 0): step t is real for b
  std::vector<Var<T>> keep_f(ragged ? T_ : 0);
  std::vector<bool> all_real(T_, true);
  for (std::size_t t = 0; ragged && t < T_; ++t) {
    keep[t] = xt::xarray<bool>::from_shape({B, 1});
    Array<T> m = empty<T>(Shape{B, 1});
    for (std::size_t b = 0; b < B; ++b) {
      keep[t](b, 0) = t < lengths[b];
      m(b, 0) = t < lengths[b] ? T(1) : T(0);
      all_real[t] = all_real[t] && t < lengths[b];
    }
    keep_f[t] = Var<T>(std::move(m));
  }

  std::vector<Var<T>> h_n, c_n;
  Var<T> layer_in = x;
  for (std::size_t l = 0; l < L; ++l) {
    std::vector<Var<T>> dir_out;
    for (std::size_t d = 0; d < D; ++d) {
      const Weights& w = weights(l, d);
      const std::size_t idx = l * D + d;
      // One matmul projects every time step: [T, B, in] -> [T, B, G*H]. The hidden bias folds in
      // for RNN and LSTM; GRU needs it inside the reset product.
      Var<T> bias;
      if (o.bias()) bias = kind_ == CellKind::GRU ? w.b_ih : w.b_ih + w.b_hh;
      Var<T> xp = linear(layer_in, w.w_ih, bias);
      Var<T> h = h0.defined() ? select(h0, 0, idx) : Var<T>(zeros<T>(Shape{B, H}));
      Var<T> c;
      if (kind_ == CellKind::LSTM) c = c0.defined() ? select(c0, 0, idx) : Var<T>(zeros<T>(Shape{B, H}));
      std::vector<Var<T>> outs(T_);
      for (std::size_t s = 0; s < T_; ++s) {
        const std::size_t t = d == 0 ? s : T_ - 1 - s;
        Var<T> x_t = select(xp, 0, t);
        Var<T> h_next, c_next;
        switch (kind_) {
          case CellKind::RNN: h_next = rnn_step(x_t, h, w.w_hh, o.nonlinearity()); break;
          case CellKind::LSTM: std::tie(h_next, c_next) = lstm_step(x_t, h, c, w.w_hh); break;
          case CellKind::GRU: h_next = gru_step(x_t, h, w.w_hh, w.b_hh); break;
        }
        if (ragged && !all_real[t]) {  // ended sequences keep their state and output zeros
          outs[t] = h_next * keep_f[t];
          h = xg::where(keep[t], h_next, h);
          if (c.defined()) c = xg::where(keep[t], c_next, c);
        } else {
          outs[t] = h_next;
          h = h_next;
          c = c_next;
        }
      }
      dir_out.push_back(stack(outs, 0));
      h_n.push_back(h);
      if (c.defined()) c_n.push_back(c);
    }
    layer_in = D == 1 ? dir_out[0] : concat(dir_out, 2);
    if (l + 1 < L && o.dropout() > 0 && this->is_training())
      layer_in = dropout(layer_in, o.dropout(), true, dropout_gen_);
  }
  RNNOutput<T> out;
  out.output = o.batch_first() ? permute(layer_in, {1, 0, 2}) : layer_in;
  out.h_n = stack(h_n, 0);
  if (!c_n.empty()) out.c_n = stack(c_n, 0);
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
  template class RecurrentBase<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg::nn
