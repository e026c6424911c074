#include "common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

namespace ex {

// ---- Errors and main ---------------------------------------------------------------------------

ExitStatus current_exit_status() {
  try {
    throw;
  } catch (const Exit& e) {
    return {e.code, ""};
  } catch (const UsageError& e) {
    return {2, fmt::format("{} (see --help)", e.what())};
  } catch (const std::exception& e) {
    return {1, e.what()};
  } catch (...) {
    return {1, "unknown exception"};
  }
}

int run_main(int argc, char** argv, int (*body)(int, char**)) {
  try {
    return body(argc, argv);
  } catch (...) {
    const ExitStatus s = current_exit_status();
    std::fflush(stdout);
    if (!s.message.empty()) std::fprintf(stderr, "error: %s\n", s.message.c_str());
    return s.code;
  }
}

// ---- Flags --------------------------------------------------------------------------------------

namespace {
std::string check_int(const std::string& name, const std::string& v, std::int64_t min,
                      std::int64_t max) {
  std::int64_t x = 0;
  const char* end = v.data() + v.size();
  auto [p, ec] = std::from_chars(v.data(), end, x);
  if (v.empty() || ec != std::errc() || p != end)
    return fmt::format("--{} expects an integer, got '{}'", name, v);
  if (x < min || x > max) {
    if (max == std::numeric_limits<std::int64_t>::max())
      return fmt::format("--{} must be at least {}, got {}", name, min, x);
    return fmt::format("--{} must be in [{}, {}], got {}", name, min, max, x);
  }
  return "";
}

std::string check_double(const std::string& name, const std::string& v, double min, double max) {
  char* end = nullptr;
  const double x = v.empty() ? 0.0 : std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x))
    return fmt::format("--{} expects a number, got '{}'", name, v);
  if (x < min || x > max) {
    if (max == std::numeric_limits<double>::max())
      return fmt::format("--{} must be at least {}, got {}", name, min, x);
    return fmt::format("--{} must be in [{}, {}], got {}", name, min, max, x);
  }
  return "";
}

// CLI11 puts "--name: " before a validator's message; ours already names the flag.
std::string strip_option_prefix(std::string what) {
  const auto colon = what.find(": --");
  if (what.rfind("--", 0) == 0 && colon != std::string::npos) what.erase(0, colon + 2);
  return what;
}
}  // namespace

Flags::Flags(std::string program, std::string summary)
    : program_(std::move(program)),
      summary_(std::move(summary)),
      app_(std::make_unique<CLI::App>(summary_, program_)) {
  app_->get_formatter()->column_width(34);
  app_->get_formatter()->label("REQUIRED", "");
  footer_ = "Exit status: 0 success, 1 an error during the run, 2 a bad command line.\n";
  app_->footer(footer_);
}

Flags::~Flags() = default;

Flags::Flag& Flags::declare(const std::string& name, Kind kind, const std::string& help,
                            std::function<std::string(const std::string&)> check,
                            const std::string& value_name) {
  if (name.empty() || name == "help")
    throw std::logic_error(fmt::format("flag name '{}' is reserved", name));
  for (const auto& f : flags_)
    if (f->name == name) throw std::logic_error(fmt::format("flag --{} is declared twice", name));
  auto f = std::make_unique<Flag>();
  f->name = name;
  f->kind = kind;
  f->help = help;
  f->check = std::move(check);
  if (kind == Kind::Switch) {
    f->option = app_->add_flag("--" + name, f->switch_on, help);
  } else {
    Flag* raw = f.get();
    f->option = app_->add_option("--" + name, f->value, help);
    f->option->type_name(value_name);
    f->option->check(
        CLI::Validator([raw](std::string& v) { return raw->check(v); }, "", "xgrad-check"));
  }
  flags_.push_back(std::move(f));
  return *flags_.back();
}

