// Options structs: each option has a chained setter and a getter, as in PyTorch's C++ frontend:
//   LSTMOptions(16, 32).num_layers(2).bidirectional(true)        opts.num_layers() == 2
#pragma once

#include <utility>

/// Declares option NAME of type TYPE (default DEFAULT) inside an options struct. Leaves the
/// struct's access at private; declare the struct's other public members before the options.
#define XG_OPTION(TYPE, NAME, DEFAULT)             \
 public:                                           \
  auto& NAME(TYPE v) {                             \
    NAME##_ = std::move(v);                        \
    return *this;                                  \
  }                                                \
  const TYPE& NAME() const { return NAME##_; }     \
                                                   \
 private:                                          \
  TYPE NAME##_ = DEFAULT
