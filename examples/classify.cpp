// Sequence classification: a recurrent network reads a sequence token by token, and its last
// hidden state goes through a linear layer to a softmax over the classes (cross entropy).
//
// The default task guesses which language a word is from, character by character, using the
// dictionary word lists Debian installs in /usr/share/dict (English, German, French, Spanish,
// Italian and Dutch; packages wamerican wngerman wfrench wspanish witalian wdutch). Words are
// lower-cased and read as UTF-8 characters (code points), so "é" is one step, not two bytes.
// Words found in more than one list are dropped, every language gets the same number of words,
// and 10% of each language is held out for the final test. Batches hold words of similar length
// and the recurrent module gets their true lengths, so padding never reaches the classifier.
//
//     classify                                   # the languages; ~2 minutes on 2 cores
//     classify --epochs 5 -- Haus maison house   # and then guess these words
//     classify --task parity --cell rnn             # fails past ~6 bits; gru/lstm: 100% to 40
//     classify --data reviews.tsv --vocab word   # any "label<TAB>text" file
//     mpirun -np 2 classify                      # data-parallel: each rank takes half of every
//                                                # batch (parallel.hpp)
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "common.hpp"
#include "parallel.hpp"

using namespace xg;

namespace {

// ---- Data --------------------------------------------------------------------------------------

/// Labelled token sequences and their split. Classes are indices into `classes`.
struct Dataset {
  std::string task, unit = "character";  // unit: what one time step reads
  std::vector<std::string> classes;      // short names (language codes, "even"/"odd", TSV labels)
  std::vector<std::string> class_names;  // long names for the summary
  std::vector<std::string> texts;        // as a person reads them
  std::vector<std::vector<std::string>> tokens;
  std::vector<std::int64_t> labels;
  std::vector<std::size_t> train, valid, test;
};

struct Language {
  const char* code;
  const char* name;
  const char* file;  // in /usr/share/dict (see `dpkg -L wngerman` etc.)
  const char* package;
};
const std::vector<Language> kLanguages = {{"en", "English", "american-english", "wamerican"},
                                          {"de", "German", "ngerman", "wngerman"},
                                          {"fr", "French", "french", "wfrench"},
                                          {"es", "Spanish", "spanish", "wspanish"},
                                          {"it", "Italian", "italian", "witalian"},
                                          {"nl", "Dutch", "dutch", "wdutch"}};

/// Lower case for the Latin letters of the word lists: ASCII, Latin-1 (À-Þ but ×) and the
/// upper/lower pairs of Latin Extended-A (Ā-ž). Other code points are returned unchanged.
char32_t latin_lower(char32_t c) {
  if (c >= U'A' && c <= U'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c >= 0x100 && c <= 0x137 && c % 2 == 0) return c + 1;
  if (c >= 0x139 && c <= 0x148 && c % 2 == 1) return c + 1;
  if (c >= 0x14A && c <= 0x177 && c % 2 == 0) return c + 1;
  if (c == 0x178) return 0xFF;
  if (c >= 0x179 && c <= 0x17E && c % 2 == 1) return c + 1;
  return c;
}

/// Whether `c` is a letter of the Latin scripts (ASCII letters, Latin-1 letters, Latin
/// Extended-A/B).
bool is_latin_letter(char32_t c) {
  return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z') ||
         (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7);
}

/// Lower-cased Latin letters only; empty when the word has anything else (digits, apostrophes,
/// hyphens, dots) or is shorter than 2 or longer than max_len characters.
std::u32string clean_word(const std::string& line, std::size_t max_len) {
  std::u32string w = data::utf8_decode(line);
  if (w.size() < 2 || w.size() > max_len) return {};
  for (char32_t& c : w) {
    if (!is_latin_letter(c)) return {};
    c = latin_lower(c);
  }
  return w;
}

/// The text a model reads for a word typed by a user (the same cleaning, but never refused).
std::vector<std::string> word_tokens(const std::string& word, bool lower) {
  std::u32string w = data::utf8_decode(word);
  std::vector<std::string> out;
  for (char32_t c : w) out.push_back(data::utf8_encode(lower ? latin_lower(c) : c));
  return out;
}

/// "a, b,,c" -> {"a", "b", "c"}: items without their surrounding spaces, empty ones dropped.
std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(start, end - start);
    const auto a = item.find_first_not_of(' '), b = item.find_last_not_of(' ');
    if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
    start = end + 1;
  }
  return out;
}