void Flags::describe(Flag& f) {
  if (f.kind == Kind::Switch) return;
  std::string d = f.help;
  if (!f.def.empty()) d += fmt::format(" (default {}", f.def);
  if (!f.smoke.empty()) d += fmt::format("{}--smoke: {}", f.def.empty() ? " (" : "; ", f.smoke);
  if (!f.def.empty() || !f.smoke.empty()) d += ")";
  f.option->description(d);
}

Flags& Flags::add_int(const std::string& name, std::int64_t def, const std::string& help,
                      std::int64_t min, std::int64_t max) {
  declare(
      name, Kind::Int, help,
      [name, min, max](const std::string& v) { return check_int(name, v, min, max); }, "N");
  return set_default(name, std::to_string(def));
}

Flags& Flags::add_double(const std::string& name, double def, const std::string& help, double min,
                         double max) {
  declare(
      name, Kind::Double, help,
      [name, min, max](const std::string& v) { return check_double(name, v, min, max); }, "X");
  return set_default(name, fmt::format("{}", def));
}

Flags& Flags::add_string(const std::string& name, const std::string& def, const std::string& help,
                         const std::string& value_name) {
  declare(
      name, Kind::String, help, [](const std::string&) { return std::string(); }, value_name);
  return set_default(name, def);
}

Flags& Flags::add_choice(const std::string& name, const std::vector<std::string>& choices,
                         const std::string& def, const std::string& help) {
  declare(
      name, Kind::Choice, help,
      [name, choices](const std::string& v) {
        if (std::find(choices.begin(), choices.end(), v) != choices.end()) return std::string();
        return fmt::format("--{} must be one of {}, got '{}'", name, fmt::join(choices, ", "), v);
      },
      fmt::format("{}", fmt::join(choices, "|")));
  return set_default(name, def);
}

Flags& Flags::add_cell(const std::string& name, const std::string& def, const std::string& help) {
  std::vector<std::string> names = xg::nn::cell_names();
  names.push_back("rnn");                      // the examples' older name of rnn_tanh
  if (def == "same") names.push_back("same");  // as another cell flag (seq2seq's --decoder-cell)
  add_choice(name, names, def, help + " (cells listed below)");
  flags_.back()->option->type_name("CELL");
  if (footer_.find("\ncells ") == std::string::npos) {
    footer_ += "\ncells (nn/cells/ and the README's gallery):\n";
    std::size_t width = 0;
    for (const auto& c : xg::nn::cell_catalog()) width = std::max(width, c.name.size());
    for (const auto& c : xg::nn::cell_catalog())
      footer_ += fmt::format("  {:<{}}  {}\n", c.name, width, c.about);
    app_->footer(footer_);
  }
  return *this;
}

Flags& Flags::add_switch(const std::string& name, const std::string& help) {
  declare(name, Kind::Switch, help, nullptr, "");
  return *this;
}

Flags::Flag& Flags::find(const std::string& name) {
  for (auto& f : flags_)
    if (f->name == name) return *f;
  throw std::logic_error(fmt::format("flag --{} was never declared", name));
}

Flags& Flags::set_default(const std::string& name, const std::string& value) {
  Flag& f = find(name);
  if (f.kind == Kind::Switch) throw std::logic_error("a switch has no default to set");
  if (const std::string err = f.check(value); !err.empty())
    throw std::logic_error("default: " + err);
  f.value = f.def = value;
  describe(f);
  return *this;
}

Flags& Flags::smoke_default(const std::string& name, const std::string& value) {
  Flag& f = find(name);
  if (f.kind == Kind::Switch) throw std::logic_error("a switch has no smoke default");
  if (const std::string err = f.check(value); !err.empty())
    throw std::logic_error("smoke default: " + err);
  f.smoke = value;
  describe(f);
  return *this;
}

