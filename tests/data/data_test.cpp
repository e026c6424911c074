// xg::data: text and vocabularies, splits, batches and padding, checked by their exact contents
// on small cases.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;
using Batches = std::vector<std::vector<std::size_t>>;
using Ids = std::vector<std::int64_t>;

BOOST_AUTO_TEST_SUITE(data)

// ---- Text ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(lines_words_and_characters) {
  BOOST_TEST(xg::data::split_lines("a\r\nbc\n\nd") ==
             (std::vector<std::string>{"a", "bc", "", "d"}));
  BOOST_TEST(xg::data::split_lines("a\n") == (std::vector<std::string>{"a"}));
  BOOST_TEST(xg::data::split_words(" Haus  maison\thouse\n") ==
             (std::vector<std::string>{"Haus", "maison", "house"}));
  BOOST_TEST(xg::data::utf8_chars("été") == (std::vector<std::string>{"é", "t", "é"}));
  std::size_t bad = 0;
  // a stray continuation byte, then a truncated 2-byte sequence at the end
  BOOST_TEST(xg::data::utf8_chars("a\x80z\xC3", &bad) ==
             (std::vector<std::string>{"a", "\uFFFD", "z", "\uFFFD"}));
  BOOST_TEST(bad == 2u);
  BOOST_TEST(xg::data::utf8_encode(xg::data::utf8_decode("日本 €")) == "日本 €");
}

BOOST_AUTO_TEST_CASE(read_file_names_the_file) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string path = (dir / "xgrad_data_test.txt").string();
  std::ofstream(path, std::ios::binary) << "x\ny";
  BOOST_TEST(xg::data::read_file(path) == "x\ny");
  std::filesystem::remove(path);
  BOOST_CHECK_EXCEPTION(xg::data::read_file(path), IoError, mentions({path, "cannot read"}));
  BOOST_CHECK_EXCEPTION(xg::data::read_file(dir.string()), IoError, mentions("is a directory"));
}

BOOST_AUTO_TEST_CASE(vocabulary_of_characters_most_frequent_first) {
  // b x3, a x2 (seen first), c x2, d x1
  const auto chars = xg::data::utf8_chars("abcabcbd");
  const xg::data::Vocab v = xg::data::build_vocab({chars});
  BOOST_TEST(v.size() == 6u);
  BOOST_TEST(v.token(0) == "<pad>");
  BOOST_TEST(v.token(1) == "<unk>");
  BOOST_TEST(v.token(2) == "b");
  BOOST_TEST(v.token(3) == "a");  // ties keep first-seen order
  BOOST_TEST(v.token(4) == "c");
  BOOST_TEST(v.token(5) == "d");
  BOOST_TEST(v.ids(xg::data::utf8_chars("dab?")) == (Ids{5, 3, 2, xg::data::Vocab::kUnk}));
  BOOST_TEST(v.decode({2, 3, 4}) == "bac");
  // min_count 2 drops d
  const xg::data::Vocab v2 = xg::data::build_vocab({chars}, 2);
  BOOST_TEST(v2.size() == 5u);
  BOOST_TEST(v2.id("d") == xg::data::Vocab::kUnk);
  BOOST_TEST(!v2.contains("d"));
  BOOST_CHECK_EXCEPTION(v.token(6), ValueError, mentions({"id 6", "vocabulary of 6"}));
}

BOOST_AUTO_TEST_CASE(vocabulary_of_words_over_documents) {
  const xg::data::Vocab v =
      xg::data::build_vocab({xg::data::split_words("the cat sat"), xg::data::split_words("the dog"),
                             xg::data::split_words("a cat")});
  BOOST_TEST(v.size() == 7u);  // the x2, cat x2, then sat, dog, a in first-seen order
  BOOST_TEST(v.decode({2, 3, 4, 5, 6}, " ") == "the cat sat dog a");
  BOOST_TEST(v.ids({"dog", "cow"}) == (Ids{5, xg::data::Vocab::kUnk}));
  xg::data::Vocab w;
  BOOST_TEST(w.add("x") == 2);
  BOOST_TEST(w.add("y") == 3);
  BOOST_TEST(w.add("x") == 2);
}

// ---- Splits --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(random_split_sizes_cover_every_index_once) {
  Generator gen(7);
  const xg::data::Split s = xg::data::random_split(20, 0.25, 0.1, gen);
  BOOST_TEST(s.test.size() == 2u);
  BOOST_TEST(s.valid.size() == 5u);
  BOOST_TEST(s.train.size() == 13u);
  std::vector<std::size_t> all;
  for (const auto* part : {&s.train, &s.valid, &s.test})
    all.insert(all.end(), part->begin(), part->end());
  std::sort(all.begin(), all.end());
  std::vector<std::size_t> expect(20);
  std::iota(expect.begin(), expect.end(), 0);
  BOOST_TEST(all == expect);
  // seeded: the same seed gives the same split, another seed another one
  Generator again(7), other(8);
  BOOST_TEST(xg::data::random_split(20, 0.25, 0.1, again).valid == s.valid);
  BOOST_TEST(xg::data::random_split(20, 0.25, 0.1, other).valid != s.valid);
  BOOST_CHECK_EXCEPTION(xg::data::random_split(20, 0.6, 0.4, gen), ValueError,
                        mentions({"random_split", "valid 0.6", "test 0.4"}));
}

