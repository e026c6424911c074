// Sequence to sequence: an encoder-decoder LSTM learns integer addition written as text,
// "535+61" -> "596", as in the Keras addition example (operands of up to 3 digits, 50,000
// distinct questions with 10% held out, the query reversed, 128 hidden units, one-hot
// characters). The encoder reads the query; its final state starts the decoder, which is trained
// with teacher forcing (it reads the true previous answer character) and evaluated with greedy
// decoding (it reads its own previous prediction). Keras needs about 100 epochs for 99% per
// character; with teacher forcing, Adam at 1e-2 decaying on a cosine, a forget-gate bias of 1
// and gradient clipping, this reaches 99% in 6-9 epochs and ~99.95% in 15 (about 40 s on one
// core). `--task reverse` learns to reverse strings of digits and letters instead.
//
//     seq2seq                                   # addition with the defaults
//     seq2seq --task reverse --max-len 10
//     seq2seq --stop-after 5 --save run.npz     # then: seq2seq --resume run.npz
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "common.hpp"
#include "parallel.hpp"

using namespace xg;

namespace {

// ---- Data --------------------------------------------------------------------------------------

/// Question/answer pairs as fixed-width padded strings over a small alphabet.
struct Dataset {
  std::string alphabet;  // index 0 is the pad ' '; the last symbol is GO
  std::size_t in_len = 0, out_len = 0;
  std::vector<std::string> queries;  // as the encoder reads them (reversed for addition)
  std::vector<std::string> shown;    // as a person reads them
  std::vector<std::string> answers;  // padded to out_len
  std::vector<std::size_t> lengths;  // real query lengths (reverse task; empty: fixed)
  std::size_t train = 0;             // the first `train` examples train, the rest validate

