// Every built-in and gallery cell. The gallery (nn/cells/) has one short file per published cell,
// with the paper at the top; each runs through nn::Recurrent like the built-in ones.
#pragma once

#include <xgrad/nn/cell.hpp>
#include <xgrad/nn/cells/cifg_lstm.hpp>
#include <xgrad/nn/cells/indrnn.hpp>
#include <xgrad/nn/cells/layer_norm_lstm.hpp>
#include <xgrad/nn/cells/mgu.hpp>
#include <xgrad/nn/cells/mlstm.hpp>
#include <xgrad/nn/cells/peephole_lstm.hpp>
#include <xgrad/nn/rnn.hpp>
