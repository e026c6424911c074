// What every example shares: flags, progress, the CSV curve and its plot, checkpoints that
// resume exactly, fast float settings and a main() that never lets an exception escape.
//
//     int train(int argc, char** argv) {
//       ex::Flags flags("copy", "An LSTM learns to copy a sequence.");
//       ex::declare_common_flags(flags, {.epochs = 10, .hidden = 64});
//       flags.add_int("batch", 32, "minibatch size", 1).smoke_default("batch", "8");
//       flags.parse(argc, argv);                     // CLI11; --help prints and exits 0
//       const ex::Common c = ex::common_flags(flags); // and ex::setup(c): FTZ, threads, seed
//       ...
//     }
//     int main(int argc, char** argv) { return ex::run_main(argc, argv, train); }
//
// Exit codes: 0 success (and --help), 1 an error during the run ("error: <what>"), 2 a usage
// error (an unknown flag or a bad value, "error: <what> (see --help)").
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <xgrad/xgrad.hpp>

namespace ex {

// ---- Errors and main ---------------------------------------------------------------------------

/// A bad command line: unknown flag, missing or malformed value. run_main exits 2 on it.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Thrown to end the program early with a given exit code and no message (--help does this).
struct Exit {
  int code = 0;
};

/// Runs `body`, turning every exception into one line on stderr: UsageError exits 2, Exit its
/// code, anything else prints "error: <what>" and exits 1.
int run_main(int argc, char** argv, int (*body)(int, char**));

/// What run_main does with an exception: its exit code and its "error: ..." text (empty for
/// Exit, which prints nothing).
struct ExitStatus {
  int code = 1;
  std::string message;
};
/// The ExitStatus of the exception being handled; call it only inside a catch block.
ExitStatus current_exit_status();

// ---- Flags --------------------------------------------------------------------------------------

/// The examples' command lines, parsed by CLI11 (Debian's libcli11-dev): `--name value`,
/// `--name=value` and `--switch`, with CLI11's help and error messages. Every flag has a type, a
/// default and a help line; parse() checks each value against its type (and range or choices), so
/// the getters never fail on user input. `--smoke` (a common flag) gives the flags registered with
/// smoke_default() smaller values, but only those the user did not give.
///
///     ex::Flags f("seq2seq", "An LSTM learns addition.");
///     f.add_int("batch", 128, "minibatch size", /*min=*/1).smoke_default("batch", "64");
///     f.add_choice("task", {"addition", "reverse"}, "addition", "what to learn");
///     f.parse(argc, argv);                  // --help prints the help and exits 0
///     std::size_t batch = f.get_size("batch");
///
/// app() is the CLI::App itself, for what these helpers do not cover (positional words).
class Flags {
 public:
  Flags(std::string program, std::string summary);
  ~Flags();
  Flags(const Flags&) = delete;
  Flags& operator=(const Flags&) = delete;

  /// An integer in [min, max].
  Flags& add_int(const std::string& name, std::int64_t def, const std::string& help,
                 std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                 std::int64_t max = std::numeric_limits<std::int64_t>::max());
  /// A finite number in [min, max].
  Flags& add_double(const std::string& name, double def, const std::string& help,
                    double min = -std::numeric_limits<double>::max(),
                    double max = std::numeric_limits<double>::max());
  /// Any text ("" for "not given", e.g. an optional path).
  Flags& add_string(const std::string& name, const std::string& def, const std::string& help,
                    const std::string& value_name = "TEXT");
  /// One of `choices`.
  Flags& add_choice(const std::string& name, const std::vector<std::string>& choices,
                    const std::string& def, const std::string& help);
  /// A recurrent cell by name, from nn::cell_catalog() (plus "rnn" for "rnn_tanh"); the help
  /// ends with the list of cells and their papers. Read it with get_string().
  Flags& add_cell(const std::string& name, const std::string& def, const std::string& help);
  /// A switch: off unless given, takes no value.
  Flags& add_switch(const std::string& name, const std::string& help);
  /// Changes the default of a declared flag (an example tuning a common flag). Checked like a
  /// value from the command line.
  Flags& set_default(const std::string& name, const std::string& value);
  /// The value `--smoke` gives the flag when the command line does not (shown in --help).
  Flags& smoke_default(const std::string& name, const std::string& value);

  /// Parses argv[1..]; throws UsageError with CLI11's message, or Exit{0} after printing --help.
  void parse(int argc, const char* const* argv);

