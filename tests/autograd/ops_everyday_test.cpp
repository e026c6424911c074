// The everyday pieces of issue 16: brace-list concat/stack, embedding's padding_idx, the mask of
// binary_cross_entropy_with_logits, argmax/argmin/topk (not differentiable).
#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::mentions;
using xg::test::rnd;
using V = Var<double>;
using Vs = std::vector<V>;

BOOST_AUTO_TEST_SUITE(ops_everyday)

// concat({a, b}, axis), stack({a, b}, axis): T is deduced from the brace list
BOOST_AUTO_TEST_CASE(brace_list_concat_and_stack) {
  Var<float> a(Array<float>{{1.f, 2.f}}), b(Array<float>{{3.f, 4.f}});
  Var<float> c = concat({a, b}, 1);
  BOOST_TEST(c.value() == (Array<float>{{1.f, 2.f, 3.f, 4.f}}));
  Var<float> s = stack({a, b});
  BOOST_TEST(s.value() == (Array<float>{{{1.f, 2.f}}, {{3.f, 4.f}}}));
  BOOST_TEST(stack({a, b}, 2).value() == (Array<float>{{{1.f, 3.f}, {2.f, 4.f}}}));
  expect_gradcheck([](const Vs& v) { return concat({v[0], v[1] * 2.0}, 0); },
                   {rnd(Shape{2, 3}, 1), rnd(Shape{1, 3}, 2)});
  expect_gradcheck([](const Vs& v) { return stack({v[0], tanh(v[1])}, 1); },
                   {rnd(Shape{2, 3}, 3), rnd(Shape{2, 3}, 4)});
  BOOST_CHECK_EXCEPTION(concat({a, Var<float>(Array<float>{1.f})}, 0), ShapeError, mentions("concat"));
}

// embedding(w, ids, padding_idx): the padding row is looked up as usual but gets no gradient
BOOST_AUTO_TEST_CASE(embedding_padding_idx) {
  V w(Array<double>{{1, 2}, {3, 4}, {5, 6}}, true);
  IndexArray ids{{0, 2}, {2, 1}};
  V e = embedding(w, ids, 2);
  BOOST_TEST(e.value() == (Array<double>{{{1, 2}, {5, 6}}, {{5, 6}, {3, 4}}}));
  sum(e * V(Array<double>{{{1, 1}, {1, 1}}, {{1, 1}, {2, 2}}})).backward();
  BOOST_TEST(w.grad() == (Array<double>{{1, 1}, {2, 2}, {0, 0}}));
  // -1 counts from the end: the same row
  V w2(Array<double>{{1, 2}, {3, 4}, {5, 6}}, true);
  sum(embedding(w2, ids, -1)).backward();
  BOOST_TEST(w2.grad() == (Array<double>{{1, 1}, {1, 1}, {0, 0}}));
  // Through a non-linearity: the gradient equals embedding's (gradchecked in ops_shape) with the
  // padding row zeroed.
  const Array<double> w0 = rnd(Shape{3, 2}, 5);
  V wa(w0, true), wb(w0, true);
  sum(tanh(embedding(wa, ids, 1) * 3.0)).backward();
  sum(tanh(embedding(wb, ids) * 3.0)).backward();
  Array<double> want = wb.grad();
  xt::row(want, 1) = 0.0;
  BOOST_TEST(test::close(wa.grad(), want, 0, 0));
  BOOST_TEST(wb.grad()(1, 0) != 0.0);  // without padding_idx row 1 does get a gradient
  BOOST_CHECK_EXCEPTION(embedding(w, ids, 3), ValueError, mentions({"embedding", "padding_idx 3", "3 embeddings"}));
  BOOST_CHECK_EXCEPTION(embedding(w, IndexArray{4}, 0), ValueError, mentions({"embedding", "index 4"}));
}

