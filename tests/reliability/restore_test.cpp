// Restores never crash, never half-load and never accept nonsense: every refused restore leaves the
// object exactly as it was (all state compared) and names the key (and the file) and the problem.
// Also the option checks and the parameter names of nn::parameters.
#include <filesystem>

#include <unistd.h>

#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;
using V = Var<float>;

namespace {

struct Scratch {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / fmt::format("xgrad_restore_test_{}", ::getpid());
  Scratch() { std::filesystem::create_directories(dir); }
  ~Scratch() { std::filesystem::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

// Two parameters trained by Adam (amsgrad) for two steps: every buffer exists.
struct Trained {
  V w{full<float>(Shape{2, 2}, 0.5f), true};
  V b{Array<float>{1.f, -1.f}, true};
  optim::Adam<float> opt{optim::NamedParams<float>{{"w", w}, {"b", b}}, optim::AdamOptions(0.1).amsgrad(true)};
  Trained() {
    for (int i = 0; i < 2; ++i) {
      opt.zero_grad();
      (sum(w * w) + sum(b * b * 3.f)).backward();
      opt.step();
    }
  }
  // Everything the optimizer holds.
  std::tuple<ArrayMap, double, std::size_t> all() const { return {opt.state_dict(), opt.lr(), opt.steps()}; }
};

// One number (shape (1,): scalar restores accept any shape with one element).
AnyArray num(double v) { return Array<double>{v}; }

// Loads `bad` and checks the refusal: the message has every part and nothing changed.
void refused(Trained& t, const ArrayMap& bad, std::initializer_list<std::string> parts) {
  const auto before = t.all();
  BOOST_CHECK_EXCEPTION(t.opt.load_state_dict(bad), ValueError, mentions(parts));
  BOOST_CHECK_EXCEPTION(t.opt.check_state_dict(bad), ValueError, mentions(parts));
  BOOST_TEST((t.all() == before));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(restore)

BOOST_AUTO_TEST_CASE(optimizer_step_counts_must_be_counts) {
  Trained t;
  const ArrayMap good = t.opt.state_dict();
  ArrayMap bad = good;
  bad["step"] = Array<double>::from_shape({0});  // used to read past the end (SIGSEGV)
  refused(t, bad, {"'step'", "expected one number, found an empty array"});
  bad["step"] = Array<double>{1.0, 2.0};
  refused(t, bad, {"'step'", "found 2 numbers"});
  for (double v : {std::nan(""), -5.0, 1e30, 2.5, double(INFINITY)}) {
    bad["step"] = num(v);
    refused(t, bad, {"'step'", "is not a count"});
  }
  bad = good;
  bad.erase("step");
  refused(t, bad, {"no 'step' entry"});
  bad["step"] = IndexArray{3};  // an int64 count is fine
  t.opt.load_state_dict(bad);
  BOOST_TEST(t.opt.steps() == 3u);
}

BOOST_AUTO_TEST_CASE(optimizer_buffers_are_validated_before_anything_changes) {
  Trained t;
  const ArrayMap good = t.opt.state_dict();
  ArrayMap bad = good;
  bad["w.exp_avg_sq"] = full<float>(Shape{2, 2}, -1.f);  // the next step would make every weight NaN
  refused(t, bad, {"'w.exp_avg_sq'", "item 0 is -1", "cannot be negative"});
  bad = good;
  bad["b.max_exp_avg_sq"] = Array<float>{0.f, -2.f};
  refused(t, bad, {"'b.max_exp_avg_sq'", "item 1 is -2"});
  bad = good;
  bad["w.exp_avg"] = Array<double>{{1e300, 0}, {0, 0}};  // float64 that overflows float32
  refused(t, bad, {"'w.exp_avg'", "item 0 is inf as float32 (out of its range)"});
  bad = good;
  bad["w.exp_avg"] = Array<float>{{NAN, 0}, {0, 0}};
  refused(t, bad, {"'w.exp_avg'", "item 0 is nan"});
  bad = good;
  bad["w.momentum_buffer"] = full<float>(Shape{2, 2}, 0.f);
  refused(t, bad, {"'w.momentum_buffer'", "unexpected", "no buffer 'momentum_buffer'",
                   "exp_avg, exp_avg_sq, max_exp_avg_sq"});
  bad = good;
  bad["v.exp_avg"] = full<float>(Shape{2, 2}, 0.f);
  refused(t, bad, {"'v.exp_avg'", "names no parameter"});
  bad = good;
  bad.erase("b.exp_avg_sq");
  refused(t, bad, {"'b.exp_avg_sq' is missing", "state of 'b' is incomplete"});
  bad = good;
  for (const char* k : {"w.exp_avg", "w.exp_avg_sq", "w.max_exp_avg_sq", "b.exp_avg", "b.exp_avg_sq", "b.max_exp_avg_sq"})
    bad.erase(k);
  refused(t, bad, {"step = 2 but no buffers"});
  bad = good;
  bad["w.exp_avg"] = full<float>(Shape{4}, 0.f);
  refused(t, bad, {"'w.exp_avg'", "shape (4,) but the parameter has (2, 2)"});
  // The learning rate is checked with everything else: a bad one used to leave the buffers and
  // the step count replaced (a half-restored optimizer).
  bad = good;
  bad["step"] = num(7);
  for (double lr : {std::nan(""), -0.1, double(INFINITY)}) {
    bad["lr"] = num(lr);
    refused(t, bad, {"'lr'", "must be finite and >= 0"});
  }
  bad["lr"] = Array<double>::from_shape({0});
  refused(t, bad, {"'lr'", "empty array"});
  // And the good state still loads.
  t.opt.load_state_dict(good);
  BOOST_TEST((t.all() == Trained().all()));
}

BOOST_AUTO_TEST_CASE(sgd_buffers_follow_its_options) {
  V p(Array<float>{1.f, 2.f}, true);
  optim::SGD<float> plain({p}, optim::SGDOptions(0.1));
  BOOST_CHECK_EXCEPTION(plain.load_state_dict({{"step", num(1)}, {"lr", num(0.1)}, {"0.momentum_buffer", Array<float>{0.f, 0.f}}}),
                        ValueError, mentions({"'0.momentum_buffer'", "it keeps none"}));
  optim::SGD<float> mom({p}, optim::SGDOptions(0.1).momentum(0.9));
  mom.load_state_dict({{"step", num(1)}, {"lr", num(0.1)}, {"0.momentum_buffer", Array<float>{0.f, -1.f}}});
  BOOST_TEST(mom.steps() == 1u);
}

BOOST_AUTO_TEST_CASE(old_checkpoints_still_load) {
  // Optimizer state saved when nn::parameters named parameters "0", "1", ...: loaded by position.
  nn::Linear<float> a(2, 2), b(2, 1);
  optim::Adam<float> opt(nn::parameters(a, b), optim::AdamOptions(0.01));
  ArrayMap old{{"step", num(1)}, {"lr", num(0.01)}};
  const auto params = opt.params();
  for (std::size_t i = 0; i < params.size(); ++i) {
    old.emplace(fmt::format("{}.exp_avg", i), full<float>(params[i].second.shape(), 0.5f));
    old.emplace(fmt::format("{}.exp_avg_sq", i), full<float>(params[i].second.shape(), 0.25f));
  }
  opt.load_state_dict(old);
  const ArrayMap now = opt.state_dict();
  BOOST_TEST(now.count("Linear0.weight.exp_avg") == 1u);
  BOOST_TEST((std::get<Array<float>>(now.at("Linear1.bias.exp_avg_sq")) == Array<float>{0.25f}));
  // Text stored as int64 character codes (checkpoints before numpy-readable text).
  Checkpoint ck;
  ck.source = "old.npz";
  ck.extra.emplace("rng", IndexArray{104, 105});
  BOOST_TEST(ck.text("rng") == "hi");
  ck.extra["rng"] = IndexArray{104, 300};
  BOOST_CHECK_EXCEPTION(ck.text("rng"), ValueError, mentions({"old.npz: extra/rng", "item 1 (300) is not a character"}));
  ck.extra["rng"] = Array<double>{1.0};
  BOOST_CHECK_EXCEPTION(ck.text("rng"), ValueError, mentions({"old.npz: extra/rng", "expected text"}));
}

BOOST_AUTO_TEST_CASE(checkpoint_values_name_the_file_and_key) {
  Scratch tmp;
  Checkpoint ck;
  ck.set_scalar("seconds", 1.5);
  ck.extra.emplace("epoch", Array<double>::from_shape({0}));  // used to crash seq2seq --resume
  ck.set_text("rng", "state text");
  save_checkpoint(tmp / "c.npz", ck);
  const Checkpoint back = load_checkpoint(tmp / "c.npz");
  BOOST_TEST(back.source == tmp / "c.npz");
  BOOST_TEST(back.text("rng") == "state text");
  BOOST_TEST(back.scalar("seconds") == 1.5);
  BOOST_CHECK_EXCEPTION(back.count("epoch"), ValueError, mentions({tmp / "c.npz", "extra/epoch", "empty array"}));
  BOOST_CHECK_EXCEPTION(back.scalar("epoch"), ValueError, mentions({tmp / "c.npz", "extra/epoch", "empty array"}));
  BOOST_CHECK_EXCEPTION(back.scalar("nothing"), ValueError, mentions({tmp / "c.npz", "extra/nothing", "missing"}));
  BOOST_CHECK_EXCEPTION(back.scalar("rng"), ValueError, mentions({"extra/rng", "holds text"}));
  Checkpoint c2 = back;
  for (double v : {std::nan(""), -5.0, 1e30, 2.5}) {  // a NaN epoch used to print epoch 9223372036854775808
    c2.set_scalar("epoch", v);
    BOOST_CHECK_EXCEPTION(c2.count("epoch"), ValueError, mentions({tmp / "c.npz", "extra/epoch", "is not a count"}));
  }
  c2.set_scalar("epoch", 9);
  BOOST_TEST(c2.count("epoch") == 9u);
  // Only extra/ values may be text.
  save_npz(tmp / "t.npz", {}, {{"optim/step", "3"}});
  BOOST_CHECK_EXCEPTION(load_checkpoint(tmp / "t.npz"), IoError, mentions({tmp / "t.npz", "'optim/step' holds text"}));
}

BOOST_AUTO_TEST_CASE(modules_load_all_or_nothing) {
  nn::Linear<float> lin(3, 2);
  const ArrayMap before = lin.state_dict();
  ArrayMap bad = before;
  bad["weight"] = Array<double>{{1e300, 0, 0}, {0, 0, 0}};  // used to become inf silently
  BOOST_CHECK_EXCEPTION(lin.load_state_dict(bad), ValueError,
                        mentions({"'weight' item 0 is inf after conversion to float32 (out of its range)"}));
  BOOST_CHECK_EXCEPTION(lin.load_state_dict(bad, /*strict=*/false), ValueError, mentions("out of its range"));
  bad["weight"] = Array<float>{{0, 0, 0}, {0, 0, NAN}};
  BOOST_CHECK_EXCEPTION(lin.load_state_dict(bad), ValueError, mentions({"'weight' item 5 is nan", "must be finite"}));
  BOOST_TEST((lin.state_dict() == before));
  // Errors of the reader and of conversions name the file too.
  Scratch tmp;
  bad["weight"] = IndexArray{{1, 2, 3}, {4, 5, (std::int64_t(1) << 40) + 1}};
  save_npz(tmp / "i.npz", bad);
  BOOST_CHECK_EXCEPTION(lin.load(tmp / "i.npz"), IoError, mentions({"not exactly representable", tmp / "i.npz"}));
  BOOST_TEST((lin.state_dict() == before));
}

BOOST_AUTO_TEST_CASE(schedules_and_generators_restore_checked) {
  V p(Array<float>{1.f}, true);
  optim::SGD<float> opt({p}, optim::SGDOptions(0.1));
  optim::StepLR<float> sched(opt, 2, 0.5);
  sched.step(), sched.step(), sched.step();
  const ArrayMap st = sched.state_dict();
  optim::StepLR<float> other(opt, 2, 0.5);
  other.load_state_dict(st);
  BOOST_TEST(other.epoch() == 3u);
  BOOST_TEST(opt.lr() == 0.05);
  ArrayMap bad = st;
  bad["epoch"] = num(-1);
  BOOST_CHECK_EXCEPTION(other.load_state_dict(bad), ValueError, mentions({"'epoch'", "not a count"}));
  bad = st;
  bad["base_lr"] = num(std::nan(""));
  BOOST_CHECK_EXCEPTION(other.load_state_dict(bad), ValueError, mentions({"'base_lr'", "finite"}));
  bad = st;
  bad["gamma"] = num(1);
  BOOST_CHECK_EXCEPTION(other.load_state_dict(bad), ValueError, mentions({"unexpected key 'gamma'"}));
  BOOST_TEST(other.epoch() == 3u);
  BOOST_TEST(opt.lr() == 0.05);
  BOOST_TEST(other.base_lr() == 0.1);

  optim::ReduceLROnPlateau<float> plateau(opt);
  plateau.step(1.0), plateau.step(2.0);
  optim::ReduceLROnPlateau<float> p2(opt);
  p2.load_state_dict(plateau.state_dict());
  BOOST_TEST(p2.num_bad_epochs() == 1u);
  ArrayMap pb = plateau.state_dict();
  pb["num_bad_epochs"] = num(0.5);
  BOOST_CHECK_EXCEPTION(p2.load_state_dict(pb), ValueError, mentions({"'num_bad_epochs'", "not a count"}));
  BOOST_TEST(p2.num_bad_epochs() == 1u);

  Generator g(7);
  const std::string s = g.state();
  Generator h(8);
  const std::string hs = h.state();
  for (const std::string& bad_state : {std::string(""), s.substr(0, s.size() / 2), s + " trailing", s.substr(0, s.rfind(' ')) + " zz"})
    BOOST_CHECK_EXCEPTION(h.set_state(bad_state), ValueError, mentions("Generator::set_state: malformed"));
  BOOST_TEST(h.state() == hs);
  h.set_state(s);
  BOOST_TEST(h.next_u64() == g.next_u64());
}

BOOST_AUTO_TEST_CASE(options_and_parameter_lists_are_checked) {
  V p(Array<float>{1.f}, true), q(Array<float>{2.f}, true);
  BOOST_CHECK_EXCEPTION(optim::Adam<float>(std::vector<V>{}, optim::AdamOptions()), ValueError,
                        mentions("no parameters to optimize"));
  BOOST_CHECK_EXCEPTION(optim::Adam<float>(std::vector<V>{p, q, p}, optim::AdamOptions()), ValueError,
                        mentions("parameter '2' is given twice (also as '0')"));
  BOOST_CHECK_EXCEPTION(optim::Adam<float>(optim::NamedParams<float>{{"a", p}, {"a", q}}, optim::AdamOptions()),
                        ValueError, mentions("two parameters are named 'a'"));
  BOOST_CHECK_EXCEPTION(optim::Adam<float>({p}, optim::AdamOptions().weight_decay(INFINITY)), ValueError,
                        mentions("Adam: weight_decay = inf must be finite"));
  BOOST_CHECK_EXCEPTION(optim::Adam<float>({p}, optim::AdamOptions().eps(INFINITY)), ValueError,
                        mentions("Adam: eps = inf must be finite"));
  BOOST_CHECK_EXCEPTION(optim::SGD<float>({p}, optim::SGDOptions(0.1).weight_decay(INFINITY)), ValueError,
                        mentions("SGD: weight_decay = inf must be finite"));
  nn::Linear<float> lin(2, 2);
  BOOST_CHECK_EXCEPTION(optim::Adam<float>(nn::parameters(lin, lin), optim::AdamOptions()), ValueError,
                        mentions("'Linear1.weight' is given twice (also as 'Linear0.weight')"));
}

BOOST_AUTO_TEST_CASE(nn_parameters_keep_the_modules_names) {
  nn::LSTM<float> lstm(nn::LSTMOptions(2, 3));
  nn::Linear<float> head(3, 1);
  const auto named = nn::parameters(lstm, head);
  std::vector<std::string> names;
  for (const auto& [n, v] : named) names.push_back(n);
  BOOST_TEST(names.front() == "LSTM.weight_ih_l0");
  BOOST_TEST(names.back() == "Linear.bias");
  BOOST_TEST(named.vars().size() == lstm.parameters().size() + 2);
  optim::Adam<float> opt(nn::parameters(lstm, head), optim::AdamOptions());
  Array<float> g = zeros<float>(Shape{1, 3});
  g(0, 1) = NAN;
  head.parameters()[0].zero_grad();
  sum(head(Var<float>(full<float>(Shape{1, 3}, 1.f)))).backward();
  head.parameters()[0].mutable_grad() = g;
  // The refusal used to name the parameter "4" (its position).
  BOOST_CHECK_EXCEPTION(opt.step(), ValueError, mentions("the gradient of 'Linear.weight' (1, 3) contains NaN"));
  // Plain Var lists still come out where they are wanted.
  const std::vector<Var<float>> plain = nn::parameters(lstm, head);
  BOOST_TEST(plain.size() == named.size());
  opt.zero_grad();
  BOOST_TEST(optim::clip_grad_norm(nn::parameters(head), 1.0) == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