// Puts 80% of each class in train, 10% in valid, 10% in test (at least one in train).
void stratified_split(Dataset& d, Generator& gen) {
  data::Split s = data::stratified_split(d.labels, /*valid*/ 0.1, /*test*/ 0.1, gen);
  d.train = std::move(s.train), d.valid = std::move(s.valid), d.test = std::move(s.test);
  if (d.valid.empty() || d.test.empty())
    throw ValueError(
        fmt::format("{} examples are too few to hold out a validation and a test "
                    "split (each class needs at least 10)",
                    d.labels.size()));
}

Dataset load_languages(const std::string& dir, const std::vector<std::string>& codes,
                       std::size_t per_class, std::size_t max_len, Generator& gen) {
  Dataset d;
  d.task = "language";
  std::vector<std::vector<std::u32string>> words;
  std::map<std::u32string, int> seen_in;  // how many lists hold the word
  for (const std::string& code : codes) {
    const auto it = std::find_if(kLanguages.begin(), kLanguages.end(),
                                 [&](const Language& l) { return code == l.code; });
    if (it == kLanguages.end())
      throw ex::UsageError(
          fmt::format("--languages: unknown language '{}' (known: en, de, fr, es, "
                      "it, nl)",
                      code));
    const std::string path = dir + "/" + it->file;
    std::string text;
    try {
      text = data::read_file(path);
    } catch (const IoError& e) {
      throw IoError(fmt::format("{} (install the Debian package {})", e.what(), it->package));
    }
    std::set<std::u32string> unique;
    for (const std::string& line : data::split_lines(text)) {
      std::u32string w = clean_word(line, max_len);
      if (!w.empty()) unique.insert(std::move(w));
    }
    for (const auto& w : unique) ++seen_in[w];
    words.emplace_back(unique.begin(), unique.end());
    d.classes.push_back(it->code);
    d.class_names.push_back(it->name);
  }
  std::size_t shared = 0, smallest = SIZE_MAX;
  for (auto& list : words) {
    const std::size_t before = list.size();
    std::erase_if(list, [&](const std::u32string& w) { return seen_in[w] > 1; });
    shared += before - list.size();
    smallest = std::min(smallest, list.size());
  }
  const std::size_t n = std::min(per_class, smallest);
  if (n < 10) throw ValueError(fmt::format("only {} usable words in the smallest list", smallest));
  fmt::print(
      "data: {} word lists in {}; {} words found in several lists dropped; {} words per "
      "language{}\n",
      codes.size(), dir, shared, n,
      n < per_class ? fmt::format(" (the smallest list has only {})", smallest) : "");
  for (std::size_t c = 0; c < words.size(); ++c) {
    data::shuffle(words[c], gen);
    for (std::size_t k = 0; k < n; ++k) {
      d.texts.push_back(data::utf8_encode(words[c][k]));
      d.tokens.push_back(word_tokens(d.texts.back(), false));
      d.labels.push_back(static_cast<std::int64_t>(c));
    }
  }
  stratified_split(d, gen);
  return d;
}

