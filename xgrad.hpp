// The whole public API of xgrad: #include <xgrad/xgrad.hpp>
#pragma once

#include <xgrad/tensor/blas.hpp>
#include <xgrad/tensor/format.hpp>
#include <xgrad/tensor/npy.hpp>
#include <xgrad/tensor/options.hpp>
#include <xgrad/tensor/random.hpp>
#include <xgrad/tensor/search.hpp>
#include <xgrad/tensor/tensor.hpp>

#include <xgrad/autograd/autograd.hpp>
#include <xgrad/nn/nn.hpp>
#include <xgrad/optim/optim.hpp>
#include <xgrad/optim/checkpoint.hpp>