BOOST_AUTO_TEST_CASE(stratified_split_keeps_class_proportions) {
  // class 0: every third example (10), class 1: the other 20
  std::vector<std::int64_t> labels(30);
  for (std::size_t i = 0; i < 30; ++i) labels[i] = i % 3 == 0 ? 0 : 1;
  const std::size_t n0 = static_cast<std::size_t>(std::count(labels.begin(), labels.end(), 0));
  BOOST_TEST(n0 == 10u);
  Generator gen(1);
  const xg::data::Split s = xg::data::stratified_split(labels, 0.1, 0.2, gen);
  auto count = [&](const std::vector<std::size_t>& v, std::int64_t c) {
    return std::count_if(v.begin(), v.end(), [&](std::size_t i) { return labels[i] == c; });
  };
  BOOST_TEST(count(s.test, 0) == 2);   // floor(10 * 0.2)
  BOOST_TEST(count(s.test, 1) == 4);   // floor(20 * 0.2)
  BOOST_TEST(count(s.valid, 0) == 1);  // floor(10 * 0.1)
  BOOST_TEST(count(s.valid, 1) == 2);
  BOOST_TEST(count(s.train, 0) == 7);
  BOOST_TEST(count(s.train, 1) == 14);
  BOOST_TEST(labels[s.train.front()] == 0);  // class 0 listed first
  BOOST_CHECK_EXCEPTION(xg::data::stratified_split({0, -1}, 0.1, 0.1, gen), ValueError,
                        mentions({"label -1", "example 1"}));
}

// ---- Batches -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(batches_in_order_and_sorted_by_length) {
  BOOST_TEST(xg::data::make_batches({4, 0, 3, 1, 2}, 2) == (Batches{{4, 0}, {3, 1}, {2}}));
  //                                     index: 0  1  2  3  4
  const std::vector<std::size_t> lengths = {5, 1, 3, 1, 4};
  // evaluation: sorted by length (stable: 1 before 3), then cut
  BOOST_TEST(xg::data::make_batches({0, 1, 2, 3, 4}, 2, nullptr, &lengths) ==
             (Batches{{1, 3}, {2, 4}, {0}}));
  BOOST_CHECK_EXCEPTION(xg::data::make_batches({0, 9}, 2, nullptr, &lengths), ValueError,
                        mentions({"index 9", "lengths has 5"}));
  BOOST_CHECK_EXCEPTION(xg::data::make_batches({0}, 0), ValueError, mentions("batch_size"));
}

BOOST_AUTO_TEST_CASE(shuffled_batches_are_seeded_permutations) {
  std::vector<std::size_t> idx(10);
  std::iota(idx.begin(), idx.end(), 0);
  Generator g1(3), g2(3);
  const Batches a = xg::data::make_batches(idx, 4, &g1), b = xg::data::make_batches(idx, 4, &g2);
  BOOST_TEST(a == b);
  BOOST_TEST(a.size() == 3u);
  BOOST_TEST(a[2].size() == 2u);
  std::vector<std::size_t> flat;
  for (const auto& batch : a) flat.insert(flat.end(), batch.begin(), batch.end());
  BOOST_TEST(flat != idx);  // shuffled (10! orders: the identity would be a 1 in 3.6e6 chance)
  std::sort(flat.begin(), flat.end());
  BOOST_TEST(flat == idx);
  // the next epoch draws another order from the same generator
  BOOST_TEST(xg::data::make_batches(idx, 4, &g1) != a);
}

BOOST_AUTO_TEST_CASE(bucketed_batches_hold_similar_lengths) {
  // 12 examples of lengths 1..4 (three each); with batch 3 and a window of all 4 batches, each
  // batch holds one length only, and the batches come in a seeded random order.
  std::vector<std::size_t> lengths, idx;
  for (std::size_t i = 0; i < 12; ++i) lengths.push_back(1 + (i * 5) % 4), idx.push_back(i);
  Generator gen(11);
  const Batches b = xg::data::make_batches(idx, 3, &gen, &lengths, /*window*/ 4);
  BOOST_TEST(b.size() == 4u);
  std::set<std::size_t> seen_lengths;
  std::vector<std::size_t> flat;
  for (const auto& batch : b) {
    BOOST_TEST(batch.size() == 3u);
    for (std::size_t i : batch) BOOST_TEST(lengths[i] == lengths[batch[0]]);
    seen_lengths.insert(lengths[batch[0]]);
    flat.insert(flat.end(), batch.begin(), batch.end());
  }
  BOOST_TEST(seen_lengths.size() == 4u);
  std::sort(flat.begin(), flat.end());
  BOOST_TEST(flat == idx);
}

