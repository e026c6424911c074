// Forecasting: an LSTM reads a window of past values and predicts the next one (or the next
// `--horizon` values), compared on held-out data with two forecasts that need no training: the
// last value seen, and the mean of the last few values (a moving average whose width is chosen on
// the training data).
//
// The default data are generated "sensors": each series is a sum of three sines with its own
// periods (8 to 60 steps), phases and amplitudes, plus an offset and Gaussian noise, all drawn
// from the seed. The last 20% of every series is held out; windows never look past their target.
// `--csv FILE --column NAME|INDEX` forecasts one column of your own CSV instead.
//
//     timeseries                                    # 8 generated sensors; about a minute
//     timeseries --horizon 5 --out forecast.csv    # and the forecasts next to the truth
//     timeseries --csv temps.csv --column temperature --window 48
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"
#include "parallel.hpp"

using namespace xg;

namespace {

// ---- Data --------------------------------------------------------------------------------------

/// Series of values; the first `train` steps of each train the model, the rest are held out.
struct Data {
  std::string source;
  std::vector<std::vector<double>> series;
  std::vector<std::size_t> train;  // per series
};

Data make_sensors(std::size_t n, std::size_t length, double noise, double test_frac,
                  Generator& gen) {
  Data d;
  d.source =
      fmt::format("{} generated sensors (3 sines each, periods 8-60 steps, noise sd {})", n, noise);
  for (std::size_t s = 0; s < n; ++s) {
    double period[3], phase[3], amp[3];
    for (int k = 0; k < 3; ++k) {
      period[k] = 8.0 + 52.0 * gen.uniform01();
      phase[k] = 2 * std::numbers::pi * gen.uniform01();
      amp[k] = 0.3 + 0.7 * gen.uniform01();
    }
    const double offset = 2 * gen.uniform01() - 1;
    std::vector<double> x(length);
    for (std::size_t t = 0; t < length; ++t) {
      double v = offset;
      for (int k = 0; k < 3; ++k)
        v +=
            amp[k] * std::sin(2 * std::numbers::pi * static_cast<double>(t) / period[k] + phase[k]);
      x[t] = v + noise * gen.normal01();
    }
    d.series.push_back(std::move(x));
    d.train.push_back(length - static_cast<std::size_t>(static_cast<double>(length) * test_frac));
  }
  return d;
}

/// Splits a CSV line at `sep`, honouring double quotes ("a,b" and "" inside them).
std::vector<std::string> csv_fields(const std::string& line, char sep) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quoted) {
      if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"')
        out.back() += '"', ++i;
      else if (ch == '"')
        quoted = false;
      else
        out.back() += ch;
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == sep) {
      out.emplace_back();
    } else {
      out.back() += ch;
    }
  }
  for (auto& f : out) {  // trim spaces
    const auto a = f.find_first_not_of(' '), b = f.find_last_not_of(' ');
    f = a == std::string::npos ? std::string() : f.substr(a, b - a + 1);
  }
  return out;
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(v);
}