Dataset make_parity(std::size_t n, std::size_t min_len, std::size_t max_len, Generator& gen) {
  Dataset d;
  d.task = "parity";
  d.unit = "bit";
  d.classes = {"even", "odd"};
  d.class_names = {"an even number of 1s", "an odd number of 1s"};
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t len = min_len + gen.below(max_len - min_len + 1);
    std::string s(len, '0');
    int ones = 0;
    for (char& ch : s)
      if (gen.below(2)) ch = '1', ++ones;
    d.texts.push_back(s);
    d.tokens.push_back(word_tokens(s, false));
    d.labels.push_back(ones % 2);
  }
  stratified_split(d, gen);
  return d;
}

Dataset load_tsv(const std::string& path, bool words, std::size_t max_len, Generator& gen) {
  Dataset d;
  d.task = path;
  d.unit = words ? "word" : "character";
  const std::string text = data::read_file(path);
  std::map<std::string, std::int64_t> label_ids;
  std::vector<std::string> raw_labels;
  std::size_t invalid = 0, truncated = 0, line_no = 0;
  for (const std::string& line : data::split_lines(text)) {
    ++line_no;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank
    const auto tab = line.find('\t');
    if (tab == std::string::npos)
      throw IoError(fmt::format("{}:{}: expected 'label<TAB>text', found no tab", path, line_no));
    std::string label = line.substr(0, tab), body = line.substr(tab + 1);
    if (label.empty()) throw IoError(fmt::format("{}:{}: the label is empty", path, line_no));
    std::vector<std::string> toks;
    if (words) {
      toks = data::split_words(body);
      std::size_t bad = 0;
      for (auto& t : toks) data::utf8_decode(t, &bad);
      invalid += bad;
    } else {
      toks = data::utf8_chars(body, &invalid);
    }
    if (toks.empty()) throw IoError(fmt::format("{}:{}: the text is empty", path, line_no));
    if (toks.size() > max_len) toks.resize(max_len), ++truncated;
    label_ids.emplace(label, 0);
    raw_labels.push_back(std::move(label));
    d.texts.push_back(std::move(body));
    d.tokens.push_back(std::move(toks));
  }
  if (d.texts.empty()) throw IoError(fmt::format("{}: no 'label<TAB>text' lines", path));
  if (label_ids.size() < 2)
    throw IoError(fmt::format("{}: only one label ('{}'); classification needs two or more", path,
                              label_ids.begin()->first));
  for (auto& [name, id] : label_ids) {  // classes in sorted order
    id = static_cast<std::int64_t>(d.classes.size());
    d.classes.push_back(name);
    d.class_names.push_back(name);
  }
  for (const auto& l : raw_labels) d.labels.push_back(label_ids[l]);
  fmt::print("data: {}: {} examples, {} classes, read as {}s{}{}\n", path, d.texts.size(),
             d.classes.size(), d.unit,
             truncated ? fmt::format("; {} cut to --max-len {}", truncated, max_len) : "",
             invalid ? fmt::format("; {} malformed UTF-8 bytes read as U+FFFD", invalid) : "");
  stratified_split(d, gen);
  return d;
}

// ---- The model ---------------------------------------------------------------------------------

/// Embedding -> recurrent layers of any cell (with the batch's lengths) -> last layer's final
/// output state -> Linear -> class logits.
class Classifier : public nn::Module<float> {
 public:
  Classifier(const std::string& cell, std::size_t vocab, std::size_t embed, std::size_t hidden,
             std::size_t layers, std::size_t classes)
      : nn::Module<float>("Classifier"), layers_(layers) {
    embed_ = register_module(
        "embed", std::make_shared<nn::Embedding<float>>(nn::EmbeddingOptions(vocab, embed)));
    rnn_ = register_module(
        "rnn", std::make_shared<nn::Recurrent<float>>(
                   nn::RNNOptions(embed, hidden).num_layers(layers), ex::cell_name(cell)));
    head_ = register_module("head", std::make_shared<nn::Linear<float>>(hidden, classes));
  }

