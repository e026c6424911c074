// Printing: arrays, Vars and modules by their exact text on small cases.
#include <sstream>

#include "test_util.hpp"

using namespace xg;

BOOST_AUTO_TEST_SUITE(format)

BOOST_AUTO_TEST_CASE(arrays_like_numpy) {
  // 4 decimals, right-aligned in one column width, rows on their own lines
  BOOST_TEST(fmt::format("{}", Array<float>{{0.5f, -1.25f}, {3.f, 4.125f}}) ==
             "[[ 0.5000, -1.2500],\n"
             " [ 3.0000,  4.1250]]");
  // whole numbers print as "3.", integers as integers, 0-d as the bare value
  BOOST_TEST(fmt::format("{}", Array<double>{1.0, -2.0, 30.0}) == "[ 1., -2., 30.]");
  BOOST_TEST(fmt::format("{}", IndexArray{{1, 20}, {-3, 4}}) == "[[ 1, 20],\n [-3,  4]]");
  BOOST_TEST(fmt::format("{}", full<double>(Shape{}, 2.5)) == "2.5000");
  // more than 3 orders of magnitude between the values: scientific notation
  BOOST_TEST(fmt::format("{}", Array<double>{1e-5, 0.5}) == "[1.0000e-05, 5.0000e-01]");
  BOOST_TEST(fmt::format("{}", Array<double>{std::nan(""), -INFINITY, 0.25}) == "[   nan,   -inf, 0.2500]");
  // 3-d: blocks separated by a blank line
  Array<std::int64_t> c = xt::arange<std::int64_t>(8);
  c.reshape({2, 2, 2});
  BOOST_TEST(fmt::format("{}", c) ==
             "[[[0, 1],\n"
             "  [2, 3]],\n"
             "\n"
             " [[4, 5],\n"
             "  [6, 7]]]");
  BOOST_TEST(fmt::format("{}", zeros<float>(Shape{0})) == "[]");
}

BOOST_AUTO_TEST_CASE(large_arrays_are_summarised) {
  Array<std::int64_t> a = xt::arange<std::int64_t>(2000);
  BOOST_TEST(fmt::format("{}", a) == "[   0,    1,    2, ..., 1997, 1998, 1999]");
  a.reshape({100, 20});
  BOOST_TEST(fmt::format("{}", a) ==
             "[[   0,    1,    2, ...,   17,   18,   19],\n"
             " [  20,   21,   22, ...,   37,   38,   39],\n"
             " [  40,   41,   42, ...,   57,   58,   59],\n"
             " ...,\n"
             " [1940, 1941, 1942, ..., 1957, 1958, 1959],\n"
             " [1960, 1961, 1962, ..., 1977, 1978, 1979],\n"
             " [1980, 1981, 1982, ..., 1997, 1998, 1999]]");
}

BOOST_AUTO_TEST_CASE(ostream_matches_fmt) {
  std::ostringstream os;
  Array<float> a{1.5f, 2.f};
  os << a;
  BOOST_TEST(os.str() == fmt::format("{}", a));
}

BOOST_AUTO_TEST_CASE(vars) {
  Var<float> w(Array<float>{{1.f, 2.f}, {3.f, 4.5f}}, true);
  BOOST_TEST(fmt::format("{}", w) ==
             "Var([[1.0000, 2.0000],\n"
             "     [3.0000, 4.5000]], shape=(2, 2), dtype=float32, requires_grad=true)");
  Var<double> y = tanh(Var<double>(Array<double>{0.0}, true));
  BOOST_TEST(fmt::format("{}", y) == "Var([0.], shape=(1,), dtype=float64, requires_grad=true, op=tanh)");
  std::ostringstream os;
  os << Var<double>::scalar(3.0);
  BOOST_TEST(os.str() == "Var(3., shape=(), dtype=float64, requires_grad=false)");
  BOOST_TEST(fmt::format("{}", Var<float>()) == "Var(undefined)");
}

BOOST_AUTO_TEST_CASE(modules_as_a_tree) {
  manual_seed(0);
  nn::Sequential<float> mlp;
  mlp.push_back(std::make_shared<nn::Linear<float>>(4, 16));
  mlp.push_back(std::make_shared<nn::Functional<float>>(tanh<float>, "tanh"));
  mlp.push_back(std::make_shared<nn::Dropout<float>>(0.25));
  mlp.push_back(std::make_shared<nn::Linear<float>>(nn::LinearOptions(16, 2).bias(false)));
  BOOST_TEST(fmt::format("{}", mlp) ==
             "Sequential(\n"
             "  (0): Linear(in_features=4, out_features=16, bias=true)  # 80 parameters\n"
             "  (1): tanh()\n"
             "  (2): Dropout(p=0.25)\n"
             "  (3): Linear(in_features=16, out_features=2, bias=false)  # 32 parameters\n"
             ")  # 112 parameters in total");
  // nested containers indent their children; operator<< prints the same
  nn::ModuleDict<float> model;
  model.insert("embed", std::make_shared<nn::Embedding<float>>(nn::EmbeddingOptions(10, 3).padding_idx(0)));
  auto inner = model.insert("mlp", std::make_shared<nn::Sequential<float>>());
  inner->push_back(std::make_shared<nn::Linear<float>>(3, 1));
  std::ostringstream os;
  os << model;
  BOOST_TEST(os.str() ==
             "ModuleDict(\n"
             "  (embed): Embedding(10, 3, padding_idx=0)  # 30 parameters\n"
             "  (mlp): Sequential(\n"
             "    (0): Linear(in_features=3, out_features=1, bias=true)  # 4 parameters\n"
             "  )  # 4 parameters\n"
             ")  # 34 parameters in total");
  BOOST_TEST(fmt::format("{}", nn::Linear<double>(1, 1)) ==
             "Linear(in_features=1, out_features=1, bias=true)  # 2 parameters in total");
}

BOOST_AUTO_TEST_SUITE_END()