// ---- Padding -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(pad_ids_time_major_and_batch_first) {
  const std::vector<Ids> seqs = {{5, 6, 7}, {8}, {9, 10}};
  const xg::data::Padded<std::int64_t> p = xg::data::pad_ids(seqs, {0, 1, 2});
  const IndexArray expect = {{5, 8, 9}, {6, 0, 10}, {7, 0, 0}};  // [T=3, B=3]
  BOOST_TEST(p.values == expect);
  BOOST_TEST(p.lengths == (std::vector<std::size_t>{3, 1, 2}));
  // a subset, in the batch's order, batch-first, padded with -1
  const xg::data::Padded<std::int64_t> q =
      xg::data::pad_ids(seqs, {2, 1}, -1, /*batch_first*/ true);
  const IndexArray expect_q = {{9, 10}, {8, -1}};  // [B=2, T=2]
  BOOST_TEST(q.values == expect_q);
  BOOST_TEST(q.lengths == (std::vector<std::size_t>{2, 1}));
  const std::vector<Ids> with_empty = {{1}, {}};
  BOOST_CHECK_EXCEPTION(xg::data::pad_ids(with_empty, {0, 1}), ValueError,
                        mentions("sequence 1 is empty"));
  BOOST_CHECK_EXCEPTION(xg::data::pad_ids(seqs, {3}), ValueError,
                        mentions({"index 3", "3 sequences"}));
}

BOOST_AUTO_TEST_CASE(pad_sequences_of_feature_vectors) {
  // two sequences of 2-feature steps: lengths 2 and 1
  Array<float> a = {{1.f, 2.f}, {3.f, 4.f}}, b = {{5.f, 6.f}};
  const xg::data::Padded<float> p = xg::data::pad_sequences<float>({a, b});
  BOOST_TEST((p.values.shape() == Shape{2, 2, 2}));  // [T, B, F]
  const Array<float> expect = {{{1.f, 2.f}, {5.f, 6.f}}, {{3.f, 4.f}, {0.f, 0.f}}};
  BOOST_TEST(p.values == expect);
  BOOST_TEST(p.lengths == (std::vector<std::size_t>{2, 1}));
  const xg::data::Padded<float> q =
      xg::data::pad_sequences<float>({a, b}, -9.f, /*batch_first*/ true);
  const Array<float> expect_q = {{{1.f, 2.f}, {3.f, 4.f}},
                                 {{5.f, 6.f}, {-9.f, -9.f}}};  // [B, T, F]
  BOOST_TEST(q.values == expect_q);
  // 1-D sequences of scalars give [T, B]
  const xg::data::Padded<double> r =
      xg::data::pad_sequences<double>({Array<double>{1, 2, 3}, Array<double>{4}});
  const Array<double> expect_r = {{1, 4}, {2, 0}, {3, 0}};
  BOOST_TEST(r.values == expect_r);
  Array<float> c = {{1.f, 2.f, 3.f}};
  BOOST_CHECK_EXCEPTION(xg::data::pad_sequences<float>({a, c}), ValueError,
                        mentions({"sequence 1", "(1, 3)", "(2, 2)"}));
  BOOST_CHECK_EXCEPTION(xg::data::pad_sequences<float>({}), ValueError, mentions("no sequences"));
}

// ---- Streams -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(streams_read_strands_side_by_side) {
  // 0..10 in 2 strands of 5 (token 10 is left over): 0 1 2 3 4 | 5 6 7 8 9; chunk 3
  Ids ids(11);
  std::iota(ids.begin(), ids.end(), 0);
  const xg::data::Streams s(ids, 2, 3);
  BOOST_TEST(s.batches() == 2u);  // 4 predictions per strand: 3 + 1
  BOOST_TEST(s.tokens() == 8u);
  const auto [x0, y0] = s.batch(0);
  BOOST_TEST(x0 == (IndexArray{{0, 5}, {1, 6}, {2, 7}}));
  BOOST_TEST(y0 == (IndexArray{{1, 6}, {2, 7}, {3, 8}}));
  const auto [x1, y1] = s.batch(1);
  BOOST_TEST(x1 == (IndexArray{{3, 8}}));
  BOOST_TEST(y1 == (IndexArray{{4, 9}}));
  BOOST_CHECK_EXCEPTION(s.batch(2), ValueError, mentions("batch 2 of 2"));
  BOOST_CHECK_EXCEPTION(xg::data::Streams(ids, 6, 3), ValueError,
                        mentions({"11 tokens", "6 streams"}));
}

BOOST_AUTO_TEST_SUITE_END()