void Flags::parse(int argc, const char* const* argv) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(help().c_str(), stdout);
    throw Exit{0};
  } catch (const CLI::ParseError& e) {
    throw UsageError(strip_option_prefix(e.what()));
  }
  if (get_switch("smoke"))
    for (auto& f : flags_)
      if (!f->smoke.empty() && f->option->count() == 0) {
        f->value = f->smoke;
        f->from_smoke = true;
      }
}

const Flags::Flag& Flags::find(const std::string& name, Kind kind) const {
  for (const auto& f : flags_)
    if (f->name == name) {
      const bool ok = f->kind == kind || (kind == Kind::String && f->kind == Kind::Choice);
      if (!ok) throw std::logic_error(fmt::format("flag --{} read with the wrong type", name));
      return *f;
    }
  throw std::logic_error(fmt::format("flag --{} was never declared", name));
}

std::int64_t Flags::get_int(const std::string& name) const {
  return std::stoll(find(name, Kind::Int).value);
}

std::size_t Flags::get_size(const std::string& name) const {
  const std::int64_t v = get_int(name);
  if (v < 0) throw std::logic_error(fmt::format("get_size(--{}): negative value {}", name, v));
  return static_cast<std::size_t>(v);
}

double Flags::get_double(const std::string& name) const {
  return std::strtod(find(name, Kind::Double).value.c_str(), nullptr);
}

const std::string& Flags::get_string(const std::string& name) const {
  return find(name, Kind::String).value;
}

bool Flags::get_switch(const std::string& name) const {
  return find(name, Kind::Switch).switch_on;
}

bool Flags::given(const std::string& name) const {
  for (const auto& f : flags_)
    if (f->name == name) return f->option->count() > 0;
  throw std::logic_error(fmt::format("flag --{} was never declared", name));
}

bool Flags::is_default(const std::string& name) const {
  for (const auto& f : flags_)
    if (f->name == name) return f->option->count() == 0 && !f->from_smoke;
  throw std::logic_error(fmt::format("flag --{} was never declared", name));
}

std::string Flags::settings(const std::vector<std::string>& ignored) const {
  std::string s;
  for (const auto& f : flags_) {
    if (std::find(ignored.begin(), ignored.end(), f->name) != ignored.end()) continue;
    const std::string v = f->kind == Kind::Switch ? (f->switch_on ? "true" : "false") : f->value;
    s += (s.empty() ? "" : " ") + f->name + "=" + v;
  }
  return s;
}

std::string Flags::help() const {
  return app_->help();
}

// ---- The flags every example has ----------------------------------------------------------------

void declare_common_flags(Flags& flags, const CommonDefaults& d) {
  // The model. Model flags that every example shares are declared here.
  flags.add_int("hidden", d.hidden, "hidden units per recurrent layer", 1)
      .add_int("layers", d.layers, "recurrent layers", 1, 16)
      // Training.
      .add_int("epochs", d.epochs, "epochs to train (a resumed run stops at the same epoch)", 1)
      .add_double("lr", d.lr, "learning rate", 0.0)
      .add_choice("optimizer", {"adam", "sgd"}, d.optimizer,
                  "adam, or sgd with Nesterov momentum 0.9")
      .add_choice("schedule", {"cosine", "constant"}, "cosine",
                  "learning rate over the epochs: cosine decays from --lr to --lr/100")
      .add_double("clip", 1.0, "clip the gradient norm to this (0: no clipping)", 0.0)
      .add_int("seed", d.seed,
               "seed for data, initialisation and shuffling (same seed, same numbers)", 0)
      .add_int("threads", 1, "BLAS threads; 0 keeps OpenBLAS's choice or OPENBLAS_NUM_THREADS", 0,
               1024)
      // Files and runs.
      .add_string("save", "", "save a checkpoint after every epoch (atomically) to this .npz",
                  "CKPT")
      .add_string("resume", "", "continue the run saved in this checkpoint", "CKPT")
      .add_int("stop-after", 0, "end after this epoch, as if interrupted (0: run every epoch)", 0)
      .add_string("log", "", "write the training curve as CSV", "CSV")
      .add_string("plot", "", "plot the curve to this PNG with gnuplot (needs --log)", "PNG")
      .add_switch("smoke",
                  "a run of a few seconds for tests: smaller defaults (shown as --smoke: ...) "
                  "for the flags not given; fails unless the loss goes down");
}

