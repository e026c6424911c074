// A character language model: a 2-layer LSTM reads text one character at a time and predicts the
// next one. It is trained with truncated backpropagation through time: the training text is cut
// into parallel streams, each batch is the next `--chunk` characters of every stream, and the
// LSTM's state is carried from one chunk to the next but detach()ed, so gradients stop at the
// chunk's start. It reports bits per character (bpc) on held-out text next to two baselines made
// from the training text with add-one smoothing: a unigram (character frequencies) and a bigram
// (the next character given this one). Then it writes text with a temperature.
//
// The default corpus is the fortunes of Debian's `fortunes` package (/usr/share/games/fortunes,
// without the .dat/.u8 index files and without any subfolder); about one fortune in 20 (drawn
// from the seed) is held out.
//
//     charlm                                          # the fortunes; a few minutes on 2 cores
//     charlm --text book.txt --epochs 10 --save lm.npz
//     charlm --resume lm.npz --sample 1000 --temperature 0.6 --prime "The "
//     mpirun -np 2 charlm                             # data-parallel: each rank reads 1/2 of the
//                                                     # streams (parallel.hpp)
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"
#include "parallel.hpp"

using namespace xg;

namespace {

// ---- Data --------------------------------------------------------------------------------------

/// The corpus as documents (fortunes, or blocks of a text file), each ending with its separator.
struct Corpus {
  std::string source;
  std::vector<std::string> docs;
  std::string separator;  // what starts a new document in the text ("%\n" for fortunes)
};

Corpus load_fortunes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IoError(
        fmt::format("{}: not a directory (install the Debian package fortunes, or give "
                    "--text FILE)",
                    dir));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    // Skip the index files (.dat), the UTF-8 aliases (.u8 links to the same file) and folders
    // (the offensive fortunes live in a subfolder).
    if (ext == ".dat" || ext == ".u8" || e.is_directory(ec) || name.empty() || name[0] == '.')
      continue;
    files.push_back(e.path().string());
  }
  if (ec) throw IoError(fmt::format("{}: cannot list ({})", dir, ec.message()));
  if (files.empty()) throw IoError(fmt::format("{}: no fortune files", dir));
  std::sort(files.begin(), files.end());
  Corpus c;
  c.source = fmt::format("{} fortune files in {}", files.size(), dir);
  c.separator = "%\n";
  for (const std::string& f : files) {
    std::string doc;
    for (const std::string& line : data::split_lines(data::read_file(f))) {
      if (line == "%") {
        if (!doc.empty()) c.docs.push_back(doc + "%\n");
        doc.clear();
      } else {
        doc += line + "\n";
      }
    }
    if (!doc.empty()) c.docs.push_back(doc + "%\n");
  }
  return c;
}

/// A text file as blocks of whole lines of about 2 KB (a longer line is cut at a character
/// boundary), so that held-out blocks are spread over the whole file.
Corpus load_text(const std::string& path) {
  const std::string text = data::read_file(path);
  if (text.empty()) throw IoError(fmt::format("{}: the file is empty", path));
  Corpus c{path, {}, std::string(1, '\n')};
  const std::size_t target = 2048;
  std::string block;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    end = end == std::string::npos ? text.size() : end + 1;
    std::string line = text.substr(start, end - start);
    start = end;
    while (line.size() > target) {  // cut at a character boundary (not before a continuation byte)
      std::size_t cut = target;
      while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
      if (cut == 0) cut = target;
      if (!block.empty()) c.docs.push_back(std::move(block)), block.clear();
      c.docs.push_back(line.substr(0, cut));
      line.erase(0, cut);
    }
    block += line;
    if (block.size() >= target) c.docs.push_back(std::move(block)), block.clear();
  }
  if (!block.empty()) c.docs.push_back(std::move(block));
  return c;
}

// ---- Baselines ---------------------------------------------------------------------------------

/// Unigram and bigram models counted on the training ids, with add-one smoothing over the `V`
/// symbols a model can predict (the vocabulary without <pad>).
struct NGram {
  std::size_t V = 0;
  std::vector<double> uni;              // counts
  std::vector<std::vector<double>> bi;  // bi[a][b]: b after a
  std::vector<double> bi_rows;
  double total = 0;

