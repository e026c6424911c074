// After warm-up, a training step makes no heap allocation: not in the tape, the nodes, the
// values or the gradients, nor anywhere else on the step's path (driver, loss, optimizer).
//
// Its own executable: it replaces malloc and its relatives (forwarding to glibc's) to count every
// call, including the ones operator new makes. Set XGRAD_ALLOC_TRACE=1 to print a backtrace of
// each counted allocation.
#define BOOST_TEST_MODULE steady_state
#include <boost/test/included/unit_test.hpp>

#include <errno.h>
#include <execinfo.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include <xgrad/xgrad.hpp>
#include <xgrad/nn/cells.hpp>

extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {
std::atomic<long> g_count{0};
std::atomic<bool> g_armed{false};
bool g_trace = false;
thread_local bool t_in_trace = false;

void counted() {
  if (!g_armed.load(std::memory_order_relaxed)) return;
  g_count.fetch_add(1, std::memory_order_relaxed);
  if (g_trace && !t_in_trace) {
    t_in_trace = true;
    void* frames[24];
    const int n = backtrace(frames, 24);
    const char line[] = "---- counted allocation:\n";
    (void)!write(2, line, sizeof line - 1);
    backtrace_symbols_fd(frames, n, 2);
    t_in_trace = false;
  }
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  counted();
  return __libc_malloc(n);
}
void free(void* p) { __libc_free(p); }
void* calloc(std::size_t a, std::size_t b) {
  counted();
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  counted();
  return __libc_realloc(p, n);
}
void* memalign(std::size_t al, std::size_t n) {
  counted();
  return __libc_memalign(al, n);
}
void* aligned_alloc(std::size_t al, std::size_t n) {
  counted();
  return __libc_memalign(al, n);
}
int posix_memalign(void** out, std::size_t al, std::size_t n) {
  counted();
  void* p = __libc_memalign(al, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}

using namespace xg;

namespace {

// Counts the allocations `f` makes.
template <class F>
long allocations(F&& f) {
  g_count = 0;
  g_armed = true;
  f();
  g_armed = false;
  return g_count.load();
}

struct Setup {
  Setup() {
    g_trace = std::getenv("XGRAD_ALLOC_TRACE") != nullptr;
    void* frames[4];
    (void)backtrace(frames, 4);  // loads libgcc's unwinder now, not while counting
  }
};
BOOST_TEST_GLOBAL_FIXTURE(Setup);

// One training step of `net` + a Linear head on a fixed batch, the way the examples train.
template <class Net>
struct Trainer {
  Net& net;
  nn::Linear<float> head;
  optim::Adam<float> opt;
  Var<float> x, target;
  std::vector<std::size_t> lengths;
  Trainer(Net& n, std::size_t hidden_out, std::size_t T, std::size_t B, std::size_t I,
          std::vector<std::size_t> len = {})
      : net(n),
        head(hidden_out, 1),
        opt(nn::parameters(net, head), optim::AdamOptions(1e-3)),
        lengths(std::move(len)) {
    Generator gen(7);
    x = Var<float>(uniform<float>({T, B, I}, -1.f, 1.f, gen));
    target = Var<float>(uniform<float>({B, 1}, -1.f, 1.f, gen));
  }
  float step() {
    opt.zero_grad();
    auto out = net.forward(x, nn::State<float>{}, lengths);
    Var<float> loss = mse_loss(head(select(out.output, 0, out.output.shape(0) - 1)), target);
    loss.backward();
    optim::clip_grad_norm(opt.params(), 1.0);
    opt.step();
    return loss.item();
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(the_counter_sees_allocations) {
  // Without this the zeros below would prove nothing.
  const long n = allocations([] {
    std::vector<int> v(100);
    v[3] = 1;
    Array<float> a = empty<float>(Shape{1 << 20});  // bigger than anything cached so far
    a(0) = 1.f;
  });
  BOOST_TEST(n >= 2);
}

BOOST_AUTO_TEST_CASE(lstm_training_step) {
  nn::LSTM<float> lstm(nn::LSTMOptions(8, 16));
  Trainer<nn::LSTM<float>> t(lstm, 16, 6, 4, 8);
  float first = t.step();
  for (int i = 0; i < 3; ++i) t.step();
  float loss = 0;
  const long n = allocations([&] { loss = t.step(); });
  BOOST_TEST(n == 0);
  BOOST_TEST(loss < first);  // it trains
}

BOOST_AUTO_TEST_CASE(lstm_two_layers_bidirectional_ragged) {
  nn::LSTM<float> lstm(nn::LSTMOptions(8, 16).num_layers(2).bidirectional(true).dropout(0.2));
  Trainer<nn::LSTM<float>> t(lstm, 32, 6, 4, 8, {6, 3, 5, 1});
  for (int i = 0; i < 4; ++i) t.step();
  const long n = allocations([&] { t.step(); });
  BOOST_TEST(n == 0);
}

BOOST_AUTO_TEST_CASE(gru_and_rnn_training_steps) {
  nn::GRU<float> gru(nn::GRUOptions(8, 16));
  Trainer<nn::GRU<float>> g(gru, 16, 6, 4, 8);
  nn::RNN<float> rnn(nn::RNNOptions(8, 16));
  Trainer<nn::RNN<float>> r(rnn, 16, 6, 4, 8);
  for (int i = 0; i < 4; ++i) g.step(), r.step();
  BOOST_TEST(allocations([&] { g.step(); }) == 0);
  BOOST_TEST(allocations([&] { r.step(); }) == 0);
}

// Every registered cell (the built-in ones and the gallery's) through nn::Recurrent: one layer,
// then two layers, bidirectional, with ragged lengths.
BOOST_AUTO_TEST_CASE(every_catalog_cell_through_the_driver) {
  for (const auto& info : nn::cell_catalog()) {
    BOOST_TEST_CONTEXT("cell " << info.name) {
      nn::Recurrent<float> net(nn::RNNOptions(8, 16), info.name);
      Trainer<nn::Recurrent<float>> t(net, 16, 6, 4, 8);
      for (int i = 0; i < 4; ++i) t.step();
      BOOST_TEST(allocations([&] { t.step(); }) == 0);

      nn::Recurrent<float> deep(nn::RNNOptions(8, 16).num_layers(2).bidirectional(true), info.name);
      Trainer<nn::Recurrent<float>> d(deep, 32, 6, 4, 8, {6, 3, 5, 1});
      for (int i = 0; i < 4; ++i) d.step();
      BOOST_TEST(allocations([&] { d.step(); }) == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(evaluation_under_no_grad) {
  nn::LSTM<float> lstm(nn::LSTMOptions(8, 16));
  Generator gen(3);
  Var<float> x(uniform<float>({6, 4, 8}, -1.f, 1.f, gen));
  auto eval = [&] {
    NoGradGuard no_grad;
    auto out = lstm.forward(x);
    return out.output.value()(0, 0, 0);
  };
  for (int i = 0; i < 2; ++i) eval();
  BOOST_TEST(allocations([&] { eval(); }) == 0);
  BOOST_TEST(Tape<float>::current().size() == 0u);  // nothing was recorded
}