Common common_flags(const Flags& f) {
  Common c;
  c.epochs = f.get_size("epochs");
  c.hidden = f.get_size("hidden");
  c.layers = f.get_size("layers");
  c.lr = f.get_double("lr");
  c.clip = f.get_double("clip");
  c.optimizer = f.get_string("optimizer");
  c.schedule = f.get_string("schedule");
  c.seed = static_cast<std::uint64_t>(f.get_int("seed"));
  c.threads = static_cast<int>(f.get_int("threads"));
  c.save = f.get_string("save");
  c.resume = f.get_string("resume");
  c.stop_after = f.get_size("stop-after");
  c.log = f.get_string("log");
  c.plot = f.get_string("plot");
  c.smoke = f.get_switch("smoke");
  if (!c.plot.empty() && c.log.empty())
    throw UsageError("--plot draws the --log CSV: give --log too");
  return c;
}

void setup(const Common& c) {
  xg::set_flush_denormals(true);
  if (c.threads > 0) xg::set_blas_threads(c.threads);
  xg::manual_seed(c.seed);
}

std::unique_ptr<xg::optim::Optimizer<float>> make_optimizer(const Common& c,
                                                            xg::optim::NamedParams<float> params) {
  namespace optim = xg::optim;
  if (c.optimizer == "sgd")
    return std::make_unique<optim::SGD<float>>(
        std::move(params), optim::SGDOptions(c.lr).momentum(0.9).nesterov(true));
  return std::make_unique<optim::Adam<float>>(std::move(params), optim::AdamOptions(c.lr));
}

std::unique_ptr<xg::optim::Schedule<float>> make_schedule(const Common& c,
                                                          xg::optim::Optimizer<float>& opt) {
  if (c.schedule == "cosine")
    return std::make_unique<xg::optim::CosineAnnealingLR<float>>(opt, c.epochs, c.lr / 100);
  return nullptr;
}

// ---- Progress -----------------------------------------------------------------------------------

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<long long>(std::llround(s));
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

std::string format_count(double n) {
  if (n >= 1e6) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 1e4) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

Progress::Progress(std::string label, std::size_t total, std::FILE* out, double plain_every_s)
    : label_(std::move(label)),
      total_(std::max<std::size_t>(total, 1)),
      out_(out),
      plain_every_s_(plain_every_s),
      tty_(out != nullptr && isatty(fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()) {
  // Plain output starts its clock now, so the first line comes after plain_every_s.
  if (!tty_) last_draw_ = 0;
}

std::string Progress::line(std::size_t done, double loss, std::size_t examples, double elapsed,
                           bool with_bar) const {
  const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  std::string bar;
  if (with_bar) {
    const int width = 24, full = static_cast<int>(frac * width);
    bar = "[" + std::string(full, '#') + std::string(width - full, '.') + "] ";
  }
  const double rate = elapsed > 0 ? static_cast<double>(examples) / elapsed : 0.0;
  const double left = done > 0 ? elapsed / static_cast<double>(done) *
                                     static_cast<double>(total_ - std::min(done, total_))
                               : NAN;
  return fmt::format("{} {}{}/{}  loss {:.4f}  {} ex/s  {} left", label_, bar, done, total_, loss,
                     format_count(rate), format_duration(left));
}

void Progress::update(std::size_t done, double loss, std::size_t examples) {
  if (finished_ || !out_) return;
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (tty_) {
    if (t - last_draw_ < 0.1 && done < total_) return;
    std::fprintf(out_, "\r%s\033[K", line(done, loss, examples, t, true).c_str());
    drawn_ = true;
  } else {
    if (t - last_draw_ < plain_every_s_) return;
    std::fprintf(out_, "%s\n", line(done, loss, examples, t, false).c_str());
  }
  std::fflush(out_);
  last_draw_ = t;
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_ && drawn_) {
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
  }
}

