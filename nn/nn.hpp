// The nn layer: modules built from autograd ops.
#pragma once

#include <xgrad/nn/layers.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/cells.hpp>
#include <xgrad/nn/rnn.hpp>
