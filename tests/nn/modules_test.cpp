// Modules: names, shapes, counts, modes, save/load, float64 gradient checks.
#include "test_util.hpp"

using namespace xg;
using xg::test::expect_gradcheck;
using xg::test::mentions;
using xg::test::rnd;
using V = Var<double>;
using Vs = std::vector<V>;

namespace {
std::vector<std::string> names_of(const nn::Module<double>& m) {
  std::vector<std::string> n;
  for (auto& [k, v] : m.named_parameters()) n.push_back(k);
  return n;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(modules)

BOOST_AUTO_TEST_CASE(linear_embedding_sequential) {
  manual_seed(1);
  nn::Linear<double> lin(nn::LinearOptions(4, 3));
  BOOST_TEST(lin.weight.shape() == (Shape{3, 4}));
  BOOST_TEST(lin.num_parameters() == 15u);
  BOOST_TEST(xt::amax(xt::abs(lin.weight.value()))() <= 0.5);  // U(-1/sqrt(4), 1/sqrt(4))
  nn::Linear<double> nob(nn::LinearOptions(4, 3).bias(false));
  BOOST_TEST(nob.named_parameters().size() == 1u);
  nn::Embedding<double> emb(nn::EmbeddingOptions(10, 5));
  BOOST_TEST(emb(IndexArray{{1, 2}}).shape() == (Shape{1, 2, 5}));
  nn::Sequential<double> seq;
  seq.push_back(std::make_shared<nn::Linear<double>>(4, 8));
  seq.push_back(std::make_shared<nn::Functional<double>>(tanh<double>));
  seq.push_back(std::make_shared<nn::Dropout<double>>(0.5));
  seq.push_back(std::make_shared<nn::Linear<double>>(8, 2));
  BOOST_TEST((names_of(seq) == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
  seq.eval();
  Array<double> x = rnd<double>(Shape{5, 4}, 3);
  BOOST_TEST(seq(V(x)).value() == seq(V(x)).value());  // dropout off in eval
  seq.train();
  BOOST_TEST(!(seq(V(x)).value() == seq(V(x)).value()));
  Tape<double>::current().clear();
  BOOST_CHECK_EXCEPTION(lin(V(rnd<double>(Shape{2, 5}, 1))), ShapeError, mentions({"linear", "(2, 5)", "(3, 4)"}));
  BOOST_CHECK_EXCEPTION(nn::Linear<double>(0, 3), ValueError, mentions({"Linear", "in_features (0)"}));
}

BOOST_AUTO_TEST_CASE(recurrent_names_shapes_and_counts) {
  nn::LSTM<double> lstm(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true));
  const auto n = names_of(lstm);
  BOOST_TEST(n.size() == 16u);
  BOOST_TEST(n[0] == "weight_ih_l0");
  BOOST_TEST(n[4] == "weight_ih_l0_reverse");
  BOOST_TEST(n[15] == "bias_hh_l1_reverse");
  auto ps = lstm.named_parameters();
  BOOST_TEST(ps[0].second.shape() == (Shape{16, 3}));
  BOOST_TEST(ps[8].second.shape() == (Shape{16, 8}));  // layer 1 input = 2 directions * 4
  // PyTorch's count for nn.LSTM(3, 4, num_layers=2, bidirectional=True)
  BOOST_TEST(lstm.num_parameters() == 2u * (16 * 3 + 16 * 4 + 32) + 2u * (16 * 8 + 16 * 4 + 32));
  nn::GRU<double> gru(nn::GRUOptions(3, 4));
  BOOST_TEST(gru.named_parameters()[0].second.shape() == (Shape{12, 3}));
  nn::RNN<double> rnn(nn::RNNOptions(3, 4).bias(false));
  BOOST_TEST(rnn.named_parameters().size() == 2u);
  const double k = 1 / std::sqrt(4.0);
  for (auto& [name, p] : lstm.named_parameters()) BOOST_TEST(xt::amax(xt::abs(p.value()))() <= k);
  nn::LSTM<double> fb(nn::LSTMOptions(3, 4).forget_bias(1.0));
  BOOST_TEST(fb.weights(0, 0).b_ih.value()(5) == 1.0);
  BOOST_TEST(fb.weights(0, 0).b_hh.value()(5) == 0.0);
  // outputs and states
  auto [y, h, c] = lstm.forward(V(rnd<double>(Shape{5, 2, 3}, 1)));
  BOOST_TEST(y.shape() == (Shape{5, 2, 8}));
  BOOST_TEST(h.shape() == (Shape{4, 2, 4}));
  BOOST_TEST(c.shape() == (Shape{4, 2, 4}));
  nn::LSTM<double> bf(nn::LSTMOptions(3, 4).batch_first(true));
  BOOST_TEST(bf.forward(V(rnd<double>(Shape{2, 5, 3}, 1))).output.shape() == (Shape{2, 5, 4}));
  Tape<double>::current().clear();
  BOOST_CHECK_EXCEPTION(lstm.forward(V(rnd<double>(Shape{5, 2, 4}, 1))), ShapeError,
                        mentions({"LSTM", "3 features", "(5, 2, 4)"}));
  BOOST_CHECK_EXCEPTION(lstm.forward(V(rnd<double>(Shape{5, 2, 3}, 1)), V(zeros<double>(Shape{2, 2, 4}))), ShapeError,
                        mentions({"LSTM", "h0", "(4, 2, 4)", "(2, 2, 4)"}));
  BOOST_CHECK_EXCEPTION(lstm.forward(V(rnd<double>(Shape{5, 2, 3}, 1)), {}, {}, {5, 6}), ValueError,
                        mentions({"LSTM", "lengths[1] = 6"}));
  BOOST_CHECK_EXCEPTION(nn::GRU<double>(nn::GRUOptions(3, 4).forget_bias(1.0)), ValueError, mentions({"GRU", "forget_bias"}));
  Tape<double>::current().clear();
}

// Every module gradchecked in float64 at tiny sizes (hidden 3, 4 steps): input, initial states
// and every parameter, with and without variable lengths.
BOOST_AUTO_TEST_CASE(recurrent_gradchecks) {
  V x = test::leaf(rnd<double>(Shape{4, 2, 2}, 7));
  V h0 = test::leaf(rnd<double>(Shape{2, 2, 3}, 8)), c0 = test::leaf(rnd<double>(Shape{2, 2, 3}, 9));
  auto loss = [](const nn::RNNOutput<double>& o) {
    V total = sum(o.output * o.output) + sum(tanh(o.h_n));
    return o.c_n.defined() ? total + sum(o.c_n * 0.5) : total;
  };
  nn::LSTM<double> lstm(nn::LSTMOptions(2, 3).bidirectional(true));
  nn::GRU<double> gru(nn::GRUOptions(2, 3).num_layers(2));
  nn::RNN<double> rnn(nn::RNNOptions(2, 3).bidirectional(true));
  for (auto lengths : {std::vector<std::size_t>{}, std::vector<std::size_t>{4, 2}}) {
    test::expect_gradcheck([&] { return loss(lstm.forward(x, h0, c0, lengths)); }, test::with_params({x, h0, c0}, lstm));
    test::expect_gradcheck([&] { return loss(gru.forward(x, h0, lengths)); }, test::with_params({x, h0}, gru));
    test::expect_gradcheck([&] { return loss(rnn.forward(x, h0, lengths)); }, test::with_params({x, h0}, rnn));
  }
}

// gradcheck of a 2-layer bidirectional LSTM with a Linear head (random projections).
BOOST_AUTO_TEST_CASE(deep_bidirectional_lstm_with_head) {
  nn::LSTM<double> lstm(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true));
  nn::Linear<double> head(8, 2);
  V x = test::leaf(rnd<double>(Shape{5, 2, 3}, 11));
  const auto o = GradcheckOptions().mode(GradcheckOptions::Mode::Fast).projections(3);
  test::expect_gradcheck([&] { return head(lstm.forward(x).output); }, test::with_params({x}, lstm, head), o);
}

BOOST_AUTO_TEST_CASE(cells_gradcheck) {
  nn::LSTMCell<double> lc(nn::LSTMOptions(2, 3));
  nn::GRUCell<double> gc(nn::GRUOptions(2, 3));
  nn::RNNCell<double> rc(nn::RNNOptions(2, 3).nonlinearity(nn::Nonlinearity::ReLU));
  V x = test::leaf(rnd<double>(Shape{2, 2}, 1)), h = test::leaf(rnd<double>(Shape{2, 3}, 2));
  V c = test::leaf(rnd<double>(Shape{2, 3}, 3));
  test::expect_gradcheck([&] { auto [h1, c1] = lc.forward(x, h, c); return h1 * c1; }, test::with_params({x, h, c}, lc));
  test::expect_gradcheck([&] { return gc.forward(x, h); }, test::with_params({x, h}, gc));
  test::expect_gradcheck([&] { return rc.forward(x, h); }, test::with_params({x, h}, rc));
}

BOOST_AUTO_TEST_CASE(save_and_load) {
  const std::string path = "modules_test_lstm.npz";
  nn::LSTM<float> a(nn::LSTMOptions(3, 4).num_layers(2));
  a.save(path);
  nn::LSTM<float> b(nn::LSTMOptions(3, 4).num_layers(2));
  BOOST_TEST(!(a.named_parameters()[0].second.value() == b.named_parameters()[0].second.value()));
  BOOST_TEST(b.load(path).ok());
  for (std::size_t i = 0; i < a.named_parameters().size(); ++i)
    BOOST_TEST(a.named_parameters()[i].second.value() == b.named_parameters()[i].second.value());
  // float64 model loads float32 files
  nn::LSTM<double> d(nn::LSTMOptions(3, 4).num_layers(2));
  BOOST_TEST(d.load(path).ok());
  // mismatches are named, and nothing changes
  nn::LSTM<float> wrong(nn::LSTMOptions(3, 5));
  const Array<float> before = wrong.named_parameters()[0].second.value();
  BOOST_CHECK_EXCEPTION(wrong.load(path), ValueError,
                        mentions({"unexpected keys: ", "weight_ih_l1", "weight_ih_l0: file (16, 3) vs model (20, 3)", path}));
  BOOST_TEST(wrong.named_parameters()[0].second.value() == before);
  nn::LSTM<float> more(nn::LSTMOptions(3, 4).num_layers(3));
  nn::LoadReport r = more.load(path, false);
  BOOST_TEST(r.missing.size() == 4u);
  BOOST_TEST(r.missing[0] == "weight_ih_l2");
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