// ---- The training curve -------------------------------------------------------------------------

CsvLog::CsvLog(const std::string& path, std::vector<std::string> metric_names, bool append)
    : path_(path), names_(std::move(metric_names)) {
  if (path.empty()) return;
  std::error_code ec;
  const bool keep =
      append && std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0;
  std::FILE* f = std::fopen(path.c_str(), keep ? "a" : "w");
  if (!f) throw xg::IoError(fmt::format("{}: cannot open for writing", path));
  file_.reset(f, [](std::FILE* p) { std::fclose(p); });
  if (!keep) {
    std::string header = "epoch,step,train_loss";
    for (const auto& n : names_) header += "," + n;
    header += ",seconds\n";
    std::fputs(header.c_str(), f);
    std::fflush(f);
  }
}

void trim_csv_log(const std::string& path, std::size_t last_epoch) {
  if (path.empty() || !std::filesystem::exists(path)) return;
  const std::string text = xg::read_file(path);
  std::string kept;
  std::size_t at = 0;
  for (bool header = true; at < text.size(); header = false) {
    const std::size_t nl = text.find('\n', at);
    if (nl == std::string::npos) break;  // a row cut short by a kill
    const std::string line = text.substr(at, nl + 1 - at);
    at = nl + 1;
    std::size_t epoch = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), epoch);
    if (header || (ec == std::errc() && *end == ',' && epoch <= last_epoch)) kept += line;
  }
  if (kept != text) xg::write_file_atomic(path, kept);
}

void CsvLog::row(std::size_t epoch, std::size_t step, double train_loss,
                 const std::vector<double>& metrics, double seconds) {
  if (!file_) return;
  if (metrics.size() != names_.size())
    throw std::logic_error(
        fmt::format("CsvLog::row: {} metrics for {} columns", metrics.size(), names_.size()));
  std::string r = fmt::format("{},{},{:.6g}", epoch, step, train_loss);
  for (double m : metrics) r += std::isnan(m) ? std::string(",") : fmt::format(",{:.6g}", m);
  r += fmt::format(",{:.2f}\n", seconds);
  if (std::fputs(r.c_str(), file_.get()) < 0 || std::fflush(file_.get()) != 0)
    throw xg::IoError(fmt::format("{}: write failed", path_));
}

bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) dir = ".";
    const std::string p = dir + "/" + name;
    if (access(p.c_str(), X_OK) == 0 && !std::filesystem::is_directory(p)) return true;
  }
  return false;
}

namespace {
// A gnuplot single-quoted string: '' stands for one quote.
std::string gp_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("''") : std::string(1, ch);
  return q + "'";
}
std::string sh_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}
}  // namespace