  std::int64_t get_int(const std::string& name) const;
  /// get_int for a flag declared with min >= 0.
  std::size_t get_size(const std::string& name) const;
  double get_double(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;  // also choices
  bool get_switch(const std::string& name) const;
  /// Whether the flag was given on the command line.
  bool given(const std::string& name) const;
  /// Whether the flag holds its declared default: neither given nor set by --smoke.
  bool is_default(const std::string& name) const;

  /// "name=value" for every flag but the `ignored` ones, space-separated, in declaration order:
  /// what a checkpoint records so that a resume with other settings can be pointed out.
  std::string settings(const std::vector<std::string>& ignored = {"save", "resume", "log", "plot",
                                                                  "threads", "stop-after"}) const;

  /// The help text (CLI11's): usage line, summary, then one line per flag with its default.
  std::string help() const;
  const std::string& program() const { return program_; }
  CLI::App& app() { return *app_; }

 private:
  enum class Kind { Int, Double, String, Choice, Switch };
  struct Flag {
    std::string name, help;
    Kind kind = Kind::String;
    std::string value, def, smoke;  // as text, validated; smoke: "" when --smoke leaves it
    bool switch_on = false;         // a switch's value
    bool from_smoke = false;
    CLI::Option* option = nullptr;
    std::function<std::string(const std::string&)> check;  // "" when the value is fine
  };
  Flag& declare(const std::string& name, Kind kind, const std::string& help,
                std::function<std::string(const std::string&)> check,
                const std::string& value_name);
  Flag& find(const std::string& name);
  const Flag& find(const std::string& name, Kind kind) const;
  void describe(Flag& f);

  std::string program_, summary_, footer_;
  std::unique_ptr<CLI::App> app_;
  std::vector<std::unique_ptr<Flag>> flags_;  // in declaration order (the help lists them so)
};

/// The registry name of a --cell value ("rnn", the examples' older name, is "rnn_tanh").
inline std::string cell_name(const std::string& flag) {
  return flag == "rnn" ? "rnn_tanh" : flag;
}

// ---- The flags every example has ----------------------------------------------------------------

/// Per-example defaults of the common flags.
struct CommonDefaults {
  std::int64_t epochs = 10;
  std::int64_t hidden = 128;
  std::int64_t layers = 1;
  double lr = 1e-3;
  std::string optimizer = "adam";
  std::int64_t seed = 42;
};

/// Declares the flags every example has, with these defaults: the model's --hidden --layers
/// (model flags shared by the examples go here), training's --epochs --lr --optimizer --schedule
/// --clip --seed --threads, and --save --resume --stop-after --log --plot --smoke.
/// --threads defaults to 1 everywhere: the examples' matrices are small, one BLAS thread is as
/// fast, and the numbers then do not depend on the machine's core count.
void declare_common_flags(Flags& flags, const CommonDefaults& defaults = {});

/// The common flags' values.
struct Common {
  std::size_t epochs = 0, hidden = 0, layers = 0;
  double lr = 0, clip = 0;
  std::string optimizer;  // "adam" or "sgd"
  std::string schedule;   // "cosine" or "constant"
  std::uint64_t seed = 0;
  int threads = 1;  // BLAS threads; 0 leaves OpenBLAS's choice (OPENBLAS_NUM_THREADS)
  std::string save, resume, log, plot;  // "" when not given
  std::size_t stop_after = 0;           // 0: run every epoch
  bool smoke = false;  // tiny sizes and a few steps; the run must end with a lower loss
};
Common common_flags(const Flags& flags);

/// What every example does first: flush denormals to zero (xg::set_flush_denormals), BLAS
/// threads, xg::manual_seed(seed).
void setup(const Common& c);

/// Adam (betas 0.9, 0.999) or SGD with momentum 0.9 and Nesterov, both at rate c.lr.
std::unique_ptr<xg::optim::Optimizer<float>> make_optimizer(const Common& c,
                                                            xg::optim::NamedParams<float> params);

/// --schedule cosine: cosine annealing from --lr to --lr/100 over --epochs; constant: none.
std::unique_ptr<xg::optim::Schedule<float>> make_schedule(const Common& c,
                                                          xg::optim::Optimizer<float>& opt);

// ---- Progress -----------------------------------------------------------------------------------

/// A progress line for one epoch (or any long loop): epoch, step/total, loss, examples per second
/// and time left. On a terminal it redraws in place (at most 10 times a second); otherwise it
/// prints a plain line every `plain_every_s` seconds, so logs stay short. With `out` null it
/// prints nothing (the ranks other than 0 of a data-parallel run).
///
///     ex::Progress bar(fmt::format("epoch {}/{}", e, epochs), steps);
///     for (...) { ...; bar.update(step + 1, running_loss, examples_done); }
///     bar.finish();                      // erases the line on a terminal
class Progress {
 public:
  Progress(std::string label, std::size_t total, std::FILE* out = stderr,
           double plain_every_s = 10.0);
  ~Progress() { finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(std::size_t done, double loss, std::size_t examples);
  void finish();
  /// Whether output is a terminal (and lines are redrawn in place).
  bool interactive() const { return tty_; }

 private:
  std::string line(std::size_t done, double loss, std::size_t examples, double elapsed,
                   bool with_bar) const;
  std::string label_;
  std::size_t total_;
  std::FILE* out_;
  double plain_every_s_;
  bool tty_, drawn_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_;
  double last_draw_ = -1e9;
};

/// "1:05" / "1:02:03".
std::string format_duration(double seconds);
/// "843", "12.4k", "1.2M".
std::string format_count(double n);

/// Seconds since construction (or since a reset).
class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  void reset() { t0_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// ---- The training curve -------------------------------------------------------------------------

/// The training curve as CSV: epoch,step,train_loss,<metrics...>,seconds, one row per call,
/// flushed at once. Disabled (rows are dropped) when constructed with an empty path. With
/// `append` (a resumed run) rows go after an existing file's rows and the header is not repeated.
class CsvLog {
 public:
  CsvLog() = default;
  CsvLog(const std::string& path, std::vector<std::string> metric_names, bool append = false);
  bool enabled() const { return file_ != nullptr; }
  const std::string& path() const { return path_; }
  /// `metrics` in the order of `metric_names`; NaN is written as an empty cell.
  void row(std::size_t epoch, std::size_t step, double train_loss,
           const std::vector<double>& metrics, double seconds);

