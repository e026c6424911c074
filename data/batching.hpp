// From examples to minibatches: seeded shuffling, train/validation/test splits, batches (in
// order, shuffled, or bucketed by length), padding variable-length sequences into one tensor
// with a lengths vector, and the parallel streams of truncated backpropagation through time.
//
//     Generator gen(seed);
//     data::Split s = data::random_split(n, /*valid*/ 0.1, /*test*/ 0.0, gen);
//     for (const auto& idx : data::make_batches(s.train, 32, &gen, &lengths)) {  // one epoch
//       data::Padded<std::int64_t> b = data::pad_ids(token_ids, idx);  // [T, B] + lengths
//       auto out = lstm.forward(embedding(b.values), b.lengths);
//     }
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>
#include <xgrad/data/text.hpp>
#include <xgrad/tensor/random.hpp>
#include <xgrad/tensor/tensor.hpp>

namespace xg::data {

// ---- Shuffling and splits ------------------------------------------------------------------

/// Fisher-Yates with `gen`: the order depends only on the generator's state.
template <class V>
void shuffle(V& v, Generator& gen) {
  for (std::size_t i = v.size(); i > 1; --i) {
    using std::swap;
    swap(v[i - 1], v[gen.below(i)]);
  }
}

/// Example indices for training, validation and test.
struct Split {
  std::vector<std::size_t> train, valid, test;
};

/// Shuffles 0..n-1 with `gen`, then the first floor(n * test) go to test, the next
/// floor(n * valid) to validation and the rest to training. Throws ValueError when a fraction is
/// outside [0, 1) or both together leave nothing to train on.
Split random_split(std::size_t n, double valid, double test, Generator& gen);

/// random_split inside each class (labels 0..C-1), so every split keeps the class proportions:
/// class c's examples are shuffled, floor(n_c * test) go to test, floor(n_c * valid) to
/// validation, the rest to training; splits list class 0's examples first.
Split stratified_split(const std::vector<std::int64_t>& labels, double valid, double test,
                       Generator& gen);

// ---- Batches -------------------------------------------------------------------------------

/// One epoch's minibatches of `indices` (the last one may be smaller):
/// - in the given order, with neither `shuffle` nor `lengths`;
/// - shuffled with `shuffle` (seeded: the same generator state gives the same batches);
/// - with `lengths` (lengths[i] is example i's length) and no generator, sorted by length, so
///   evaluation pads little;
/// - with both, bucketed: shuffled, sorted by length inside windows of `window` batches, cut
///   into batches, and the batches shuffled. Each batch then holds similar lengths (little
///   padding) while the epoch's order stays random.
///
///     for (const auto& idx : make_batches(split.train, 64, &gen, &lengths)) ...
std::vector<std::vector<std::size_t>> make_batches(
    std::vector<std::size_t> indices, std::size_t batch_size, Generator* shuffle = nullptr,
    const std::vector<std::size_t>* lengths = nullptr, std::size_t window = 50);

// ---- Padding -------------------------------------------------------------------------------

/// Sequences padded into one tensor: values [T, B, ...] (batch_first: [B, T, ...]) with T the
/// longest length, and each sequence's length, as the recurrent modules' `lengths` argument takes
/// them.
template <class T>
struct Padded {
  Array<T> values;
  std::vector<std::size_t> lengths;
};

/// Pads sequences of shape [L_b, ...] (the same trailing shape, L_b >= 1) with `pad`.
/// {[1, 2, 3], [4]} gives [[1, 4], [2, 0], [3, 0]] and lengths {3, 1}. Throws ValueError naming
/// the sequence when one is empty, is 0-d, or has another trailing shape than the first.
template <class T>
Padded<T> pad_sequences(const std::vector<Array<T>>& seqs, T pad = T(0), bool batch_first = false);

/// Token-id sequences seqs[idx[0]], seqs[idx[1]], ... padded with `pad` (Vocab::kPad) into ids
/// [T, B] (batch_first: [B, T]).
Padded<std::int64_t> pad_ids(const std::vector<std::vector<std::int64_t>>& seqs,
                             const std::vector<std::size_t>& idx, std::int64_t pad = Vocab::kPad,
                             bool batch_first = false);

// ---- Streams for truncated backpropagation through time ------------------------------------

/// A token sequence cut into `streams` equal strands read side by side, as a language model
/// trained with truncated BPTT reads its text: batch k holds the next `chunk` tokens of every
/// strand, and the targets are the tokens one step later. The recurrent state of strand j carries
/// over from batch k to batch k + 1. Tokens past streams * strand length are not used.
///
///     data::Streams s(ids, /*streams*/ 32, /*chunk*/ 64);
///     for (std::size_t k = 0; k < s.batches(); ++k) { auto [x, y] = s.batch(k); ... }  // [64, 32]
class Streams {
 public:
  /// Throws ValueError when streams or chunk is 0, or each strand would be under 2 tokens.
  Streams(std::vector<std::int64_t> ids, std::size_t streams, std::size_t chunk);
  /// Batches in one pass over the strands (the last may be shorter than `chunk`).
  std::size_t batches() const { return (strand_ - 1 + chunk_ - 1) / chunk_; }
  std::size_t streams() const { return streams_; }
  /// Tokens predicted in one pass.
  std::size_t tokens() const { return (strand_ - 1) * streams_; }
  /// Inputs and targets [T, streams] of batch k (k < batches(), else ValueError).
  std::pair<IndexArray, IndexArray> batch(std::size_t k) const;

 private:
  std::vector<std::int64_t> ids_;
  std::size_t streams_, chunk_, strand_ = 0;
};

}  // namespace xg::data
