#include <cmath>
#include <mutex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/nn/cells.hpp>

namespace xg::nn {

// ---- Cell -----------------------------------------------------------------------------------

template <class T>
Cell<T>::Cell(std::string name, const RNNOptions& o, std::vector<StateSpec> states, const std::string& output)
    : Module<T>(std::move(name)), options(o), states_(std::move(states)) {
  if (o.input_size() == 0 || o.hidden_size() == 0)
    throw ValueError(fmt::format("{}: input_size ({}) and hidden_size ({}) must be positive", this->name(),
                                 o.input_size(), o.hidden_size()));
  if (o.forget_bias() && !std::isfinite(*o.forget_bias()))
    throw ValueError(fmt::format("{}: forget_bias = {} must be finite", this->name(), *o.forget_bias()));
  if (states_.empty()) throw ValueError(fmt::format("{}: a cell needs at least one state", this->name()));
  bool found = false;
  for (std::size_t i = 0; i < states_.size(); ++i) {
    if (states_[i].size == 0) states_[i].size = o.hidden_size();
    if (states_[i].name == output) {
      output_ = i;
      found = true;
    }
  }
  if (!found) throw ValueError(fmt::format("{}: the output state '{}' is not one of its states", this->name(), output));
}

template <class T>
Var<T> Cell<T>::uniform_parameter(const std::string& name, const Shape& shape, Generator& gen) {
  const T k = T(1) / std::sqrt(static_cast<T>(options.hidden_size()));
  return this->register_parameter(name, uniform<T>(shape, -k, k, gen));
}

template <class T>
void Cell<T>::reject_forget_bias() const {
  if (options.forget_bias())
    throw ValueError(fmt::format("{}: forget_bias is an option of cells with a forget gate (LSTM and its "
                                 "variants)",
                                 this->name()));
}

template <class T>
void Cell<T>::reject_nonlinearity() const {
  if (options.nonlinearity() != Nonlinearity::Tanh)
    throw ValueError(fmt::format("{}: nonlinearity is an option of RNN only", this->name()));
}

template <class T>
void Cell<T>::init_forget_bias(Var<T>& bias, std::size_t k) {
  if (!options.forget_bias()) return;
  if (!bias.defined())
    throw ValueError(fmt::format("{}: forget_bias needs the gate bias (bias(true))", this->name()));
  const std::size_t H = options.hidden_size();
  for (std::size_t j = k * H; j < (k + 1) * H; ++j) bias.mutable_value()(j) = static_cast<T>(*options.forget_bias());
}

template <class T>
Var<T> Cell<T>::state_or_zeros(const Var<T>& s, std::size_t i, std::size_t batch) const {
  const Shape expect{batch, states_.at(i).size};
  if (!s.defined()) return Var<T>(zeros<T>(expect));
  if (s.shape() != expect)
    throw ShapeError(fmt::format("{}: state '{}' must be {} [batch, {}], got {}", this->name(), states_[i].name,
                                 shape_str(expect), states_[i].size, shape_str(s.shape())));
  return s;
}

template <class T>
void Cell<T>::check_step(const State<T>& next, std::size_t batch) const {
  if (next.size() != states_.size()) {
    std::vector<std::string> names;
    for (const auto& s : states_) names.push_back(s.name);
    throw ValueError(fmt::format("{}: step() returned {} state{}, the cell declares {} ({})", this->name(),
                                 next.size(), next.size() == 1 ? "" : "s", states_.size(), fmt::join(names, ", ")));
  }
  for (std::size_t i = 0; i < next.size(); ++i) {
    const Shape expect{batch, states_[i].size};
    if (!next[i].defined())
      throw ValueError(fmt::format("{}: step() returned an undefined state '{}'", this->name(), states_[i].name));
    if (next[i].shape() != expect)
      throw ShapeError(fmt::format("{}: step() returned state '{}' of shape {}, expected {} [batch, {}]", this->name(),
                                   states_[i].name, shape_str(next[i].shape()), shape_str(expect), states_[i].size));
  }
}

template <class T>
State<T> Cell<T>::operator()(const Var<T>& x, const State<T>& state) const {
  if (x.dim() != 2 || x.shape(1) != input_size())
    throw ShapeError(fmt::format("{}: input must be [batch, {}], got {}", this->name(), input_size(),
                                 shape_str(x.shape())));
  if (state.size() > states_.size())
    throw ValueError(fmt::format("{}: {} states given, the cell has {}", this->name(), state.size(), states_.size()));
  const std::size_t B = x.shape(0);
  State<T> s(states_.size());
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = state_or_zeros(i < state.size() ? state[i] : Var<T>(), i, B);
  Var<T> xp = project(x);
  if (xp.dim() != 2 || xp.shape(0) != B)
    throw ShapeError(fmt::format("{}: project() must keep the batch of {} rows, got {}", this->name(), B,
                                 shape_str(xp.shape())));
  State<T> next = step(xp, s);
  check_step(next, B);
  return next;
}

template class Cell<float>;
template class Cell<double>;

// ---- The registry ---------------------------------------------------------------------------

namespace {
struct Entry {
  CellInfo info;
  CellFactory<float> f;
  CellFactory<double> d;
};

// Returns a copy of options with one field changed: the registry's fixed variants (rnn_relu).
template <class C>
auto with_relu() {
  return [](const RNNOptions& o, Generator& g) {
    RNNOptions r = o;
    r.nonlinearity(Nonlinearity::ReLU);
    return std::make_shared<C>(r, g);
  };
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::vector<Entry>& registry() {
  static std::vector<Entry> r = [] {
    std::vector<Entry> e;
    auto add = [&]<template <class> class C>(const char* name, const char* about) {
      e.push_back({{name, about}, cell_factory<C<float>>(), cell_factory<C<double>>()});
    };
    add.operator()<LSTMCell>("lstm", "LSTM, PyTorch's (Hochreiter and Schmidhuber 1997, forget gate of Gers et al. 2000)");
    add.operator()<GRUCell>("gru", "GRU, PyTorch's (Cho et al. 2014)");
    add.operator()<RNNCell>("rnn_tanh", "Elman RNN with tanh");
    e.push_back({{"rnn_relu", "Elman RNN with ReLU"}, with_relu<RNNCell<float>>(), with_relu<RNNCell<double>>()});
    add.operator()<PeepholeLSTMCell>("peephole_lstm", "LSTM with peephole connections (Gers and Schmidhuber 2000)");
    add.operator()<CIFGLSTMCell>("cifg_lstm", "coupled input-forget gate LSTM (Greff et al. 2017)");
    add.operator()<LayerNormLSTMCell>("ln_lstm", "layer-normalised LSTM (Ba, Kiros and Hinton 2016)");
    add.operator()<MGUCell>("mgu", "minimal gated unit (Zhou et al. 2016)");
    add.operator()<IndRNNCell>("indrnn", "independently recurrent network, ReLU (Li et al. 2018)");
    add.operator()<MultiplicativeLSTMCell>("mlstm", "multiplicative LSTM (Krause et al. 2016)");
    return e;
  }();
  return r;
}
}  // namespace

std::vector<CellInfo> cell_catalog() {
  std::lock_guard lock(registry_mutex());
  std::vector<CellInfo> out;
  for (const auto& e : registry()) out.push_back(e.info);
  return out;
}

std::vector<std::string> cell_names() {
  std::vector<std::string> out;
  for (const auto& c : cell_catalog()) out.push_back(c.name);
  return out;
}

template <class T>
CellFactory<T> cell_factory(const std::string& name) {
  std::lock_guard lock(registry_mutex());
  for (const auto& e : registry())
    if (e.info.name == name) {
      if constexpr (std::is_same_v<T, float>) return e.f;
      else return e.d;
    }
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.info.name);
  throw ValueError(fmt::format("unknown cell '{}'; known cells: {}", name, fmt::join(names, ", ")));
}
template CellFactory<float> cell_factory<float>(const std::string&);
template CellFactory<double> cell_factory<double>(const std::string&);

void register_cell_factories(const std::string& name, const std::string& about, CellFactory<float> f,
                             CellFactory<double> d) {
  if (name.empty()) throw ValueError("register_cell: the name is empty");
  if (!f || !d) throw ValueError(fmt::format("register_cell: '{}' needs both factories", name));
  std::lock_guard lock(registry_mutex());
  for (auto& e : registry())
    if (e.info.name == name) {
      e = {{name, about}, std::move(f), std::move(d)};
      return;
    }
  registry().push_back({{name, about}, std::move(f), std::move(d)});
}

}  // namespace xg::nn