bool plot_curve(const std::string& csv, const std::string& png, const std::string& title,
                const std::vector<PlotPanel>& panels) {
  if (!on_path("gnuplot")) {
    fmt::print("plot: gnuplot is not on PATH; skipped {} (the curve is in {})\n", png, csv);
    return false;
  }
  // The header names the columns; the first column is the epoch.
  std::ifstream in(csv);
  std::string header, row;
  if (!in || !std::getline(in, header))
    throw xg::IoError(fmt::format("{}: cannot read the curve to plot", csv));
  std::vector<std::string> names;
  {
    std::stringstream ss(header);
    for (std::string name; std::getline(ss, name, ',');) names.push_back(name);
  }
  long first = -1, last = -1;
  while (std::getline(in, row)) {
    const long e = std::strtol(row.c_str(), nullptr, 10);
    if (first < 0) first = e;
    first = std::min(first, e);
    last = std::max(last, e);
  }
  if (first < 0) {
    fmt::print("plot: {} has no rows yet; {} not written\n", csv, png);
    return false;
  }
  auto column = [&](const std::string& name) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end())
      throw std::logic_error(fmt::format("plot_curve: {} has no column '{}'", csv, name));
    return static_cast<int>(it - names.begin()) + 1;
  };
  // Whole-number epoch ticks, about 10 of them at most, from the first epoch.
  const long step = std::max(1L, (last - first + 9) / 10);
  const int height = 80 + 300 * static_cast<int>(panels.size());
  std::string script = fmt::format(
      "set datafile separator ','\n"
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n"
      "  set terminal pngcairo size 960,{} noenhanced font ',10'\n"
      "}} else {{\n"
      "  set terminal png size 960,{} noenhanced\n"
      "}}\n"
      "set output {}\n"
      "set key autotitle columnhead outside right top vertical Left reverse\n"
      "set grid\n"
      "set xlabel 'epoch'\n"
      "set xrange [{}:{}]\n"
      "set xtics {}, {}\n"
      "set format x '%.0f'\n"
      "set offsets 0, 0, graph 0.1, graph 0.1\n"
      "set lmargin 12\n"
      "set rmargin 36\n"
      "set multiplot layout {}, 1 title {}\n",
      height, height, gp_quote(png), static_cast<double>(first) - 0.3,
      static_cast<double>(last) + 0.3, first, step, panels.size(), gp_quote(title));
  for (const PlotPanel& p : panels) {
    script += fmt::format("set ylabel {}\n", gp_quote(p.ylabel));
    std::string plot;
    int color = 0;
    for (const PlotLine& l : p.lines) {
      const int col = column(l.column);
      plot += plot.empty() ? "plot " : ", ";
      const std::string using_ =
          l.scale == 1 ? fmt::format("1:{}", col) : fmt::format("1:(${} * {})", col, l.scale);
      if (l.baseline)
        plot += fmt::format("{} using {} with lines dt 2 lw 2 lc rgb '#555555' title {}",
                            gp_quote(csv), using_, gp_quote(l.title));
      else
        plot += fmt::format("{} using {} with linespoints lw 2 pt 7 ps 0.8 lc {} title {}",
                            gp_quote(csv), using_, ++color, gp_quote(l.title));
    }
    script += plot + "\n";
  }
  script += "unset multiplot\n";
  const std::string gp = png + ".gp";
  {
    std::ofstream out(gp);
    out << script;
    if (!out) throw xg::IoError(fmt::format("{}: cannot write the gnuplot script", gp));
  }
  const int rc = std::system(("gnuplot " + sh_quote(gp) + " 2>&1").c_str());
  std::error_code ec;
  std::filesystem::remove(gp, ec);
  if (rc != 0) {
    fmt::print("plot: gnuplot failed (exit {}); {} not written\n", rc, png);
    return false;
  }
  fmt::print("plot: wrote {}\n", png);
  return true;
}

// ---- Checkpoints --------------------------------------------------------------------------------

namespace {
std::string optimizer_kind(const xg::optim::Optimizer<float>& opt) {
  if (dynamic_cast<const xg::optim::Adam<float>*>(&opt)) return "adam";
  if (dynamic_cast<const xg::optim::SGD<float>*>(&opt)) return "sgd";
  return "other";
}
}  // namespace

void save_run(const std::string& path, const xg::nn::Module<float>& model,
              const xg::optim::Optimizer<float>& opt, const xg::Generator& gen,
              const RunState& state) {
  xg::Checkpoint ck{model.state_dict(), opt.state_dict(), {}};
  ck.set_text("rng", gen.state());
  ck.set_text("optimizer_kind", optimizer_kind(opt));
  ck.set_scalar("epoch", static_cast<double>(state.epoch));
  ck.set_scalar("step", static_cast<double>(state.step));
  ck.set_scalar("seconds", state.seconds);
  ck.set_scalar("best", state.best);
  ck.set_text("settings", state.settings);
  xg::save_checkpoint(path, ck);
}

