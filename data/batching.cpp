#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <xgrad/data/batching.hpp>

namespace xg::data {

namespace {
void check_fractions(const char* op, double valid, double test) {
  if (!(valid >= 0 && valid < 1) || !(test >= 0 && test < 1) || !(valid + test < 1))
    throw ValueError(fmt::format(
        "{}: the validation and test fractions must be in [0, 1) and leave some for training, "
        "got valid {} and test {}",
        op, valid, test));
}
}  // namespace

Split stratified_split(const std::vector<std::int64_t>& labels, double valid, double test,
                       Generator& gen) {
  check_fractions("stratified_split", valid, test);
  std::vector<std::vector<std::size_t>> by_class;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0)
      throw ValueError(
          fmt::format("stratified_split: label {} of example {} is negative", labels[i], i));
    const auto c = static_cast<std::size_t>(labels[i]);
    if (c >= by_class.size()) by_class.resize(c + 1);
    by_class[c].push_back(i);
  }
  Split s;
  for (auto& v : by_class) {
    shuffle(v, gen);
    const auto n = static_cast<double>(v.size());
    const auto n_test = static_cast<std::size_t>(std::floor(n * test));
    const auto n_valid = static_cast<std::size_t>(std::floor(n * valid));
    for (std::size_t k = 0; k < v.size(); ++k)
      (k < n_test ? s.test : k < n_test + n_valid ? s.valid : s.train).push_back(v[k]);
  }
  return s;
}

Split random_split(std::size_t n, double valid, double test, Generator& gen) {
  check_fractions("random_split", valid, test);
  return stratified_split(std::vector<std::int64_t>(n, 0), valid, test, gen);
}

std::vector<std::vector<std::size_t>> make_batches(std::vector<std::size_t> indices,
                                                   std::size_t batch_size, Generator* gen,
                                                   const std::vector<std::size_t>* lengths,
                                                   std::size_t window) {
  if (batch_size == 0) throw ValueError("make_batches: batch_size must be at least 1");
  if (lengths) {
    for (std::size_t i : indices)
      if (i >= lengths->size())
        throw ValueError(fmt::format("make_batches: index {} has no length (lengths has {})", i,
                                     lengths->size()));
    if (gen && window == 0) throw ValueError("make_batches: window must be at least 1 batch");
  }
  if (gen) shuffle(indices, *gen);
  if (lengths) {
    auto by_length = [&](std::size_t a, std::size_t b) { return (*lengths)[a] < (*lengths)[b]; };
    const std::size_t span = gen ? window * batch_size : indices.size();
    for (std::size_t lo = 0; lo < indices.size(); lo += span) {
      auto first = indices.begin() + static_cast<std::ptrdiff_t>(lo);
      auto last =
          indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), lo + span));
      std::stable_sort(first, last, by_length);
    }
  }
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t lo = 0; lo < indices.size(); lo += batch_size)
    out.emplace_back(
        indices.begin() + static_cast<std::ptrdiff_t>(lo),
        indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), lo + batch_size)));
  if (gen && lengths) shuffle(out, *gen);
  return out;
}