  /// Logits [B, classes] for a padded batch.
  Var<float> forward(const data::Padded<std::int64_t>& b) {
    const Var<float> x = embed_->forward(b.values);  // [T, B, embed]
    nn::RNNOutput<float> out = rnn_->forward(x, {}, b.lengths);
    return head_->forward(select(out.h_n, 0, layers_ - 1));  // the last layer's final state
  }

 private:
  std::size_t layers_;
  std::shared_ptr<nn::Embedding<float>> embed_;
  std::shared_ptr<nn::Recurrent<float>> rnn_;
  std::shared_ptr<nn::Linear<float>> head_;
};

IndexArray labels_of(const Dataset& d, const std::vector<std::size_t>& idx) {
  IndexArray y = IndexArray::from_shape({idx.size()});
  for (std::size_t j = 0; j < idx.size(); ++j) y(j) = d.labels[idx[j]];
  return y;
}

// ---- Evaluation --------------------------------------------------------------------------------

struct Score {
  double loss = 0, accuracy = 0;
  std::vector<std::int64_t> predicted;  // per example of the split, in the split's order
};

/// Loss and accuracy on a split. Each rank scores its share of every batch; the sums and the
/// predictions are then added over the ranks, so every rank gets the whole split's numbers.
Score evaluate(Classifier& model, const Dataset& d,
               const std::vector<std::vector<std::int64_t>>& ids,
               const std::vector<std::size_t>& split, const ex::Parallel& par) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<std::size_t> order(split.size());  // positions in `split`, batched by length
  std::iota(order.begin(), order.end(), 0);
  std::vector<std::size_t> split_lengths(split.size());
  for (std::size_t k = 0; k < split.size(); ++k) split_lengths[k] = ids[split[k]].size();
  Score s;
  s.predicted.assign(split.size(), -1);
  std::size_t correct = 0;
  for (const auto& all_positions : data::make_batches(order, 512, nullptr, &split_lengths)) {
    const std::vector<std::size_t> positions = par.take_shard(all_positions);
    if (positions.empty()) continue;
    std::vector<std::size_t> idx;
    for (std::size_t k : positions) idx.push_back(split[k]);
    const data::Padded<std::int64_t> b = data::pad_ids(ids, idx);
    const IndexArray y = labels_of(d, idx);
    const Var<float> logits = model.forward(b);
    s.loss += cross_entropy(logits, y, {.reduction = Reduction::Sum}).item();
    const Array<float>& v = logits.value();
    const std::size_t C = v.shape(1);
    for (std::size_t j = 0; j < idx.size(); ++j) {
      const float* row = v.data() + j * C;
      const auto p = static_cast<std::int64_t>(std::max_element(row, row + C) - row);
      s.predicted[positions[j]] = p;
      correct += p == y(j);
    }
  }
  if (par.size() > 1) {  // [loss, correct, predicted + 1 (0 where another rank predicted)]
    std::vector<double> sums(2 + split.size(), 0.0);
    sums[0] = s.loss, sums[1] = static_cast<double>(correct);
    for (std::size_t k = 0; k < split.size(); ++k)
      sums[2 + k] = static_cast<double>(s.predicted[k] + 1);
    par.sum(sums);
    s.loss = sums[0], correct = static_cast<std::size_t>(sums[1]);
    for (std::size_t k = 0; k < split.size(); ++k)
      s.predicted[k] = static_cast<std::int64_t>(sums[2 + k]) - 1;
  }
  s.loss /= static_cast<double>(split.size());
  s.accuracy = static_cast<double>(correct) / static_cast<double>(split.size());
  model.train();
  return s;
}