namespace {
// "a=1 b=2" -> {a: 1, b: 2}
std::map<std::string, std::string> parse_settings(const std::string& s) {
  std::map<std::string, std::string> m;
  std::istringstream in(s);
  std::string kv;
  while (in >> kv) {
    const auto eq = kv.find('=');
    m[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  return m;
}
}  // namespace

RunState resume_run(const std::string& path, xg::nn::Module<float>& model,
                    xg::optim::Optimizer<float>& opt, xg::Generator& gen,
                    const std::string& settings) {
  return resume_run(xg::load_checkpoint(path), path, model, opt, gen, settings);
}

RunState resume_run(const xg::Checkpoint& ck, const std::string& path, xg::nn::Module<float>& model,
                    xg::optim::Optimizer<float>& opt, xg::Generator& gen,
                    const std::string& settings, bool warn) {
  RunState s;
  try {
    const std::string kind = ck.text("optimizer_kind");
    if (kind != optimizer_kind(opt))
      throw xg::ValueError(fmt::format("it was trained with --optimizer {}, this run uses {}", kind,
                                       optimizer_kind(opt)));
    // Everything is read and validated before anything changes (model.load_state_dict is all
    // or nothing itself), so a refused checkpoint leaves the run as it was.
    s.epoch = static_cast<std::size_t>(ck.count("epoch"));
    s.step = static_cast<std::size_t>(ck.count("step"));
    s.seconds = ck.scalar("seconds");
    s.best = ck.scalar("best");
    s.settings = ck.text("settings");
    xg::Generator restored = gen;
    restored.set_state(ck.text("rng"));
    opt.check_state_dict(ck.optimizer);
    model.load_state_dict(ck.model, /*strict=*/true);
    opt.load_state_dict(ck.optimizer);
    gen = restored;
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot resume from {}: {}", path, e.what()));
  }
  if (warn && !settings.empty() && settings != s.settings) {
    const auto was = parse_settings(s.settings), now = parse_settings(settings);
    std::vector<std::string> changed;
    for (const auto& [k, v] : now) {
      auto it = was.find(k);
      changed.push_back(it == was.end() ? fmt::format("--{} {} (new)", k, v)
                                        : fmt::format("--{} {} -> {}", k, it->second, v));
      if (it != was.end() && it->second == v) changed.pop_back();
    }
    std::fflush(stdout);
    std::fprintf(stderr,
                 "warning: %s was saved with other settings (%s); the run continues but will not "
                 "match an uninterrupted one\n",
                 path.c_str(), fmt::format("{}", fmt::join(changed, ", ")).c_str());
  }
  return s;
}

// ---- Smoke mode ---------------------------------------------------------------------------------

void check_loss_history(const std::vector<double>& losses, std::size_t min_steps,
                        std::size_t max_k) {
  if (losses.size() < min_steps) throw std::runtime_error("smoke: too few steps to judge the loss");
  const std::size_t k = std::min(max_k, losses.size() / 4);
  const double first =
      std::accumulate(losses.begin(), losses.begin() + static_cast<std::ptrdiff_t>(k), 0.0) /
      static_cast<double>(k);
  const double last =
      std::accumulate(losses.end() - static_cast<std::ptrdiff_t>(k), losses.end(), 0.0) /
      static_cast<double>(k);
  check_loss_went_down(first, last);
}

void check_loss_went_down(double first, double last, double min_ratio) {
  const bool ok = std::isfinite(first) && std::isfinite(last) && last < first * (1 - min_ratio);
  const std::string msg = fmt::format("smoke: loss {:.4f} -> {:.4f} ({:+.1f}%)", first, last,
                                      100.0 * (last - first) / first);
  if (!ok)
    throw std::runtime_error(
        fmt::format("{}: it did not go down by at least {:.0f}%", msg, 100 * min_ratio));
  fmt::print("{}: ok\n", msg);
}

}  // namespace ex