/// One column of a CSV (comma, semicolon or tab separated; a header row is detected when a field
/// of the first row is not a number). `column` is a header name, or a position counting from 1;
/// empty means the last column.
Data load_csv(const std::string& path, const std::string& column, double test_frac) {
  const std::vector<std::string> lines = data::split_lines(data::read_file(path));
  std::size_t first = 0;
  while (first < lines.size() && lines[first].find_first_not_of(" \t,;") == std::string::npos)
    ++first;
  if (first == lines.size()) throw IoError(fmt::format("{}: no data", path));
  const std::string& head = lines[first];
  const char sep = head.find(',') != std::string::npos    ? ','
                   : head.find('\t') != std::string::npos ? '\t'
                   : head.find(';') != std::string::npos  ? ';'
                                                          : ',';
  const std::vector<std::string> fields = csv_fields(head, sep);
  bool header = false;
  for (const auto& f : fields) {
    double v;
    header = header || !parse_number(f, v);
  }
  std::size_t col = fields.size() - 1;
  std::string name = header ? fields[col] : fmt::format("column {}", col + 1);
  if (!column.empty()) {
    auto it = header ? std::find(fields.begin(), fields.end(), column) : fields.end();
    double v;
    if (it != fields.end()) {
      col = static_cast<std::size_t>(it - fields.begin());
    } else if (parse_number(column, v) && v >= 1 && v == std::floor(v) &&
               v <= static_cast<double>(fields.size())) {
      col = static_cast<std::size_t>(v) - 1;
    } else {
      throw IoError(fmt::format("{}: no column '{}' (it has {} column(s){}{})", path, column,
                                fields.size(), header ? ": " : "",
                                header ? fmt::format("{}", fmt::join(fields, ", ")) : ""));
    }
    name = header ? fields[col] : fmt::format("column {}", col + 1);
  }
  Data d;
  std::vector<double> x;
  for (std::size_t i = first + (header ? 1 : 0); i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t,;") == std::string::npos) continue;  // blank
    const std::vector<std::string> f = csv_fields(lines[i], sep);
    if (col >= f.size())
      throw IoError(fmt::format("{}:{}: {} field(s), no '{}'", path, i + 1, f.size(), name));
    double v;
    if (!parse_number(f[col], v))
      throw IoError(fmt::format("{}:{}: '{}' is not a number ({})", path, i + 1, f[col], name));
    x.push_back(v);
  }
  d.source = fmt::format("{}: '{}', {} values", path, name, x.size());
  d.train.push_back(x.size() - static_cast<std::size_t>(static_cast<double>(x.size()) * test_frac));
  d.series.push_back(std::move(x));
  return d;
}

/// A forecast problem: at time t of series s, read x[t-W .. t-1], predict x[t .. t+H-1].
struct Sample {
  std::size_t series, t;
};

struct Windows {
  std::size_t window, horizon;
  std::vector<Sample> train, test;
};

Windows make_windows(const Data& d, std::size_t window, std::size_t horizon) {
  Windows w{window, horizon, {}, {}};
  for (std::size_t s = 0; s < d.series.size(); ++s) {
    const std::size_t n = d.series[s].size(), n_train = d.train[s];
    for (std::size_t t = window; t + horizon <= n_train; ++t) w.train.push_back({s, t});
    for (std::size_t t = std::max(window, n_train); t + horizon <= n; ++t) w.test.push_back({s, t});
  }
  return w;
}

// ---- The model ---------------------------------------------------------------------------------

/// Recurrent layers (an LSTM by default; --cell) over the window (one value per step) -> last
/// layer's final output state -> Linear to the next `horizon` values, in standardised units.
class Forecaster : public nn::Module<float> {
 public:
  Forecaster(const std::string& cell, std::size_t hidden, std::size_t layers, std::size_t horizon)
      : nn::Module<float>("Forecaster"), layers_(layers) {
    lstm_ = register_module(
        "lstm", std::make_shared<nn::Recurrent<float>>(nn::RNNOptions(1, hidden).num_layers(layers),
                                                       ex::cell_name(cell)));
    head_ = register_module("head", std::make_shared<nn::Linear<float>>(hidden, horizon));
  }
  /// x [W, B, 1] -> [B, horizon]
  Var<float> forward(const Var<float>& x) {
    auto out = lstm_->forward(x);
    return head_->forward(select(out.h_n, 0, layers_ - 1));
  }

 private:
  std::size_t layers_;
  std::shared_ptr<nn::Recurrent<float>> lstm_;  // "lstm": checkpoints keep their names
  std::shared_ptr<nn::Linear<float>> head_;
};

struct Scaler {
  double mean = 0, sd = 1;
  float to(double v) const { return static_cast<float>((v - mean) / sd); }
  double from(float v) const { return static_cast<double>(v) * sd + mean; }
};