  std::size_t size() const { return queries.size(); }
  std::size_t vocab() const { return alphabet.size(); }
  std::int64_t go() const { return static_cast<std::int64_t>(alphabet.size() - 1); }
  std::int64_t id(char ch) const {
    const auto p = alphabet.find(ch);
    if (p == std::string::npos)
      throw std::logic_error(fmt::format("'{}' is not in the alphabet", ch));
    return static_cast<std::int64_t>(p);
  }
};

std::string pad_to(std::string s, std::size_t n) {
  return s + std::string(n - s.size(), ' ');
}

// Keras: each operand has 1..digits random digits; a+b and b+a count as one question.
Dataset make_addition(std::size_t n, std::size_t digits, bool reverse, double valid_frac,
                      Generator& gen) {
  Dataset d;
  d.alphabet = " 0123456789+=";
  d.in_len = 2 * digits + 1;
  d.out_len = digits + 1;
  const std::size_t max_distinct = [&] {  // unordered pairs of the numbers below 10^digits
    const auto m = static_cast<std::size_t>(std::pow(10.0, static_cast<double>(digits)));
    return m * (m + 1) / 2;
  }();
  if (n > max_distinct / 2)
    throw ex::UsageError(fmt::format("--questions {} is too many for --digits {} (at most {})", n,
                                     digits, max_distinct / 2));
  auto number = [&] {
    const std::size_t len = 1 + gen.below(digits);
    long v = 0;
    for (std::size_t i = 0; i < len; ++i) v = 10 * v + static_cast<long>(gen.below(10));
    return v;
  };
  std::set<std::pair<long, long>> seen;
  while (d.queries.size() < n) {
    const long a = number(), b = number();
    if (!seen.insert({std::min(a, b), std::max(a, b)}).second) continue;
    std::string q = pad_to(fmt::format("{}+{}", a, b), d.in_len);
    d.shown.push_back(q);
    if (reverse) std::reverse(q.begin(), q.end());
    d.queries.push_back(q);
    d.answers.push_back(pad_to(std::to_string(a + b), d.out_len));
  }
  d.train = n - static_cast<std::size_t>(static_cast<double>(n) * valid_frac);
  return d;
}

// Strings of 1..max_len symbols; the answer is the string backwards.
Dataset make_reverse(std::size_t n, std::size_t max_len, double valid_frac, Generator& gen) {
  Dataset d;
  const std::string symbols = "0123456789abcdefghijklmnopqrstuvwxyz";
  d.alphabet = " " + symbols + "=";
  d.in_len = d.out_len = max_len;
  double distinct = 0;  // strings of 1..max_len symbols
  for (std::size_t l = 1; l <= max_len && distinct < 1e18; ++l)
    distinct += std::pow(static_cast<double>(symbols.size()), static_cast<double>(l));
  if (static_cast<double>(n) > distinct / 2)
    throw ex::UsageError(fmt::format("--questions {} is too many for --max-len {} (at most {:.0f})",
                                     n, max_len, std::floor(distinct / 2)));
  std::set<std::string> seen;
  while (d.queries.size() < n) {
    std::string s(1 + gen.below(max_len), ' ');
    for (char& ch : s) ch = symbols[gen.below(symbols.size())];
    if (!seen.insert(s).second) continue;
    d.lengths.push_back(s.size());
    d.queries.push_back(pad_to(s, d.in_len));
    d.shown.push_back(d.queries.back());
    d.answers.push_back(pad_to(std::string(s.rbegin(), s.rend()), d.out_len));
  }
  d.train = n - static_cast<std::size_t>(static_cast<double>(n) * valid_frac);
  return d;
}

/// One minibatch, time-major: enc [in_len, B], dec_in and target [out_len, B].
struct Batch {
  IndexArray enc, dec_in, target;
  std::vector<std::size_t> lengths;
};

Batch make_batch(const Dataset& d, const std::vector<std::size_t>& idx) {
  const std::size_t B = idx.size();
  Batch b;
  b.enc = IndexArray::from_shape({d.in_len, B});
  b.dec_in = IndexArray::from_shape({d.out_len, B});
  b.target = IndexArray::from_shape({d.out_len, B});
  for (std::size_t j = 0; j < B; ++j) {
    const std::size_t k = idx[j];
    for (std::size_t t = 0; t < d.in_len; ++t) b.enc(t, j) = d.id(d.queries[k][t]);
    for (std::size_t t = 0; t < d.out_len; ++t) {
      b.target(t, j) = d.id(d.answers[k][t]);
      b.dec_in(t, j) = t == 0 ? d.go() : d.id(d.answers[k][t - 1]);  // teacher forcing
    }
    if (!d.lengths.empty()) b.lengths.push_back(d.lengths[k]);
  }
  return b;
}

// ---- The model ---------------------------------------------------------------------------------

/// Encoder -> final states -> decoder -> linear head over the alphabet. Both are LSTMs by default
/// (--cell, --decoder-cell). The decoder starts from the encoder's final states, matched by name
/// (h to h, c to c); a decoder state the encoder lacks starts at zeros.
class Seq2Seq : public nn::Module<float> {
 public:
  Seq2Seq(const std::string& encoder_cell, const std::string& decoder_cell, std::size_t vocab,
          std::size_t embed, std::size_t hidden, std::size_t layers, double forget_bias,
          bool forget_bias_given)
      : nn::Module<float>("Seq2Seq"), vocab_(vocab) {
    const std::size_t in = embed > 0 ? embed : vocab;
    auto make = [&](const std::string& cell) {
      nn::RNNOptions o(in, hidden);
      o.num_layers(layers);
      if (forget_bias != 0) o.forget_bias(forget_bias);
      try {
        return std::make_shared<nn::Recurrent<float>>(o, ex::cell_name(cell));
      } catch (const ValueError&) {  // a cell without a forget gate: the default does not apply
        if (forget_bias_given || !o.forget_bias()) throw;
        o.forget_bias(std::nullopt);
        return std::make_shared<nn::Recurrent<float>>(o, ex::cell_name(cell));
      }
    };
    if (embed > 0)
      embed_ = register_module(
          "embed", std::make_shared<nn::Embedding<float>>(nn::EmbeddingOptions(vocab, embed)));
    encoder_ = register_module("encoder", make(encoder_cell));
    decoder_ = register_module("decoder", make(decoder_cell));
    head_ = register_module("head", std::make_shared<nn::Linear<float>>(hidden, vocab));
    // which encoder state starts each decoder state (-1: zeros)
    const auto& es = encoder_->cell(0, 0).state_spec();
    for (const auto& d : decoder_->cell(0, 0).state_spec()) {
      int from = -1;
      for (std::size_t k = 0; k < es.size(); ++k)
        if (es[k].name == d.name && es[k].size == d.size) from = static_cast<int>(k);
      bridge_.push_back(from);
    }
  }

