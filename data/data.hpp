// xg::data: text, vocabularies, splits, batches and padding for sequence models.
#pragma once

#include <xgrad/data/batching.hpp>
#include <xgrad/data/text.hpp>