void print_confusion(const Dataset& d, const std::vector<std::size_t>& split, const Score& s) {
  const std::size_t C = d.classes.size();
  std::vector<std::vector<std::size_t>> m(C, std::vector<std::size_t>(C, 0));
  for (std::size_t k = 0; k < split.size(); ++k)
    ++m[static_cast<std::size_t>(d.labels[split[k]])][static_cast<std::size_t>(s.predicted[k])];
  std::size_t w = 6;
  for (const auto& c : d.classes) w = std::max(w, c.size() + 2);
  w = std::min<std::size_t>(w, 14);
  auto cut = [&](const std::string& s) { return s.size() > w - 1 ? s.substr(0, w - 1) : s; };
  fmt::print("confusion matrix on the test split (rows: true class, columns: predicted):\n");
  std::string head = fmt::format("  {:>{}}", "", w);
  for (const auto& c : d.classes) head += fmt::format("{:>{}}", cut(c), w);
  fmt::print("{}  {:>7}\n", head, "recall");
  for (std::size_t i = 0; i < C; ++i) {
    std::string row = fmt::format("  {:>{}}", cut(d.classes[i]), w);
    std::size_t total = 0;
    for (std::size_t j = 0; j < C; ++j) row += fmt::format("{:>{}}", m[i][j], w), total += m[i][j];
    fmt::print("{}  {:>6.1f}%\n", row, total ? 100.0 * m[i][i] / total : 0.0);
  }
}

// Parity: accuracy for each sequence length, to see where a cell stops coping.
void print_by_length(const Dataset& d, const std::vector<std::size_t>& split, const Score& s) {
  std::size_t longest = 1;
  for (std::size_t k : split) longest = std::max(longest, d.tokens[k].size());
  const std::size_t width = (longest + 19) / 20;                  // at most 20 columns
  std::map<std::size_t, std::pair<std::size_t, std::size_t>> by;  // bucket -> (correct, total)
  for (std::size_t k = 0; k < split.size(); ++k) {
    auto& [ok, n] = by[(d.tokens[split[k]].size() - 1) / width];
    ok += s.predicted[k] == d.labels[split[k]];
    ++n;
  }
  fmt::print("test accuracy by length (chance 50%):\n");
  std::string lens = "  length    ", accs = "  accuracy %";
  for (const auto& [bucket, cn] : by) {
    const std::size_t lo = bucket * width + 1, hi = lo + width - 1;
    const std::string label = width == 1 ? std::to_string(lo) : fmt::format("{}-{}", lo, hi);
    const std::size_t col = std::max<std::size_t>(5, label.size() + 1);
    lens += fmt::format("{:>{}}", label, col);
    accs += fmt::format("{:>{}.0f}", 100.0 * cn.first / cn.second, col);
  }
  fmt::print("{}\n{}\n", lens, accs);
}

// ---- Training ----------------------------------------------------------------------------------