/// Inputs [W, B, 1] and targets [B, H] (standardised) for samples idx of `all`.
std::pair<Var<float>, Var<float>> make_batch(const Data& d, const Windows& w, const Scaler& sc,
                                             const std::vector<Sample>& all, const std::size_t* idx,
                                             std::size_t B) {
  Array<float> x = empty<float>(Shape{w.window, B, 1}), y = empty<float>(Shape{B, w.horizon});
  for (std::size_t j = 0; j < B; ++j) {
    const Sample& s = all[idx[j]];
    const std::vector<double>& v = d.series[s.series];
    for (std::size_t k = 0; k < w.window; ++k) x(k, j, 0) = sc.to(v[s.t - w.window + k]);
    for (std::size_t k = 0; k < w.horizon; ++k) y(j, k) = sc.to(v[s.t + k]);
  }
  return {Var<float>(std::move(x)), Var<float>(std::move(y))};
}

/// The model's forecasts for `samples`, in original units: [sample][step].
std::vector<std::vector<double>> predict(Forecaster& model, const Data& d, const Windows& w,
                                         const Scaler& sc, const std::vector<Sample>& samples) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<std::vector<double>> out(samples.size(), std::vector<double>(w.horizon));
  std::vector<std::size_t> idx(samples.size());
  std::iota(idx.begin(), idx.end(), 0);
  for (std::size_t lo = 0; lo < samples.size(); lo += 1024) {
    const std::size_t B = std::min<std::size_t>(1024, samples.size() - lo);
    const Var<float> p = model.forward(make_batch(d, w, sc, samples, idx.data() + lo, B).first);
    for (std::size_t j = 0; j < B; ++j)
      for (std::size_t k = 0; k < w.horizon; ++k) out[lo + j][k] = sc.from(p.value()(j, k));
  }
  model.train();
  return out;
}

// ---- Baselines and scores ----------------------------------------------------------------------

/// The mean of the m values before t (m = 1 is the last value).
double moving_average(const std::vector<double>& v, std::size_t t, std::size_t m) {
  double s = 0;
  for (std::size_t k = t - m; k < t; ++k) s += v[k];
  return s / static_cast<double>(m);
}

/// RMSE over all samples and steps of `forecast(sample, step)`.
template <class F>
double rmse(const Data& d, const Windows& w, const std::vector<Sample>& samples, F&& forecast) {
  double se = 0;
  for (std::size_t i = 0; i < samples.size(); ++i)
    for (std::size_t k = 0; k < w.horizon; ++k) {
      const double e = forecast(i, k) - d.series[samples[i].series][samples[i].t + k];
      se += e * e;
    }
  return std::sqrt(se / static_cast<double>(samples.size() * w.horizon));
}

/// The moving-average width with the lowest RMSE on the training windows.
std::size_t best_ma_width(const Data& d, const Windows& w) {
  std::size_t best = 2;
  double best_rmse = INFINITY;
  for (std::size_t m : {2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64}) {
    if (m > w.window) break;
    const double r = rmse(d, w, w.train, [&](std::size_t i, std::size_t) {
      return moving_average(d.series[w.train[i].series], w.train[i].t, m);
    });
    if (r < best_rmse) best_rmse = r, best = m;
  }
  return best;
}

// ---- Output ------------------------------------------------------------------------------------

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