  /// The decoder's initial states from the encoder's final ones.
  nn::State<float> bridge(const nn::State<float>& enc) const {
    nn::State<float> s;
    for (int k : bridge_) s.push_back(k < 0 ? Var<float>() : enc[static_cast<std::size_t>(k)]);
    return s;
  }

  /// Character ids [T, B] -> inputs [T, B, F]: one-hot rows, or the embedding.
  Var<float> inputs(const IndexArray& ids) const {
    if (embed_) return embed_->forward(ids);
    Array<float> x = Array<float>::from_shape({ids.shape(0), ids.shape(1), vocab_});
    x.fill(0.0f);
    for (std::size_t i = 0; i < ids.size(); ++i)
      x.data()[i * vocab_ + static_cast<std::size_t>(ids.data()[i])] = 1.0f;
    return Var<float>(std::move(x));
  }

  /// Teacher forcing: logits [out_len, B, vocab] for every answer position in one decoder run.
  Var<float> forward(const Batch& b) {
    auto enc = encoder_->forward(inputs(b.enc), {}, b.lengths);
    auto dec = decoder_->forward(inputs(b.dec_in), bridge(enc.states));
    return head_->forward(dec.output);
  }

  /// Greedy decoding: each step reads the previous step's prediction. Returns ids [out_len, B].
  IndexArray greedy(const Batch& b, std::int64_t go) {
    NoGradGuard no_grad;
    const std::size_t T = b.target.shape(0), B = b.target.shape(1);
    auto enc = encoder_->forward(inputs(b.enc), {}, b.lengths);
    nn::State<float> state = bridge(enc.states);
    IndexArray prev = full<std::int64_t>(Shape{1, B}, go);
    IndexArray out = IndexArray::from_shape({T, B});
    for (std::size_t t = 0; t < T; ++t) {
      auto dec = decoder_->forward(inputs(prev), state);
      state = dec.states;
      const Var<float> logits_var = head_->forward(dec.output);
      const Array<float>& logits = logits_var.value();  // [1, B, vocab]
      for (std::size_t j = 0; j < B; ++j) {
        const float* row = logits.data() + j * vocab_;
        const auto best = static_cast<std::int64_t>(std::max_element(row, row + vocab_) - row);
        out(t, j) = prev(0, j) = best;
      }
    }
    return out;
  }