 private:
  std::string path_;
  std::vector<std::string> names_;
  std::shared_ptr<std::FILE> file_;
};

/// Before a resumed run appends to its CSV log: drops the rows after `last_epoch` (the
/// checkpoint's), written by a run killed between its CSV row and its checkpoint, and a row cut
/// short, so no epoch appears twice. Rewrites the file atomically; a missing file is left alone.
void trim_csv_log(const std::string& path, std::size_t last_epoch);

/// One line of a plot: a CSV column, its legend title, a factor applied to it (100 for a fraction
/// drawn as %), and whether it is a baseline (drawn dashed, without points).
struct PlotLine {
  std::string column, title;
  double scale = 1;
  bool baseline = false;
};
/// One panel: a quantity with its unit on the y axis ("bits per character"), and its lines
/// (train and validation of that quantity, its baselines).
struct PlotPanel {
  std::string ylabel;
  std::vector<PlotLine> lines;
};

/// Plots a CsvLog file to a PNG with gnuplot (pngcairo, else png): one panel per quantity, one
/// above the other, each against the epoch (whole-number ticks), with a margin above and below
/// the lines so that a flat baseline never sits on the frame. Prints what it did; when gnuplot is
/// not on PATH it says the plot was skipped. Returns whether the PNG was written. Throws
/// std::logic_error when a panel names a column the CSV does not have.
bool plot_curve(const std::string& csv_path, const std::string& png_path, const std::string& title,
                const std::vector<PlotPanel>& panels);

/// Whether an executable `name` is on PATH.
bool on_path(const std::string& name);

// ---- Checkpoints --------------------------------------------------------------------------------

/// Where a run stands, saved with the model, optimizer and generator.
struct RunState {
  std::size_t epoch = 0;  // completed epochs
  std::size_t step = 0;   // completed optimizer steps
  double seconds = 0;     // training time so far (the CSV's time axis)
  double best = 0;        // an example-defined number (best metric so far, ...)
  std::string settings;   // Flags::settings() of the run that saved it
};

/// Saves model state_dict, optimizer state_dict, `gen`'s state and `state` to one .npz, atomically.
/// Everything a run's future depends on is in there, so resume_run continues bit for bit.
void save_run(const std::string& path, const xg::nn::Module<float>& model,
              const xg::optim::Optimizer<float>& opt, const xg::Generator& gen,
              const RunState& state);

/// Loads what save_run wrote into `model` (strict: every name and shape must match), `opt` and
/// `gen`; returns the saved RunState. Errors name the file and what disagreed. When `settings`
/// (this run's Flags::settings()) differs from the saved run's, prints a warning naming the
/// flags that changed: the run continues, but will not match an uninterrupted one.
RunState resume_run(const std::string& path, xg::nn::Module<float>& model,
                    xg::optim::Optimizer<float>& opt, xg::Generator& gen,
                    const std::string& settings = "");
/// The same from a checkpoint already read from `path` (Parallel::load_checkpoint sends rank 0's
/// file to every rank); `warn` false leaves out the warning about changed settings.
RunState resume_run(const xg::Checkpoint& ck, const std::string& path, xg::nn::Module<float>& model,
                    xg::optim::Optimizer<float>& opt, xg::Generator& gen,
                    const std::string& settings = "", bool warn = true);

// ---- Smoke mode ---------------------------------------------------------------------------------

/// Throws (exit 1) unless `last` is finite and below `first` by at least `min_ratio`
/// (last < first * (1 - min_ratio)). Prints the verdict either way.
void check_loss_went_down(double first, double last, double min_ratio = 0.05);
/// The same on a whole history: the mean of the first k losses against the mean of the last k,
/// k = min(max_k, size / 4). Needs at least `min_steps` losses.
void check_loss_history(const std::vector<double>& losses, std::size_t min_steps,
                        std::size_t max_k);

}  // namespace ex