template <class T>
Padded<T> pad_sequences(const std::vector<Array<T>>& seqs, T pad, bool batch_first) {
  if (seqs.empty()) throw ValueError("pad_sequences: no sequences to pad");
  const std::size_t B = seqs.size();
  Shape tail;
  std::size_t L = 0;
  for (std::size_t b = 0; b < B; ++b) {
    const Shape& s = seqs[b].shape();
    if (s.empty())
      throw ValueError(
          fmt::format("pad_sequences: sequence {} is 0-d; sequences are [length, ...]", b));
    const Shape t(s.begin() + 1, s.end());
    if (b == 0) tail = t;
    if (t != tail)
      throw ValueError(fmt::format(
          "pad_sequences: sequence {} has shape {} but sequence 0 has {}: the dims after the "
          "length must agree",
          b, shape_str(s), shape_str(seqs[0].shape())));
    if (s[0] == 0) throw ValueError(fmt::format("pad_sequences: sequence {} is empty", b));
    L = std::max(L, s[0]);
  }
  std::size_t feat = 1;
  for (std::size_t d : tail) feat *= d;
  Shape shape = batch_first ? Shape{B, L} : Shape{L, B};
  shape.insert(shape.end(), tail.begin(), tail.end());
  Padded<T> p;
  p.values = full<T>(shape, pad);
  for (std::size_t b = 0; b < B; ++b) {
    const std::size_t len = seqs[b].shape()[0];
    const Array<T> src = seqs[b];  // contiguous row-major
    for (std::size_t t = 0; t < len; ++t) {
      T* dst = p.values.data() + (batch_first ? (b * L + t) : (t * B + b)) * feat;
      std::copy(src.data() + t * feat, src.data() + (t + 1) * feat, dst);
    }
    p.lengths.push_back(len);
  }
  return p;
}

template Padded<float> pad_sequences(const std::vector<Array<float>>&, float, bool);
template Padded<double> pad_sequences(const std::vector<Array<double>>&, double, bool);
template Padded<std::int64_t> pad_sequences(const std::vector<Array<std::int64_t>>&, std::int64_t,
                                            bool);

Padded<std::int64_t> pad_ids(const std::vector<std::vector<std::int64_t>>& seqs,
                             const std::vector<std::size_t>& idx, std::int64_t pad,
                             bool batch_first) {
  if (idx.empty()) throw ValueError("pad_ids: no sequences to pad");
  const std::size_t B = idx.size();
  std::size_t L = 0;
  for (std::size_t j = 0; j < B; ++j) {
    if (idx[j] >= seqs.size())
      throw ValueError(
          fmt::format("pad_ids: index {} is past the {} sequences", idx[j], seqs.size()));
    if (seqs[idx[j]].empty())
      throw ValueError(fmt::format("pad_ids: sequence {} is empty", idx[j]));
    L = std::max(L, seqs[idx[j]].size());
  }
  Padded<std::int64_t> p;
  p.values = full<std::int64_t>(batch_first ? Shape{B, L} : Shape{L, B}, pad);
  for (std::size_t j = 0; j < B; ++j) {
    const auto& s = seqs[idx[j]];
    for (std::size_t t = 0; t < s.size(); ++t)
      p.values.data()[batch_first ? j * L + t : t * B + j] = s[t];
    p.lengths.push_back(s.size());
  }
  return p;
}

Streams::Streams(std::vector<std::int64_t> ids, std::size_t streams, std::size_t chunk)
    : ids_(std::move(ids)), streams_(streams), chunk_(chunk) {
  if (streams == 0 || chunk == 0)
    throw ValueError(
        fmt::format("Streams: streams ({}) and chunk ({}) must be positive", streams, chunk));
  strand_ = ids_.size() / streams;
  if (strand_ < 2)
    throw ValueError(fmt::format("Streams: {} tokens are too few for {} streams (each needs 2)",
                                 ids_.size(), streams));
}

std::pair<IndexArray, IndexArray> Streams::batch(std::size_t k) const {
  if (k >= batches()) throw ValueError(fmt::format("Streams::batch: batch {} of {}", k, batches()));
  const std::size_t start = k * chunk_;
  const std::size_t T = std::min(chunk_, strand_ - 1 - start);
  IndexArray x = IndexArray::from_shape({T, streams_}), y = IndexArray::from_shape({T, streams_});
  for (std::size_t j = 0; j < streams_; ++j) {
    const std::int64_t* strand = ids_.data() + j * strand_ + start;
    for (std::size_t t = 0; t < T; ++t) {
      x(t, j) = strand[t];
      y(t, j) = strand[t + 1];
    }
  }
  return {std::move(x), std::move(y)};
}

}  // namespace xg::data
