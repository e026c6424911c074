// libFuzzer target for what sits behind the file reader: arrays that parse fine (any dtype, shape
// and values) go straight into checkpoint, optimizer, schedule, module and generator restores,
// bypassing the CRC-32 that stops mutated file bytes from reaching them. Every restore must
// either succeed or throw ValueError/IoError leaving the object exactly as it was; an accepted
// state must save back unchanged. Built and run by scripts/fuzz (not by CMake).
//
// Input: a list of entries, each
//   key byte (an index into kKeys, or >= size: a key spelled by the next bytes up to a 0)
//   kind byte (dtype: float32, float64, int64, or text), rank byte (0-3), rank dim bytes (0-7),
//   then the items' bytes (as many as the shape needs; missing bytes are zeros).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <xgrad/nn/module.hpp>
#include <xgrad/optim/checkpoint.hpp>
#include <xgrad/optim/optim.hpp>

namespace {

using namespace xg;

const char* const kKeys[] = {
    "optim/step", "optim/lr", "optim/w.exp_avg", "optim/w.exp_avg_sq", "optim/w.max_exp_avg_sq",
    "optim/b.exp_avg", "optim/b.exp_avg_sq", "optim/b.max_exp_avg_sq", "optim/w.momentum_buffer",
    "optim/b.momentum_buffer", "optim/0.exp_avg", "optim/1.exp_avg_sq", "optim/0.momentum_buffer",
    "model/weight", "model/bias", "extra/epoch", "extra/step", "extra/rng", "extra/base_lr",
    "extra/best", "extra/num_bad_epochs", "extra/cooldown_left", "optim/w", "model/extra"};
constexpr std::size_t kNumKeys = sizeof(kKeys) / sizeof(kKeys[0]);

struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

template <class T>
Array<T> items(Reader& r, const Shape& shape) {
  Array<T> a = Array<T>::from_shape(shape);
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char b[sizeof(T)] = {};
    for (auto& c : b) c = r.byte();
    std::memcpy(a.data() + i, b, sizeof(T));
  }
  return a;
}

struct Tiny : nn::Module<float> {
  Tiny() : nn::Module<float>("Tiny") {
    register_parameter("weight", full<float>(Shape{2, 3}, 0.5f));
    register_parameter("bias", full<float>(Shape{2}, -0.25f));
  }
};

void check(bool ok) {
  if (!ok) std::abort();
}

// Restores `state` into an optimizer; on a refusal nothing may have changed.
template <class O>
void restore(O& opt, const ArrayMap& state) {
  const ArrayMap before = opt.state_dict();
  const double lr = opt.lr();
  const std::size_t steps = opt.steps();
  try {
    opt.load_state_dict(state);
  } catch (const ValueError&) {
    check(opt.state_dict() == before && opt.lr() == lr && opt.steps() == steps);
    return;
  }
  // Accepted: a step must not crash, whatever it computes.
  for (auto& [n, p] : opt.params()) {
    Var<float>(p).set_grad(full<float>(p.shape(), 0.125f));  // a handle to the same parameter
  }
  opt.allow_nonfinite(true);
  opt.step();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader r{data, size};
  ArrayMap arrays;
  TextMap texts;
  for (int entry = 0; entry < 24 && r.n > 0; ++entry) {
    const std::uint8_t k = r.byte();
    std::string key;
    if (k < kNumKeys) {
      key = kKeys[k];
    } else {
      for (std::uint8_t c; (c = r.byte()) != 0 && key.size() < 24;) key += static_cast<char>(c);
    }
    const std::uint8_t kind = r.byte() % 4, rank = r.byte() % 4;
    Shape shape(rank);
    for (auto& d : shape) d = r.byte() % 8;
    if (kind == 0) arrays.insert_or_assign(key, items<float>(r, shape));
    if (kind == 1) arrays.insert_or_assign(key, items<double>(r, shape));
    if (kind == 2) arrays.insert_or_assign(key, items<std::int64_t>(r, shape));
    if (kind == 3) {
      std::string t;
      for (std::size_t i = 0, len = r.byte() % 64; i < len; ++i) t += static_cast<char>(r.byte());
      texts.insert_or_assign(key, t);
    }
  }

  Checkpoint ck;
  try {
    ck = checkpoint_from_arrays(arrays, "fuzz.npz", texts);
  } catch (const IoError&) {
    return 0;
  }

  Var<float> w(full<float>(Shape{2, 3}, 0.5f), true), b(full<float>(Shape{2}, -0.25f), true);
  optim::Adam<float> adam(optim::NamedParams<float>{{"w", w}, {"b", b}}, optim::AdamOptions(0.01).amsgrad(true));
  restore(adam, ck.optimizer);
  optim::SGD<float> sgd(optim::NamedParams<float>{{"w", w}, {"b", b}}, optim::SGDOptions(0.1).momentum(0.9));
  restore(sgd, ck.optimizer);
  optim::SGD<float> plain({w, b}, optim::SGDOptions(0.1));
  restore(plain, ck.optimizer);

  Tiny tiny;
  const ArrayMap before = tiny.state_dict();
  for (bool strict : {true, false}) {
    try {
      tiny.load_state_dict(ck.model, strict);
    } catch (const ValueError&) {
      check(tiny.state_dict() == before);
    } catch (const IoError&) {  // an int64 value that no float32 holds exactly
      check(tiny.state_dict() == before);
    }
  }

  optim::CosineAnnealingLR<float> sched(plain, 10, 0.001);
  try {
    sched.load_state_dict(ck.extra);
  } catch (const ValueError&) {
    check(sched.epoch() == 0);
  }
  optim::ReduceLROnPlateau<float> plateau(plain);
  try {
    plateau.load_state_dict(ck.extra);
  } catch (const ValueError&) {
    check(plateau.num_bad_epochs() == 0);
  }

  for (const char* key : {"epoch", "step", "best", "rng"}) {
    try {
      (void)ck.count(key);
    } catch (const ValueError&) {
    }
    try {
      (void)ck.scalar(key);
    } catch (const ValueError&) {
    }
    try {
      Generator g(1);
      const std::string s = g.state();
      try {
        g.set_state(ck.text(key));
      } catch (const ValueError&) {
        check(g.state() == s);
      }
    } catch (const ValueError&) {
    }
  }
  return 0;
}