 private:
  std::size_t vocab_;
  std::shared_ptr<nn::Embedding<float>> embed_;
  std::shared_ptr<nn::Recurrent<float>> encoder_, decoder_;
  std::shared_ptr<nn::Linear<float>> head_;
  std::vector<int> bridge_;
};

// ---- Evaluation --------------------------------------------------------------------------------

struct Score {
  double char_acc = 0, exact = 0;
  std::vector<std::string> predictions;  // one per validation example
};

Score evaluate(Seq2Seq& model, const Dataset& d, std::size_t batch) {
  Score s;
  std::size_t chars_ok = 0, exact_ok = 0;
  const std::size_t n = d.size() - d.train;
  for (std::size_t start = d.train; start < d.size(); start += batch) {
    std::vector<std::size_t> idx(std::min(batch, d.size() - start));
    std::iota(idx.begin(), idx.end(), start);
    const Batch b = make_batch(d, idx);
    const IndexArray pred = model.greedy(b, d.go());
    for (std::size_t j = 0; j < idx.size(); ++j) {
      std::string p(d.out_len, ' ');
      bool all = true;
      for (std::size_t t = 0; t < d.out_len; ++t) {
        p[t] = d.alphabet[static_cast<std::size_t>(pred(t, j))];
        const bool ok = pred(t, j) == b.target(t, j);
        chars_ok += ok;
        all = all && ok;
      }
      exact_ok += all;
      s.predictions.push_back(std::move(p));
    }
  }
  s.char_acc = static_cast<double>(chars_ok) / static_cast<double>(n * d.out_len);
  s.exact = static_cast<double>(exact_ok) / static_cast<double>(n);
  return s;
}

void print_samples(const Dataset& d, const Score& s, std::size_t count, std::uint64_t seed) {
  Generator pick(seed);  // its own generator: printing never changes the training run
  const std::size_t n = d.size() - d.train;
  std::vector<std::size_t> ks(n);
  std::iota(ks.begin(), ks.end(), 0);
  for (std::size_t i = 0; i < std::min(count, n); ++i) {
    std::swap(ks[i], ks[i + pick.below(n - i)]);  // distinct picks: a partial Fisher-Yates
    const std::size_t k = ks[i];
    const std::string& p = s.predictions[k];
    const bool ok = p == d.answers[d.train + k];
    fmt::print("    Q {}  T {}  {} {}\n", d.shown[d.train + k], d.answers[d.train + k],
               ok ? "\u2713" : "\u2717", p);
  }
}

// ---- Training ----------------------------------------------------------------------------------

int train(int argc, char** argv) {
  ex::Flags flags(
      "seq2seq",
      "An encoder-decoder LSTM learns integer addition as text (\"535+61\" -> \"596\"),\n"
      "as in the Keras addition example; --task reverse reverses strings instead.");
  ex::declare_common_flags(flags, {.epochs = 15, .hidden = 128, .layers = 1, .lr = 1e-2});
  flags.add_choice("task", {"addition", "reverse"}, "addition", "what to learn")
      .add_int("questions", 50000, "distinct questions generated (10% held out by default)", 100)
      .add_double("valid", 0.1, "fraction held out for validation", 0.01, 0.9)
      .add_int("digits", 3, "addition: digits per operand at most", 1, 6)
      .add_int("max-len", 8, "reverse: string length at most", 1, 64)
      .add_switch("no-reverse", "addition: feed the query in reading order (Keras reverses it)")
      .add_int("batch", 128, "minibatch size", 1)
      .add_int("embed", 0, "character embedding size; 0 feeds one-hot vectors (as Keras)", 0)
      .add_cell("cell", "lstm", "recurrent cell of the encoder (and of the decoder)")
      .add_cell("decoder-cell", "same", "recurrent cell of the decoder (same: as --cell)")
      .add_double("forget-bias", 1.0,
                  "initial forget-gate bias of cells with a forget gate (0: random init)")
      .add_double("target", 0.99, "per-character validation accuracy the run is judged by", 0.0,
                  1.0)
      .add_int("samples", 8, "sample predictions printed after each epoch", 0);
  // --smoke: a few seconds: small data, a small model, two short epochs.
  flags.smoke_default("questions", "2000")
      .smoke_default("hidden", "32")
      .smoke_default("epochs", "2")
      .smoke_default("batch", "64")
      .smoke_default("samples", "3");
  flags.parse(argc, argv);
  ex::require_one_process("seq2seq");
  const ex::Common c = ex::common_flags(flags);
  const std::size_t questions = flags.get_size("questions"), batch = flags.get_size("batch");
  const std::size_t samples = flags.get_size("samples");
  ex::setup(c);
  const std::string task = flags.get_string("task");

  // The data depends only on the seed (its own generator), so a resumed run sees the same split.
  Generator data_gen(c.seed);
  const Dataset d =
      task == "addition"
          ? make_addition(questions, flags.get_size("digits"), !flags.get_switch("no-reverse"),
                          flags.get_double("valid"), data_gen)
          : make_reverse(questions, flags.get_size("max-len"), flags.get_double("valid"), data_gen);

  const std::string enc_cell = flags.get_string("cell");
  const std::string dec_cell =
      flags.get_string("decoder-cell") == "same" ? enc_cell : flags.get_string("decoder-cell");
  Seq2Seq model(enc_cell, dec_cell, d.vocab(), flags.get_size("embed"), c.hidden, c.layers,
                flags.get_double("forget-bias"), flags.given("forget-bias"));
  auto opt = ex::make_optimizer(c, model.named_parameters());
  const std::vector<Var<float>> params = model.parameters();
  const double clip = c.clip;
  Generator shuffle_gen(c.seed + 1);  // the training order; checkpoints save its state

  // Made before resuming, so its base rate is --lr; set_epoch then restores the saved epoch's rate.
  const std::unique_ptr<optim::Schedule<float>> schedule = ex::make_schedule(c, *opt);

  // What the numbers depend on (the BLAS thread count too), for resume_run to compare.
  const std::string settings =
      flags.settings({"save", "resume", "log", "plot", "samples", "stop-after"});
  ex::RunState st;
  if (!c.resume.empty()) {
    st = ex::resume_run(c.resume, model, *opt, shuffle_gen, settings);
    if (schedule) schedule->set_epoch(st.epoch);
    fmt::print("resumed {} at epoch {} (step {})\n", c.resume, st.epoch, st.step);
  }
  st.settings = settings;
  const std::size_t stop_after = c.stop_after;
  if (!c.resume.empty()) ex::trim_csv_log(c.log, st.epoch);  // rows of epochs not checkpointed
  ex::CsvLog log(c.log, {"valid_char_acc", "valid_exact"}, !c.resume.empty());

  const std::size_t n_train = d.train, n_valid = d.size() - d.train;
  const std::size_t steps = (n_train + batch - 1) / batch;
  fmt::print("seq2seq: {} task, {} questions ({} train, {} held out), e.g. \"{}\" -> \"{}\"\n",
             task, d.size(), n_train, n_valid, d.shown[0], d.answers[0]);
  fmt::print(
      "model: LSTM encoder-decoder, {} layer(s) x {} hidden, {} inputs, {} parameters; "
      "{} lr {}, batch {}, {} BLAS thread(s)\n",
      c.layers, c.hidden,
      flags.get_size("embed") ? fmt::format("embedding {}", flags.get_size("embed"))
                              : std::string("one-hot"),
      model.num_parameters(), c.optimizer, opt->lr(), batch, blas_threads());

  std::vector<std::size_t> order(n_train);
  double first_loss = NAN, last_loss = NAN;
  std::size_t reached_at = 0;
  Score score;
  for (std::size_t epoch = st.epoch + 1; epoch <= c.epochs; ++epoch) {
    ex::Stopwatch clock;
    std::iota(order.begin(), order.end(), 0);  // each epoch's order depends on the generator only
    data::shuffle(order, shuffle_gen);
    ex::Progress bar(fmt::format("epoch {}/{}", epoch, c.epochs), steps);
    double loss_sum = 0;
    std::size_t seen = 0;
    model.train();
    for (std::size_t s = 0; s < steps; ++s) {
      const std::size_t lo = s * batch, hi = std::min(n_train, lo + batch);
      const Batch b =
          make_batch(d, std::vector<std::size_t>(order.begin() + lo, order.begin() + hi));
      Var<float> loss = cross_entropy(model.forward(b), b.target);
      opt->zero_grad();
      loss.backward();
      if (clip > 0) optim::clip_grad_norm(params, clip);
      opt->step();
      const double l = loss.item();
      if (std::isnan(first_loss)) first_loss = l;
      last_loss = l;
      loss_sum += l * static_cast<double>(hi - lo);
      seen += hi - lo;
      ++st.step;
      bar.update(s + 1, loss_sum / static_cast<double>(seen), seen);
    }
    bar.finish();
    if (schedule) schedule->step();  // the rate for the next epoch
    const double train_s = clock.seconds();
    st.seconds += train_s;
    st.epoch = epoch;

    model.eval();
    score = evaluate(model, d, 1024);
    const double train_loss = loss_sum / static_cast<double>(seen);
    if (reached_at == 0 && score.char_acc >= flags.get_double("target")) reached_at = epoch;
    st.best = std::max(st.best, score.exact);
    fmt::print(
        "epoch {:>2}/{}  loss {:.4f}  valid: per-char {:6.2f}%  exact {:6.2f}%  "
        "{} ex/s  {} ({} total)\n",
        epoch, c.epochs, train_loss, 100 * score.char_acc, 100 * score.exact,
        ex::format_count(static_cast<double>(seen) / train_s), ex::format_duration(train_s),
        ex::format_duration(st.seconds));
    print_samples(d, score, samples, c.seed * 1000003 + epoch);
    std::fflush(stdout);
    log.row(epoch, st.step, train_loss, {score.char_acc, score.exact}, st.seconds);
    if (!c.save.empty()) ex::save_run(c.save, model, *opt, shuffle_gen, st);
    if (epoch == stop_after) {
      fmt::print("stopped after epoch {} (--stop-after){}\n", epoch,
                 c.save.empty() ? "" : fmt::format("; continue with --resume {}", c.save));
      break;
    }
  }

  if (st.epoch == 0 || std::isnan(last_loss)) {
    fmt::print("nothing to train: the run is already at epoch {} of {}\n", st.epoch, c.epochs);
    return 0;
  }
  std::vector<std::size_t> wrong;  // the held-out questions the final model still gets wrong
  for (std::size_t k = 0; k < n_valid; ++k)
    if (score.predictions[k] != d.answers[d.train + k]) wrong.push_back(k);
  fmt::print("mistakes: {} of {} held-out answers{}\n", wrong.size(), n_valid,
             wrong.empty() ? "" : ", for instance:");
  for (std::size_t i = 0; i < std::min<std::size_t>(wrong.size(), 5); ++i) {
    const std::size_t k = d.train + wrong[i];
    fmt::print("    Q {}  T {}  \u2717 {}\n", d.shown[k], d.answers[k],
               score.predictions[wrong[i]]);
  }
  const double target = flags.get_double("target");
  fmt::print(
      "result: per-character {:.2f}%, exact match {:.2f}% on {} held-out questions after "
      "{} epochs ({} of training)\n",
      100 * score.char_acc, 100 * score.exact, n_valid, st.epoch, ex::format_duration(st.seconds));
  if (reached_at)
    fmt::print("target: {:.0f}% per character{} reached at epoch {}\n", 100 * target,
               task == "addition" ? " (the Keras example's)" : "", reached_at);
  else
    fmt::print("target: {:.0f}% per character not reached (try more --epochs)\n", 100 * target);
  if (!c.plot.empty())
    ex::plot_curve(
        c.log, c.plot, fmt::format("seq2seq {}", task),
        {{"cross-entropy (nats per character)", {{"train_loss", "train"}}},
         {"validation accuracy (%)",
          {{"valid_char_acc", "per character", 100}, {"valid_exact", "whole answers", 100}}}});
  if (c.smoke && c.resume.empty()) ex::check_loss_went_down(first_loss, last_loss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_main(argc, argv, train);
}