// loss = sum_i m_i (softplus(x_i) - x_i t_i) / sum_i m_i
BOOST_AUTO_TEST_CASE(bce_with_logits_mask) {
  Array<double> x = {-1.0, 0.0, 3.0}, t = {0.0, 1.0, 1.0}, m = {1.0, 0.0, 2.0};
  auto l = [&](int i) { return std::log1p(std::exp(x(i))) - x(i) * t(i); };
  const double want = (l(0) + 2 * l(2)) / 3.0;
  BOOST_TEST(std::abs(binary_cross_entropy_with_logits(V(x), V(t), Reduction::Mean, &m).item() - want) < 1e-14);
  BOOST_TEST(std::abs(binary_cross_entropy_with_logits(V(x), V(t), Reduction::Sum, &m).item() - 3 * want) < 1e-14);
  Array<double> none = binary_cross_entropy_with_logits(V(x), V(t), Reduction::None, &m).value();
  BOOST_TEST(std::abs(none(1)) == 0.0);
  BOOST_TEST(std::abs(none(2) - 2 * l(2)) < 1e-14);
  // a masked-out position gets no gradient
  V xv(x, true);
  binary_cross_entropy_with_logits(xv, V(t), Reduction::Mean, &m).backward();
  BOOST_TEST(xv.grad()(1) == 0.0);
  // an all-zero mask gives 0, not NaN
  Array<double> zero = {0.0, 0.0, 0.0};
  BOOST_TEST(binary_cross_entropy_with_logits(V(x), V(t), Reduction::Mean, &zero).item() == 0.0);
  Array<double> mask = {1.0, 0.0, 1.0, 1.0, 0.5, 1.0};
  mask.reshape({2, 3});
  Array<double> tt = {0.0, 1.0, 1.0, 0.0, 0.5, 1.0};
  tt.reshape({2, 3});
  for (Reduction r : {Reduction::Mean, Reduction::Sum})
    expect_gradcheck([tt, mask, r](const Vs& v) { return binary_cross_entropy_with_logits(v[0], v[1], r, &mask); },
                     {rnd(Shape{2, 3}, 6, -3, 3), tt});
  Array<double> bad = {1.0, 1.0};
  BOOST_CHECK_EXCEPTION(binary_cross_entropy_with_logits(V(x), V(t), Reduction::Mean, &bad), ShapeError,
                        mentions({"binary_cross_entropy_with_logits", "mask", "(2,)", "(3,)"}));
}

// argmax/argmin/topk: indices of the values, ties to the first index; they record nothing
BOOST_AUTO_TEST_CASE(argmax_argmin_topk) {
  Array<float> x{{1.f, 5.f, 5.f, -2.f}, {0.f, -1.f, 7.f, 7.f}};
  BOOST_TEST(argmax(x, -1) == (IndexArray{1, 2}));
  BOOST_TEST(argmax(x, 0) == (IndexArray{0, 0, 1, 1}));
  IndexArray col = {1, 2};  // ({{1}, {2}} is ambiguous to xtensor)
  col.reshape({2, 1});
  BOOST_TEST(argmax(x, 1, true) == col);
  BOOST_TEST(argmin(x, 1) == (IndexArray{3, 1}));
  BOOST_TEST(argmax(Array<double>{1.0, std::nan(""), 3.0}, 0)() == 1);  // NaN is the largest, as NumPy
  auto [v, i] = topk(x, 3);
  BOOST_TEST(v == (Array<float>{{5.f, 5.f, 1.f}, {7.f, 7.f, 0.f}}));
  BOOST_TEST(i == (IndexArray{{1, 2, 0}, {2, 3, 0}}));
  auto small = topk(x, 1, 0, /*largest=*/false);
  BOOST_TEST(small.values == (Array<float>{{0.f, -1.f, 5.f, -2.f}}));
  BOOST_TEST(small.indices == (IndexArray{{1, 1, 0, 0}}));
  // on a Var: reads the value, records nothing
  V logits(Array<double>{{0.1, 0.9}, {2.0, -1.0}}, true);
  Tape<double>& tape = Tape<double>::current();
  const std::size_t before = tape.size();
  BOOST_TEST(argmax(logits, -1) == (IndexArray{1, 0}));
  IndexArray col2 = {1, 0};
  col2.reshape({2, 1});
  BOOST_TEST(topk(logits, 1).indices == col2);
  BOOST_TEST(tape.size() == before);
  BOOST_CHECK_EXCEPTION(topk(x, 5), ValueError, mentions({"topk", "k = 5", "(2, 4)"}));
  BOOST_CHECK_EXCEPTION(argmax(x, 2), ShapeError, mentions({"argmax", "axis 2"}));
  BOOST_CHECK_EXCEPTION(argmax(zeros<float>(Shape{2, 0}), 1), ShapeError, mentions({"argmax", "empty"}));
}

BOOST_AUTO_TEST_SUITE_END()