/// Forecast vs truth for series 0 at the last horizon step, the first `points` held-out times.
bool plot_forecast(const std::string& csv, const std::string& png, std::size_t horizon,
                   std::size_t t0, std::size_t points, const std::string& title) {
  if (!ex::on_path("gnuplot")) {
    fmt::print("plot: gnuplot is not on PATH; skipped {} (the forecasts are in {})\n", png, csv);
    return false;
  }
  // Columns: 1 series, 2 time, 3 step, 4 truth, 5 forecast, 6 last_value, 7 moving_average.
  const std::string keep = fmt::format("($1 == 0 && $3 == {} && $2 < {} ? ", horizon, t0 + points);
  const std::string script = fmt::format(
      "set datafile separator ','\n"
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n"
      "  set terminal pngcairo size 1200,500 noenhanced\n"
      "}} else {{\n"
      "  set terminal png size 1200,500 noenhanced\n"
      "}}\n"
      "set output {}\n"
      "set title {}\n"
      "set key outside top center horizontal\n"
      "set grid\n"
      "set xrange [{}:{}]\n"
      "set xlabel 'time step'\n"
      "set ylabel 'value'\n"
      "plot {} using 2:{}$4 : 1/0) with points pt 7 ps 0.6 lc rgb '#888888' title 'truth', \\\n"
      "     '' using 2:{}$5 : 1/0) with lines lw 2 lc rgb '#1f77b4' title 'LSTM forecast', \\\n"
      "     '' using 2:{}$6 : 1/0) with lines lw 1 dt 2 lc rgb '#d62728' title 'last value'\n",
      gp_quote(png), gp_quote(title), t0, t0 + points - 1, gp_quote(csv), keep, keep, keep);
  const std::string gp = png + ".gp";
  {
    std::ofstream out(gp);
    out << script;
    if (!out) throw IoError(fmt::format("{}: cannot write the gnuplot script", gp));
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

// ---- Training ----------------------------------------------------------------------------------

int train(int argc, char** argv) {
  ex::Flags flags(
      "timeseries",
      "An LSTM forecasts the next value(s) of a series from a window of past values, on\n"
      "noisy multi-sine sensor signals (generated from the seed) or a column of your CSV.\n"
      "Reports held-out RMSE against the last-value and moving-average forecasts.");
  ex::declare_common_flags(flags, {.epochs = 20, .hidden = 64, .layers = 1, .lr = 3e-3});
  flags.add_string("csv", "", "forecast a column of this CSV instead of generated sensors", "FILE")
      .add_string("column", "",
                  "--csv: the column, by header name or position from 1 (default: "
                  "the last)",
                  "NAME|INDEX")
      .add_int("sensors", 8, "generated series", 1, 1000)
      .add_int("length", 2500, "steps per generated series", 10)
      .add_double("noise", 0.1, "standard deviation of the generated noise", 0.0)
      .add_double("test", 0.2, "fraction at the end of each series held out", 0.01, 0.9)
      .add_cell("cell", "lstm", "recurrent cell of every layer")
      .add_int("window", 48, "past values the model reads", 1, 10000)
      .add_int("horizon", 1, "values predicted at once (RMSE is over all of them)", 1, 1000)
      .add_int("batch", 64, "minibatch size", 1)
      .add_int("ma-width", 0, "moving-average width (0: the best on the training data)", 0)
      .add_string("out", "",
                  "write the held-out forecasts next to the truth to this CSV (and a "
                  "PNG beside it when gnuplot exists)",
                  "CSV");
  // --smoke: a few seconds: four short series, a small model.
  flags.smoke_default("sensors", "4")
      .smoke_default("length", "500")
      .smoke_default("window", "24")
      .smoke_default("hidden", "16")
      .smoke_default("epochs", "3")
      .smoke_default("batch", "32");
  flags.parse(argc, argv);
  ex::require_one_process("timeseries");
  const ex::Common c = ex::common_flags(flags);
  const std::size_t sensors = flags.get_size("sensors"), length = flags.get_size("length");
  const std::size_t window = flags.get_size("window"), batch = flags.get_size("batch");
  const std::size_t horizon = flags.get_size("horizon");
  ex::setup(c);
  Generator data_gen(c.seed);
  const double test_frac = flags.get_double("test");
  const Data d = flags.get_string("csv").empty()
                     ? make_sensors(sensors, length, flags.get_double("noise"), test_frac, data_gen)
                     : load_csv(flags.get_string("csv"), flags.get_string("column"), test_frac);
  const Windows w = make_windows(d, window, horizon);
  if (w.train.empty() || w.test.empty())
    throw ValueError(fmt::format(
        "{}: too short for --window {} and --horizon {} with {:.0f}% held "
        "out (no {} windows)",
        d.source, window, horizon, 100 * test_frac, w.train.empty() ? "training" : "held-out"));
  // Standardise with the training part's mean and standard deviation.
  Scaler sc;
  {
    double s = 0, ss = 0, n = 0;
    for (std::size_t i = 0; i < d.series.size(); ++i)
      for (std::size_t t = 0; t < d.train[i]; ++t)
        s += d.series[i][t], ss += d.series[i][t] * d.series[i][t], n += 1;
    sc.mean = s / n;
    sc.sd = std::sqrt(std::max(ss / n - sc.mean * sc.mean, 0.0));
    if (!(sc.sd > 1e-12)) sc.sd = 1;  // a constant series
  }

  // Baselines on the held-out windows.
  const std::size_t ma = flags.get_size("ma-width") ? std::min(flags.get_size("ma-width"), window)
                                                    : best_ma_width(d, w);
  const double rmse_last = rmse(d, w, w.test, [&](std::size_t i, std::size_t) {
    return d.series[w.test[i].series][w.test[i].t - 1];
  });
  const double rmse_ma = rmse(d, w, w.test, [&](std::size_t i, std::size_t) {
    return moving_average(d.series[w.test[i].series], w.test[i].t, ma);
  });

  Forecaster model(flags.get_string("cell"), c.hidden, c.layers, horizon);
  auto opt = ex::make_optimizer(c, model.named_parameters());
  const std::vector<Var<float>> params = model.parameters();
  const double clip = c.clip;
  Generator shuffle_gen(c.seed + 1);
  const std::unique_ptr<optim::Schedule<float>> schedule = ex::make_schedule(c, *opt);
  const std::string settings =
      flags.settings({"save", "resume", "log", "plot", "threads", "stop-after", "out"});
  ex::RunState st;
  if (!c.resume.empty()) {
    st = ex::resume_run(c.resume, model, *opt, shuffle_gen, settings);
    if (schedule) schedule->set_epoch(st.epoch);
    fmt::print("resumed {} at epoch {} (step {})\n", c.resume, st.epoch, st.step);
  }
  st.settings = settings;
  const std::size_t stop_after = c.stop_after;
  if (!c.resume.empty()) ex::trim_csv_log(c.log, st.epoch);  // rows of epochs not checkpointed
  ex::CsvLog log(c.log, {"train_rmse", "test_rmse", "last_value_rmse", "moving_average_rmse"},
                 !c.resume.empty());

  fmt::print("data: {}; {} training and {} held-out windows of {} values -> next {}\n", d.source,
             w.train.size(), w.test.size(), window, horizon);
  fmt::print(
      "model: LSTM {} layer(s) x {} hidden -> linear {}; {} parameters; {} lr {}, batch {}, "
      "{} BLAS thread(s)\n",
      c.layers, c.hidden, horizon, model.num_parameters(), c.optimizer, opt->lr(), batch,
      blas_threads());
  fmt::print(
      "baselines on held-out data: last value RMSE {:.4f}, moving average of {} RMSE {:.4f}\n",
      rmse_last, ma, rmse_ma);

  std::vector<std::size_t> order(w.train.size());
  const std::size_t steps = (order.size() + batch - 1) / batch;
  std::vector<double> losses;
  double test_rmse = NAN;
  auto model_rmse = [&] {
    const auto p = predict(model, d, w, sc, w.test);
    return rmse(d, w, w.test, [&](std::size_t i, std::size_t k) { return p[i][k]; });
  };
  for (std::size_t epoch = st.epoch + 1; epoch <= c.epochs; ++epoch) {
    ex::Stopwatch clock;
    std::iota(order.begin(), order.end(), 0);  // each epoch's order depends on the generator only
    data::shuffle(order, shuffle_gen);
    ex::Progress bar(fmt::format("epoch {}/{}", epoch, c.epochs), steps);
    double loss_sum = 0;
    std::size_t seen = 0;
    for (std::size_t s = 0; s < steps; ++s) {
      const std::size_t lo = s * batch, B = std::min(batch, order.size() - lo);
      const auto [x, y] = make_batch(d, w, sc, w.train, order.data() + lo, B);
      Var<float> loss = mse_loss(model.forward(x), y);
      opt->zero_grad();
      loss.backward();
      if (clip > 0) optim::clip_grad_norm(params, clip);
      opt->step();
      const double l = loss.item();
      losses.push_back(l);
      loss_sum += l * static_cast<double>(B);
      seen += B;
      ++st.step;
      bar.update(s + 1, loss_sum / static_cast<double>(seen), seen);
    }
    bar.finish();
    if (schedule) schedule->step();
    const double train_s = clock.seconds();
    st.seconds += train_s;
    st.epoch = epoch;
    test_rmse = model_rmse();
    const double train_loss = loss_sum / static_cast<double>(seen);
    fmt::print(
        "epoch {:>2}/{}  loss {:.4f} (train RMSE {:.4f})  held-out RMSE {:.4f}  {} windows/s  "
        "{} ({} total)\n",
        epoch, c.epochs, train_loss, std::sqrt(train_loss) * sc.sd, test_rmse,
        ex::format_count(static_cast<double>(seen) / train_s), ex::format_duration(clock.seconds()),
        ex::format_duration(st.seconds));
    std::fflush(stdout);
    log.row(epoch, st.step, train_loss,
            {std::sqrt(train_loss) * sc.sd, test_rmse, rmse_last, rmse_ma}, st.seconds);
    if (!c.save.empty()) ex::save_run(c.save, model, *opt, shuffle_gen, st);
    if (epoch == stop_after) {
      fmt::print("stopped after epoch {} (--stop-after){}\n", epoch,
                 c.save.empty() ? "" : fmt::format("; continue with --resume {}", c.save));
      return 0;
    }
  }
  if (losses.empty()) {
    fmt::print("nothing to train: the run is already at epoch {} of {}\n", st.epoch, c.epochs);
    test_rmse = model_rmse();
  }
  fmt::print(
      "result: held-out RMSE {:.4f} vs last value {:.4f} and moving average {:.4f} ({:.0f}% "
      "and {:.0f}% of theirs) on {} windows, after {} epochs ({} of training)\n",
      test_rmse, rmse_last, rmse_ma, 100 * test_rmse / rmse_last, 100 * test_rmse / rmse_ma,
      w.test.size(), st.epoch, ex::format_duration(st.seconds));
  if (flags.get_string("csv").empty() && flags.get_double("noise") > 0)
    fmt::print(
        "note: the noise alone (sd {}) sets a floor of about {:.4f} on any forecast's RMSE\n",
        flags.get_double("noise"), flags.get_double("noise"));

  const std::string out_path = flags.get_string("out");
  if (!out_path.empty()) {
    const auto p = predict(model, d, w, sc, w.test);
    std::FILE* f = std::fopen(out_path.c_str(), "w");
    if (!f) throw IoError(fmt::format("{}: cannot open for writing", out_path));
    std::fputs("series,time,step,truth,forecast,last_value,moving_average\n", f);
    for (std::size_t i = 0; i < w.test.size(); ++i) {
      const Sample& s = w.test[i];
      const std::vector<double>& v = d.series[s.series];
      for (std::size_t k = 0; k < horizon; ++k)
        fmt::print(f, "{},{},{},{:.6g},{:.6g},{:.6g},{:.6g}\n", s.series, s.t + k, k + 1,
                   v[s.t + k], p[i][k], v[s.t - 1], moving_average(v, s.t, ma));
    }
    const bool ok = std::fflush(f) == 0;
    std::fclose(f);
    if (!ok) throw IoError(fmt::format("{}: write failed", out_path));
    fmt::print("wrote {} ({} held-out forecasts next to the truth)\n", out_path,
               w.test.size() * horizon);
    const std::filesystem::path png = std::filesystem::path(out_path).replace_extension(".png");
    plot_forecast(out_path, png.string(), horizon, w.test.front().t, 200,
                  fmt::format("{} - held-out forecast {} step(s) ahead", d.source, horizon));
  }
  if (!c.plot.empty())
    ex::plot_curve(c.log, c.plot, "timeseries: forecast error (lower is better)",
                   {{"RMSE (units of the series)",
                     {{"train_rmse", "train"},
                      {"test_rmse", "held-out"},
                      {"last_value_rmse", "last-value baseline (held-out)", 1, true},
                      {"moving_average_rmse", "moving-average baseline (held-out)", 1, true}}}});
  // a resumed run saw only the end of the curve
  if (c.smoke && c.resume.empty()) ex::check_loss_history(losses, 8, 10);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_main(argc, argv, train);
}