  NGram(const std::vector<std::int64_t>& ids, std::size_t vocab)
      : V(vocab - 1),
        uni(vocab, 0.0),
        bi(vocab, std::vector<double>(vocab, 0.0)),
        bi_rows(vocab, 0.0) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto b = static_cast<std::size_t>(ids[i]);
      uni[b] += 1;
      total += 1;
      if (i > 0) {
        const auto a = static_cast<std::size_t>(ids[i - 1]);
        bi[a][b] += 1;
        bi_rows[a] += 1;
      }
    }
  }
  double unigram_bits(std::size_t b) const {
    return -std::log2((uni[b] + 1) / (total + static_cast<double>(V)));
  }
  double bigram_bits(std::size_t a, std::size_t b) const {
    return -std::log2((bi[a][b] + 1) / (bi_rows[a] + static_cast<double>(V)));
  }
};

// ---- The model ---------------------------------------------------------------------------------

struct LmOutput {
  Var<float> logits;       // [T, B, vocab]
  nn::State<float> state;  // the cell's final states, each [layers, B, hidden]
};

/// Embedding -> recurrent layers (an LSTM by default; --cell) -> Linear over the characters.
class CharLM : public nn::Module<float> {
 public:
  CharLM(const std::string& cell, std::size_t vocab, std::size_t embed, std::size_t hidden,
         std::size_t layers, double dropout)
      : nn::Module<float>("CharLM") {
    embed_ = register_module(
        "embed", std::make_shared<nn::Embedding<float>>(nn::EmbeddingOptions(vocab, embed)));
    rnn_ = register_module("lstm",
                           std::make_shared<nn::Recurrent<float>>(
                               nn::RNNOptions(embed, hidden).num_layers(layers).dropout(dropout),
                               ex::cell_name(cell)));
    head_ = register_module("head", std::make_shared<nn::Linear<float>>(hidden, vocab));
  }
  /// ids [T, B] with the state carried from the previous chunk (empty: zeros).
  LmOutput forward(const IndexArray& ids, const nn::State<float>& state) {
    auto out = rnn_->forward(embed_->forward(ids), state);
    return {head_->forward(out.output), out.states};
  }
  /// The generator of the dropout between the recurrent layers.
  Generator& dropout_generator() { return rnn_->dropout_generator(); }

 private:
  std::shared_ptr<nn::Embedding<float>> embed_;
  std::shared_ptr<nn::Recurrent<float>> rnn_;  // registered as "lstm": checkpoints keep their names
  std::shared_ptr<nn::Linear<float>> head_;
};

/// The state's values without their history (truncated BPTT).
nn::State<float> detached(const nn::State<float>& s) {
  nn::State<float> d;
  for (const auto& v : s) d.push_back(v.detach());
  return d;
}

struct Bpc {
  double model = 0, unigram = 0, bigram = 0;
  std::size_t chars = 0;
};

/// The columns `cols` (this rank's streams) of a batch [T, streams]; the batch itself when that
/// is all of them.
IndexArray columns(const IndexArray& a, const std::vector<std::size_t>& cols) {
  if (cols.size() == a.shape(1)) return a;
  IndexArray out = IndexArray::from_shape({a.shape(0), cols.size()});
  for (std::size_t t = 0; t < a.shape(0); ++t)
    for (std::size_t j = 0; j < cols.size(); ++j) out(t, j) = a(t, cols[j]);
  return out;
}

