// The autograd layer: the tape, every op, gradcheck.
#pragma once

#include <xgrad/autograd/format.hpp>
#include <xgrad/autograd/fuse.hpp>
#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/ops_elementwise.hpp>
#include <xgrad/autograd/ops_linalg.hpp>
#include <xgrad/autograd/ops_loss.hpp>
#include <xgrad/autograd/ops_norm.hpp>
#include <xgrad/autograd/ops_reduce.hpp>
#include <xgrad/autograd/ops_search.hpp>
#include <xgrad/autograd/ops_shape.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/autograd/var.hpp>