int train(ex::Parallel& par, int argc, char** argv) {
  ex::Flags flags(
      "classify",
      "A recurrent network classifies sequences from its last hidden state.\n"
      "Default task: which language a word is from (en de fr es it nl), letter by letter,\n"
      "from Debian's word lists. Words to classify after training go at the end (after\n"
      "`--` when one could be read as a flag) or in --words: `classify -- Haus maison`.\n"
      "--task parity: is the number of 1s in a bit string odd? Compare --cell rnn/gru/lstm\n"
      "as --length grows (parity trains 10 epochs unless --epochs is given).\n"
      "--data FILE: any file of 'label<TAB>text' lines.\n"
      "Under `mpirun -np N` it trains data-parallel: each rank takes 1/N of every batch.");
  ex::declare_common_flags(flags, {.epochs = 5, .hidden = 128, .layers = 1, .lr = 3e-3});
  flags.add_choice("task", {"language", "parity"}, "language", "what to classify (see above)")
      .add_string("data", "", "classify the 'label<TAB>text' lines of this file instead", "TSV")
      .add_choice("vocab", {"char", "word"}, "char", "--data: read the text as characters or words")
      .add_int("min-count", 1, "--data: tokens seen fewer times in training become <unk>", 1)
      .add_cell("cell", "lstm", "recurrent cell")
      .add_int("embed", 32, "token embedding size", 1)
      .add_int("batch", 64, "minibatch size (over all MPI ranks)", 1)
      .add_string("dict-dir", "/usr/share/dict", "language: where the word lists are", "DIR")
      .add_string("languages", "en,de,fr,es,it,nl", "language: which lists, comma-separated",
                  "LIST")
      .add_int("per-class", 40000, "language: words per language (at most)", 10)
      .add_int("max-len", 0,
               "longest sequence: language 20 letters, --data 200 tokens (longer "
               "lines are cut); 0: that default",
               0)
      .add_int("examples", 20000, "parity: strings generated", 100)
      .add_int("length", 40, "parity: longest string (lengths are uniform from --min-length)", 1,
               1000)
      .add_int("min-length", 1, "parity: shortest string", 1, 1000)
      .add_string("words", "", "comma-separated words to classify after training", "LIST");
  std::vector<std::string> words;  // the words at the end of the command line
  flags.app().add_option("WORDS", words, "words to classify after training");
  // --smoke: a few seconds.
  flags.smoke_default("hidden", "32")
      .smoke_default("epochs", "3")
      .smoke_default("batch", "32")
      .smoke_default("per-class", "300")
      .smoke_default("examples", "2000");
  flags.parse(argc, argv);
  const std::string task = flags.get_string("data").empty() ? flags.get_string("task") : "data";
  if (task == "data" && flags.given("task"))
    throw ex::UsageError("give either --task or --data, not both");
  if (task == "parity" && flags.is_default("epochs")) flags.set_default("epochs", "10");  // --help
  const ex::Common c = ex::common_flags(flags);
  const std::size_t per_class = flags.get_size("per-class"), examples = flags.get_size("examples");
  const std::size_t batch = flags.get_size("batch");
  const std::size_t min_len = flags.get_size("min-length"), max_parity = flags.get_size("length");
  if (min_len > max_parity)
    throw ex::UsageError(fmt::format("--min-length {} is above --length {}", min_len, max_parity));
  std::size_t max_len = flags.get_size("max-len");
  if (max_len == 0) max_len = task == "language" ? 20 : 200;
  ex::setup(c);

  // The data depends only on the seed (its own generator), so a resumed run sees the same split.
  Generator data_gen(c.seed);
  const std::vector<std::string> codes = split_commas(flags.get_string("languages"));
  if (task == "language" && codes.size() < 2) throw ex::UsageError("--languages needs two or more");
  const Dataset d =
      task == "language"
          ? load_languages(flags.get_string("dict-dir"), codes, per_class, max_len, data_gen)
      : task == "parity" ? make_parity(examples, min_len, max_parity, data_gen)
                         : load_tsv(flags.get_string("data"), flags.get_string("vocab") == "word",
                                    max_len, data_gen);

  // The vocabulary comes from the training split only; anything else reads as <unk>.
  std::vector<std::vector<std::string>> train_tokens;
  for (std::size_t i : d.train) train_tokens.push_back(d.tokens[i]);
  const data::Vocab vocab = data::build_vocab(train_tokens, flags.get_size("min-count"));
  std::vector<std::vector<std::int64_t>> ids;
  std::vector<std::size_t> lengths;
  for (const auto& t : d.tokens) {
    ids.push_back(vocab.ids(t));
    lengths.push_back(t.size());
  }

  Classifier model(flags.get_string("cell"), vocab.size(), flags.get_size("embed"), c.hidden,
                   c.layers, d.classes.size());
  auto opt = ex::make_optimizer(c, model.named_parameters());
  const std::vector<Var<float>> params = model.parameters();
  par.data_parallel(params);  // under MPI: rank 0's initial values on every rank
  const double clip = c.clip;
  // The training order; checkpoints save its state. Every rank draws the same global batches.
  Generator shuffle_gen(c.seed + 1);
  const std::unique_ptr<optim::Schedule<float>> schedule = ex::make_schedule(c, *opt);
  const std::string settings =
      flags.settings({"save", "resume", "log", "plot", "threads", "stop-after", "words"});
  ex::RunState st;
  if (!c.resume.empty()) {
    st = ex::resume_run(par.load_checkpoint(c.resume), c.resume, model, *opt, shuffle_gen, settings,
                        par.is_root());
    if (schedule) schedule->set_epoch(st.epoch);
    fmt::print("resumed {} at epoch {} (step {})\n", c.resume, st.epoch, st.step);
  }
  st.settings = settings;
  const std::size_t stop_after = c.stop_after;
  if (!c.resume.empty() && par.is_root()) ex::trim_csv_log(c.log, st.epoch);  // rows of epochs not checkpointed
  ex::CsvLog log(par.is_root() ? c.log : "", {"valid_loss", "valid_accuracy"}, !c.resume.empty());

  std::size_t mean_len = 0;
  for (std::size_t i : d.train) mean_len += lengths[i];
  // Chance: always guessing the test split's most common class (1 / classes when balanced).
  std::vector<std::size_t> per_class_test(d.classes.size(), 0);
  for (std::size_t i : d.test) ++per_class_test[static_cast<std::size_t>(d.labels[i])];
  const double chance =
      100.0 * static_cast<double>(*std::max_element(per_class_test.begin(), per_class_test.end())) /
      static_cast<double>(d.test.size());
  fmt::print(
      "task: {}, {} classes ({}); {} train / {} valid / {} test sequences of {}s (mean "
      "length {:.1f}); vocabulary {} (with <pad>, <unk>); chance (the most common class) {:.1f}%\n",
      d.task, d.classes.size(), fmt::join(d.classes, " "), d.train.size(), d.valid.size(),
      d.test.size(), d.unit, static_cast<double>(mean_len) / d.train.size(), vocab.size(), chance);
  fmt::print(
      "model: embedding {} -> {} {} layer(s) x {} hidden -> linear {}; {} parameters; {} "
      "lr {}, batch {}, {} BLAS thread(s)\n",
      flags.get_size("embed"), flags.get_string("cell"), c.layers, c.hidden, d.classes.size(),
      model.num_parameters(), c.optimizer, opt->lr(), batch, blas_threads());

  std::vector<double> losses;  // every step's loss (smoke mode compares the ends)
  Score valid;
  for (std::size_t epoch = st.epoch + 1; epoch <= c.epochs; ++epoch) {
    ex::Stopwatch clock;
    const auto batches = data::make_batches(d.train, batch, &shuffle_gen, &lengths);
    ex::Progress bar(fmt::format("epoch {}/{}", epoch, c.epochs), batches.size(),
                     par.is_root() ? stderr : nullptr);
    double loss_sum = 0;
    std::size_t seen = 0;
    model.train();
    for (std::size_t s = 0; s < batches.size(); ++s) {
      const std::size_t n = batches[s].size();
      const std::vector<std::size_t> mine = par.take_shard(batches[s]);  // all of it alone
      opt->zero_grad();
      double l = 0;  // this rank's mean loss
      if (!mine.empty()) {
        const data::Padded<std::int64_t> b = data::pad_ids(ids, mine);
        Var<float> loss = cross_entropy(model.forward(b), labels_of(d, mine));
        l = loss.item();
        par.weight_loss(loss, mine.size(), n).backward();
      }
      par.allreduce_gradients();  // the global batch's gradient, on every rank
      if (clip > 0) optim::clip_grad_norm(params, clip);
      opt->step();
      l = par.global_mean(l, mine.size(), n);
      losses.push_back(l);
      loss_sum += l * static_cast<double>(batches[s].size());
      seen += batches[s].size();
      ++st.step;
      bar.update(s + 1, loss_sum / static_cast<double>(seen), seen);
    }
    bar.finish();
    if (schedule) schedule->step();
    const double train_s = clock.seconds();
    st.seconds += train_s;
    st.epoch = epoch;
    valid = evaluate(model, d, ids, d.valid, par);
    st.best = std::max(st.best, valid.accuracy);
    const double train_loss = loss_sum / static_cast<double>(seen);
    fmt::print(
        "epoch {:>2}/{}  loss {:.4f}  valid: loss {:.4f}  accuracy {:6.2f}%  {} seq/s  {} "
        "({} total)\n",
        epoch, c.epochs, train_loss, valid.loss, 100 * valid.accuracy,
        ex::format_count(static_cast<double>(seen) / train_s), ex::format_duration(clock.seconds()),
        ex::format_duration(st.seconds));
    std::fflush(stdout);
    log.row(epoch, st.step, train_loss, {valid.loss, valid.accuracy}, st.seconds);
    if (!c.save.empty() && par.is_root()) ex::save_run(c.save, model, *opt, shuffle_gen, st);
    if (epoch == stop_after) {
      fmt::print("stopped after epoch {} (--stop-after){}\n", epoch,
                 c.save.empty() ? "" : fmt::format("; continue with --resume {}", c.save));
      return 0;
    }
  }
  if (losses.empty())
    fmt::print("nothing to train: the run is already at epoch {} of {}\n", st.epoch, c.epochs);

  const Score test = evaluate(model, d, ids, d.test, par);
  fmt::print(
      "result: test accuracy {:.2f}% on {} held-out sequences ({} classes, chance {:.1f}%), "
      "loss {:.4f}, after {} epochs ({} of training)\n",
      100 * test.accuracy, d.test.size(), d.classes.size(), chance, test.loss, st.epoch,
      ex::format_duration(st.seconds));
  if (d.classes.size() <= 12) print_confusion(d, d.test, test);
  if (task == "parity") print_by_length(d, d.test, test);

  // Words from the command line: at its end, and in --words.
  for (std::string& w : split_commas(flags.get_string("words"))) words.push_back(std::move(w));
  if (!words.empty() && par.is_root()) {
    NoGradGuard no_grad;
    model.eval();
    fmt::print("\nclassified:\n");
    for (const std::string& w : words) {
      std::vector<std::string> toks = task == "data" && flags.get_string("vocab") == "word"
                                          ? data::split_words(w)
                                          : word_tokens(w, task == "language");
      if (toks.empty()) continue;
      if (toks.size() > max_len) toks.resize(max_len);
      std::size_t unknown = 0;
      for (const auto& t : toks) unknown += !vocab.contains(t);
      const data::Padded<std::int64_t> b = data::pad_ids({vocab.ids(toks)}, {0});
      const Var<float> p = softmax(model.forward(b), -1);
      std::vector<std::size_t> order(d.classes.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(),
                [&](auto a, auto b) { return p.value()(0, a) > p.value()(0, b); });
      std::size_t name_w = 0;
      for (const auto& n : d.class_names) name_w = std::max(name_w, n.size());
      std::string line = fmt::format("  {:<16} {:<{}}", w, d.class_names[order[0]], name_w);
      for (std::size_t k = 0; k < std::min<std::size_t>(3, order.size()); ++k)
        line += fmt::format("{}{} {:.0f}%", k ? "  " : "   (", d.classes[order[k]],
                            100 * p.value()(0, order[k]));
      line += ")";
      if (unknown) line += fmt::format("  [{} unknown {}(s)]", unknown, d.unit);
      fmt::print("{}\n", line);
    }
  }
  if (!c.plot.empty() && par.is_root())
    ex::plot_curve(c.log, c.plot, fmt::format("classify {}", d.task),
                   {{"cross-entropy (nats per sequence)",
                     {{"train_loss", "train"}, {"valid_loss", "validation"}}},
                    {"accuracy (%)", {{"valid_accuracy", "validation", 100}}}});
  // a resumed run saw only the end of the curve
  if (c.smoke && c.resume.empty()) ex::check_loss_history(losses, 4, 10);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_main(argc, argv, train);
}