/// Bits per character on `ids` read as `streams` parallel streams, each from a zero state; the
/// baselines are scored on exactly the characters the model predicts. Each rank scores its share
/// of the streams and the sums are added over the ranks.
Bpc evaluate(CharLM& model, const std::vector<std::int64_t>& ids, const NGram* ngram,
             std::size_t streams, const ex::Parallel& par) {
  NoGradGuard no_grad;
  model.eval();
  const data::Streams s(ids, streams, 256);
  const std::vector<std::size_t> mine = par.shard(streams);
  nn::State<float> state;
  Bpc r;
  for (std::size_t k = 0; k < s.batches(); ++k) {
    const auto [all_x, all_y] = s.batch(k);
    r.chars += all_x.size();
    if (mine.empty()) continue;
    const IndexArray x = columns(all_x, mine), y = columns(all_y, mine);
    LmOutput out = model.forward(x, state);
    state = out.state;
    r.model += cross_entropy(out.logits, y, {.reduction = Reduction::Sum}).item() / std::log(2.0);
    if (ngram)
      for (std::size_t i = 0; i < x.size(); ++i) {
        r.unigram += ngram->unigram_bits(static_cast<std::size_t>(y.data()[i]));
        r.bigram += ngram->bigram_bits(static_cast<std::size_t>(x.data()[i]),
                                       static_cast<std::size_t>(y.data()[i]));
      }
  }
  std::vector<double> sums = {r.model, r.unigram, r.bigram};
  par.sum(sums);
  r.model = sums[0], r.unigram = sums[1], r.bigram = sums[2];
  const auto n = static_cast<double>(r.chars);
  r.model /= n, r.unigram /= n, r.bigram /= n;
  model.train();
  return r;
}

/// Feeds `prime`, then draws `n` characters from softmax(logits / temperature) (never <pad> or
/// <unk>), each fed back as the next input.
std::string sample(CharLM& model, const data::Vocab& vocab, const std::vector<std::int64_t>& prime,
                   std::size_t n, double temperature, Generator& gen) {
  NoGradGuard no_grad;
  model.eval();
  IndexArray x = IndexArray::from_shape({prime.size(), 1});
  std::copy(prime.begin(), prime.end(), x.begin());
  LmOutput out = model.forward(x, {});
  std::string text;
  const std::size_t V = vocab.size();
  std::vector<double> p(V);
  for (std::size_t i = 0; i < n; ++i) {
    const float* logits = out.logits.value().data() + (out.logits.shape(0) - 1) * V;
    double top = -1e300;
    for (std::size_t v = 2; v < V; ++v) top = std::max(top, static_cast<double>(logits[v]));
    double z = 0;
    for (std::size_t v = 0; v < V; ++v) {
      p[v] = v < 2 ? 0.0 : std::exp((logits[v] - top) / temperature);
      z += p[v];
    }
    double u = gen.uniform01() * z;
    std::size_t pick = V - 1;
    for (std::size_t v = 2; v < V; ++v) {
      if (u < p[v]) {
        pick = v;
        break;
      }
      u -= p[v];
    }
    text += vocab.token(static_cast<std::int64_t>(pick));
    IndexArray next = full<std::int64_t>(Shape{1, 1}, static_cast<std::int64_t>(pick));
    out = model.forward(next, out.state);
  }
  model.train();
  return text;
}

// ---- Training ----------------------------------------------------------------------------------

