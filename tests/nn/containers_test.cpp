// ModuleDict (one state_dict for a composite model) and Embedding's padding_idx.
#include <cstdio>

#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;

BOOST_AUTO_TEST_SUITE(containers)

// An LSTM and a head in one ModuleDict save to one .npz with dotted names and load back into a
// freshly initialised model, which then computes the same outputs.
BOOST_AUTO_TEST_CASE(module_dict_save_load_round_trip) {
  auto make = [](std::uint64_t seed) {
    manual_seed(seed);
    auto d = std::make_shared<nn::ModuleDict<float>>();
    d->insert("lstm", std::make_shared<nn::LSTM<float>>(nn::LSTMOptions(3, 4)));
    d->insert("head", std::make_shared<nn::Linear<float>>(4, 2));
    return d;
  };
  auto model = make(1);
  std::vector<std::string> names;
  for (auto& [n, p] : model->named_parameters()) names.push_back(n);
  BOOST_TEST(names == (std::vector<std::string>{"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                                                "lstm.bias_hh_l0", "head.weight", "head.bias"}),
             boost::test_tools::per_element());
  BOOST_TEST(model->keys() == (std::vector<std::string>{"lstm", "head"}), boost::test_tools::per_element());
  BOOST_TEST(model->num_parameters() == 4u * 4 * (3 + 4 + 2) + 2 * 4 + 2);

  auto run = [](nn::ModuleDict<float>& m, const Var<float>& x) {
    auto y = m.get<nn::LSTM<float>>("lstm")->forward(x).output;
    return m.get<nn::Linear<float>>("head")->forward(y).value();
  };
  Var<float> x(test::rnd<float>(Shape{5, 2, 3}, 7));
  const Array<float> want = run(*model, x);

  const std::string path = "containers_module_dict.npz";
  model->save(path);
  auto other = make(2);
  BOOST_TEST(run(*other, x) != want);  // different initialisation
  nn::LoadReport r = other->load(path);
  BOOST_TEST(r.ok(), r.str());
  BOOST_TEST(run(*other, x) == want);
  // the .npz holds exactly the dotted names
  ArrayMap file = load_npz(path);
  BOOST_TEST(file.size() == 6u);
  BOOST_TEST(file.count("head.bias") == 1u);
  std::remove(path.c_str());

  // one state_dict: a model missing the head reports it by its dotted names
  nn::ModuleDict<float> lstm_only;
  lstm_only.insert("lstm", std::make_shared<nn::LSTM<float>>(nn::LSTMOptions(3, 4)));
  BOOST_CHECK_EXCEPTION(lstm_only.load_state_dict(model->state_dict()), ValueError,
                        mentions({"unexpected keys", "head.weight", "head.bias"}));
}

BOOST_AUTO_TEST_CASE(module_dict_errors_and_modes) {
  nn::ModuleDict<double> d;
  auto lin = d.insert("a", std::make_shared<nn::Linear<double>>(2, 2));
  auto drop = d.insert("b", std::make_shared<nn::Dropout<double>>(0.5));
  BOOST_TEST(d.contains("a"));
  BOOST_TEST(!d.contains("c"));
  BOOST_TEST(d.size() == 2u);
  BOOST_TEST(d["a"].get() == lin.get());
  d.eval();
  BOOST_TEST(!drop->is_training());
  BOOST_CHECK_EXCEPTION(d.insert("a", std::make_shared<nn::Linear<double>>(1, 1)), ValueError,
                        mentions({"ModuleDict", "'a'", "already taken"}));
  BOOST_CHECK_EXCEPTION(d.insert("x.y", std::make_shared<nn::Linear<double>>(1, 1)), ValueError,
                        mentions({"ModuleDict", "'x.y'"}));
  BOOST_CHECK_EXCEPTION(d.insert("n", std::shared_ptr<nn::Linear<double>>()), ValueError, mentions("null"));
  BOOST_CHECK_EXCEPTION(d["c"], ValueError, mentions({"no module 'c'", "keys: a, b"}));
  BOOST_CHECK_EXCEPTION(d.get<nn::Linear<double>>("b"), ValueError, mentions({"'b'", "Dropout"}));
}

// PyTorch's padding_idx: that row starts at zero and no gradient (hence no update) reaches it.
BOOST_AUTO_TEST_CASE(embedding_padding_idx) {
  manual_seed(3);
  nn::Embedding<double> emb(nn::EmbeddingOptions(5, 3).padding_idx(-1));
  BOOST_TEST(*emb.options.padding_idx() == 4);  // normalised like PyTorch
  BOOST_TEST(emb.weight.value()(4, 0) == 0.0);
  BOOST_TEST(emb.weight.value()(4, 2) == 0.0);
  BOOST_TEST(emb.weight.value()(0, 0) != 0.0);
  optim::SGD<double> sgd(emb.parameters(), optim::SGDOptions(0.5));
  IndexArray ids{{0, 4}, {4, 1}};
  Var<double> y = emb(ids);
  BOOST_TEST(y.value()(0, 1, 0) == 0.0);  // the padding row looked up
  sum(square(y + 1.0)).backward();
  BOOST_TEST(emb.weight.grad()(4, 1) == 0.0);
  BOOST_TEST(emb.weight.grad()(0, 1) != 0.0);
  sgd.step();
  BOOST_TEST(emb.weight.value()(4, 1) == 0.0);
  BOOST_CHECK_EXCEPTION(nn::Embedding<double>(nn::EmbeddingOptions(5, 3).padding_idx(5)), ValueError,
                        mentions({"Embedding", "padding_idx 5", "5 embeddings"}));
}

// torch.nn.LayerNorm(D): weight 1 and bias 0 at the start, each row normalised over the last dim.
BOOST_AUTO_TEST_CASE(layer_norm_module) {
  nn::LayerNorm<double> norm(nn::LayerNormOptions(4).eps(1e-5));
  BOOST_TEST(norm.num_parameters() == 8u);
  BOOST_TEST(norm.weight.value() == (Array<double>{1, 1, 1, 1}));
  BOOST_TEST(norm.bias.value() == (Array<double>{0, 0, 0, 0}));
  // row [1, 2, 3, 6]: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5
  Var<double> y = norm(Var<double>(Array<double>{{1, 2, 3, 6}}));
  const double s = 1 / std::sqrt(3.5 + 1e-5);
  BOOST_TEST(test::close(y.value(), Array<double>{{-2 * s, -s, 0, 3 * s}}, 1e-14, 1e-14));
  // the affine parameters apply per feature, and the gradient reaches input, weight and bias
  norm.weight.mutable_value() = Array<double>{1.0, 2.0, -1.0, 0.5};
  norm.bias.mutable_value() = Array<double>{0.1, 0.0, 0.3, -0.2};
  Var<double> x(test::rnd(Shape{3, 2, 4}, 11), true);
  test::expect_gradcheck([&] { return sum(tanh(norm(x)) * Var<double>(test::rnd(Shape{3, 2, 4}, 12))); },
                         test::with_params({x}, norm));
  BOOST_CHECK_EXCEPTION(norm(Var<double>(test::rnd(Shape{2, 5}, 1))), ShapeError,
                        mentions({"LayerNorm", "(2, 5)", "normalized_shape = 4"}));
  nn::LayerNorm<float> plain(nn::LayerNormOptions(3).elementwise_affine(false));
  BOOST_TEST(plain.num_parameters() == 0u);
  BOOST_TEST(fmt::format("{}", plain) == "LayerNorm((3,), eps=1e-05, elementwise_affine=false)  # 0 parameters in total");
  BOOST_TEST(fmt::format("{}", norm) == "LayerNorm((4,), eps=1e-05, elementwise_affine=true)  # 8 parameters in total");
}

BOOST_AUTO_TEST_SUITE_END()