int train(ex::Parallel& par, int argc, char** argv) {
  ex::Flags flags(
      "charlm",
      "A 2-layer LSTM character language model trained with truncated BPTT on a text\n"
      "(default: Debian's fortunes). Reports held-out bits per character against unigram\n"
      "and bigram baselines, then samples text: --sample N --temperature T --prime TEXT.\n"
      "Under `mpirun -np N` it trains data-parallel: each rank reads 1/N of the streams.");
  ex::declare_common_flags(flags, {.epochs = 8, .hidden = 192, .layers = 2, .lr = 8e-3});
  flags.add_string("text", "", "train on this UTF-8 text file instead of the fortunes", "FILE")
      .add_string("fortunes-dir", "/usr/share/games/fortunes", "where the fortunes are", "DIR")
      .add_double("valid", 0.05, "fraction of the documents (fortunes, 2 KB blocks) held out",
                  0.001, 0.5)
      .add_int("chunk", 32, "characters per truncated-BPTT chunk", 1)
      .add_int("streams", 16, "parallel streams (the batch size, over all MPI ranks)", 1)
      .add_int("epoch-chars", 400000,
               "characters per epoch (0: one pass over the training text); "
               "later epochs continue where the last one stopped",
               0)
      .add_int("eval-chars", 60000, "held-out characters scored after each epoch (all at the end)",
               1000)
      .add_cell("cell", "lstm", "recurrent cell of every layer")
      .add_int("embed", 64, "character embedding size", 1)
      .add_double("dropout", 0.0, "dropout between the recurrent layers", 0.0, 0.9)
      .add_int("min-count", 2, "characters seen fewer times in training become <unk>", 1)
      .add_int("sample", 600, "characters to generate after training (0: none)", 0)
      .add_double("temperature", 0.7, "sampling temperature: lower is safer, higher is wilder",
                  0.01, 10.0)
      .add_string("prime", "", "text the sample continues (default: the start of a new document)",
                  "TEXT");
  // --smoke: a few seconds on the first part of the corpus, a tiny model, short epochs.
  flags.smoke_default("hidden", "48")
      .smoke_default("epochs", "2")
      .smoke_default("lr", "0.01")
      .smoke_default("epoch-chars", "12000")
      .smoke_default("eval-chars", "5000")
      .smoke_default("sample", "80");
  flags.parse(argc, argv);
  const ex::Common c = ex::common_flags(flags);
  const std::size_t streams = flags.get_size("streams"), chunk = flags.get_size("chunk");
  const std::size_t epoch_chars = flags.get_size("epoch-chars"),
                    eval_chars = flags.get_size("eval-chars");
  const std::size_t n_sample = flags.get_size("sample");
  ex::setup(c);

  Corpus corpus = flags.get_string("text").empty() ? load_fortunes(flags.get_string("fortunes-dir"))
                                                   : load_text(flags.get_string("text"));
  if (c.smoke && corpus.docs.size() > 1500) corpus.docs.resize(1500);
  if (corpus.docs.size() < 2)
    throw ValueError(
        fmt::format("{}: too short to hold part of it out (one block of 2 KB)", corpus.source));
  // Documents go to training or held-out by the seed alone (its own generator).
  Generator data_gen(c.seed);
  std::string train_text, valid_text;
  const double valid_frac = flags.get_double("valid");
  std::size_t n_valid_docs = 0;
  for (std::size_t i = 0; i < corpus.docs.size(); ++i) {
    const bool held_out = data_gen.uniform01() < valid_frac;
    (held_out ? valid_text : train_text) += corpus.docs[i];
    n_valid_docs += held_out;
  }
  if (n_valid_docs == 0)
    valid_text = corpus.docs.back(), train_text.resize(train_text.size() - valid_text.size());
  std::size_t invalid = 0;
  const std::vector<std::string> train_chars = data::utf8_chars(train_text, &invalid);
  const std::vector<std::string> valid_chars = data::utf8_chars(valid_text, &invalid);
  const data::Vocab vocab = data::build_vocab({train_chars}, flags.get_size("min-count"));
  const std::vector<std::int64_t> train_ids = vocab.ids(train_chars),
                                  valid_all = vocab.ids(valid_chars);
  const std::vector<std::int64_t> valid_part(
      valid_all.begin(), valid_all.begin() + std::min(valid_all.size(), eval_chars));
  const NGram ngram(train_ids, vocab.size());

  if (train_ids.size() < 2 * streams)
    throw ValueError(
        fmt::format("{}: the training text ({} characters) is too short for {} "
                    "streams",
                    corpus.source, train_ids.size(), streams));
  const data::Streams train_streams(train_ids, streams, chunk);
  const std::size_t eval_streams =
      std::min<std::size_t>(16, std::max<std::size_t>(1, valid_part.size() / 512));
  if (valid_all.size() < 3 * eval_streams)
    throw ValueError(fmt::format("{}: the held-out text ({} characters) is too short",
                                 corpus.source, valid_all.size()));
  const std::size_t per_epoch =
      epoch_chars == 0
          ? train_streams.batches()
          : std::max<std::size_t>(1, (epoch_chars + streams * chunk - 1) / (streams * chunk));

  CharLM model(flags.get_string("cell"), vocab.size(), flags.get_size("embed"), c.hidden, c.layers,
               flags.get_double("dropout"));
  auto opt = ex::make_optimizer(c, model.named_parameters());
  const std::vector<Var<float>> params = model.parameters();
  par.data_parallel(params);  // under MPI: rank 0's initial values on every rank
  const double clip = c.clip;
  Generator sample_gen(c.seed + 2);  // only sampling draws from it
  const std::unique_ptr<optim::Schedule<float>> schedule = ex::make_schedule(c, *opt);
  const std::string settings = flags.settings(
      {"save", "resume", "log", "plot", "threads", "stop-after", "sample", "temperature", "prime"});
  ex::RunState st;
  // Training draws only dropout masks, from the LSTM's generator: checkpoints carry its state,
  // so a resumed run continues exactly.
  Generator& train_gen = model.dropout_generator();
  if (!c.resume.empty()) {
    st = ex::resume_run(par.load_checkpoint(c.resume), c.resume, model, *opt, train_gen, settings,
                        par.is_root());
    if (schedule) schedule->set_epoch(st.epoch);
    fmt::print("resumed {} at epoch {} (step {})\n", c.resume, st.epoch, st.step);
  }
  // Under MPI each rank draws its own masks for its own streams (rank 0 keeps the saved stream).
  if (!par.is_root())
    train_gen.seed(c.seed + 1000 + std::uint64_t(par.rank()) + 7919 * std::uint64_t(st.step));
  st.settings = settings;
  const std::size_t stop_after = c.stop_after;
  if (!c.resume.empty() && par.is_root()) ex::trim_csv_log(c.log, st.epoch);  // rows of epochs not checkpointed
  ex::CsvLog log(par.is_root() ? c.log : "", {"valid_bpc", "bigram_bpc"}, !c.resume.empty());

  fmt::print("data: {}: {} documents, {} held out; {} training / {} held-out characters{}\n",
             corpus.source, corpus.docs.size(), n_valid_docs ? n_valid_docs : 1, train_ids.size(),
             valid_all.size(),
             invalid ? fmt::format(" ({} malformed UTF-8 bytes read as U+FFFD)", invalid) : "");
  fmt::print("vocabulary: {} characters seen at least {} times (+ <pad>, <unk>)\n",
             vocab.size() - 2, flags.get_size("min-count"));
  fmt::print(
      "model: embedding {} -> LSTM {} layer(s) x {} hidden -> linear {}; {} parameters; "
      "{} lr {}, {} streams x {} characters per step, {} steps per epoch ({} characters), "
      "{} BLAS thread(s)\n",
      flags.get_size("embed"), c.layers, c.hidden, vocab.size(), model.num_parameters(),
      c.optimizer, opt->lr(), streams, chunk, per_epoch,
      ex::format_count(static_cast<double>(per_epoch * streams * chunk)), blas_threads());
  const Bpc base = evaluate(model, valid_part, &ngram, eval_streams, par);
  fmt::print(
      "baselines on held-out text: unigram {:.3f} bpc, bigram {:.3f} bpc; untrained LSTM "
      "{:.3f} bpc\n",
      base.unigram, base.bigram, base.model);

  std::vector<double> losses;
  for (std::size_t epoch = st.epoch + 1; epoch <= c.epochs; ++epoch) {
    ex::Stopwatch clock;
    ex::Progress bar(fmt::format("epoch {}/{}", epoch, c.epochs), per_epoch,
                     par.is_root() ? stderr : nullptr);
    double loss_sum = 0;
    std::size_t seen = 0;
    // The state starts from zeros at every epoch (and when the streams wrap around), so a resumed
    // run continues exactly: where an epoch starts depends only on its number.
    // Under MPI each rank carries the state of its own streams.
    const std::vector<std::size_t> mine = par.shard(streams);
    nn::State<float> state;
    for (std::size_t s = 0; s < per_epoch; ++s) {
      const std::size_t pos = ((epoch - 1) * per_epoch + s) % train_streams.batches();
      if (pos == 0) state.clear();
      const auto [all_x, all_y] = train_streams.batch(pos);
      opt->zero_grad();
      double l = 0;  // this rank's mean loss
      if (!mine.empty()) {
        const IndexArray x = columns(all_x, mine), y = columns(all_y, mine);
        LmOutput out = model.forward(x, state);
        Var<float> loss = cross_entropy(out.logits, y);
        l = loss.item();
        par.weight_loss(loss, mine.size(), streams).backward();
        // Truncated BPTT: keep the state's value, drop its history (the tape is cleared anyway).
        state = detached(out.state);
      }
      par.allreduce_gradients();  // the mean over all streams, on every rank
      if (clip > 0) optim::clip_grad_norm(params, clip);
      opt->step();
      l = par.global_mean(l, mine.size(), streams);
      losses.push_back(l);
      loss_sum += l * static_cast<double>(all_x.size());
      seen += all_x.size();
      ++st.step;
      bar.update(s + 1, loss_sum / static_cast<double>(seen) / std::log(2.0), seen);
    }
    bar.finish();
    if (schedule) schedule->step();
    const double train_s = clock.seconds();
    st.seconds += train_s;
    st.epoch = epoch;
    const Bpc v = evaluate(model, valid_part, nullptr, eval_streams, par);
    const double train_bpc = loss_sum / static_cast<double>(seen) / std::log(2.0);
    st.best = st.best == 0 ? v.model : std::min(st.best, v.model);
    fmt::print(
        "epoch {:>2}/{}  train {:.3f} bpc  held-out {:.3f} bpc (bigram {:.3f})  {} chars/s  "
        "{} ({} total)\n",
        epoch, c.epochs, train_bpc, v.model, base.bigram,
        ex::format_count(static_cast<double>(seen) / train_s), ex::format_duration(clock.seconds()),
        ex::format_duration(st.seconds));
    std::fflush(stdout);
    log.row(epoch, st.step, train_bpc, {v.model, base.bigram}, st.seconds);
    if (!c.save.empty() && par.is_root()) ex::save_run(c.save, model, *opt, train_gen, st);
    if (epoch == stop_after) {
      fmt::print("stopped after epoch {} (--stop-after){}\n", epoch,
                 c.save.empty() ? "" : fmt::format("; continue with --resume {}", c.save));
      return 0;
    }
  }
  if (losses.empty())
    fmt::print("nothing to train: the run is already at epoch {} of {}\n", st.epoch, c.epochs);

  const Bpc final = evaluate(model, valid_all, &ngram, eval_streams, par);
  fmt::print(
      "result: held-out {:.3f} bpc vs bigram {:.3f} and unigram {:.3f} ({:.0f}% of the "
      "bigram's bits) on {} characters, after {} epochs ({} of training)\n",
      final.model, final.bigram, final.unigram, 100 * final.model / final.bigram, final.chars,
      st.epoch, ex::format_duration(st.seconds));

  if (n_sample > 0 && par.is_root()) {
    std::string prime = flags.get_string("prime");
    const bool default_prime = prime.empty();
    if (default_prime) prime = corpus.separator;
    std::size_t unknown = 0;
    std::vector<std::int64_t> prime_ids;
    for (const auto& ch : data::utf8_chars(prime)) {
      prime_ids.push_back(vocab.id(ch));
      unknown += !vocab.contains(ch);
    }
    if (unknown)
      fmt::print("note: {} character(s) of --prime never occur in the training text\n", unknown);
    const double temperature = flags.get_double("temperature");
    const std::string text = sample(model, vocab, prime_ids, n_sample, temperature, sample_gen);
    fmt::print("\nsample ({} characters, temperature {}):\n{}{}\n", n_sample, temperature,
               default_prime ? "" : prime, text);
  }
  if (!c.plot.empty() && par.is_root())
    ex::plot_curve(c.log, c.plot, "charlm: bits per character (lower is better)",
                   {{"bits per character",
                     {{"train_loss", "train"},
                      {"valid_bpc", "held-out"},
                      {"bigram_bpc", "bigram baseline (held-out)", 1, true}}}});
  // a resumed run saw only the end of the curve
  if (c.smoke && c.resume.empty()) ex::check_loss_history(losses, 8, 5);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_main(argc, argv, train);
}
