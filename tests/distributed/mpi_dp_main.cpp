// Data-parallel training over MPI, checked end to end. Launched by CTest as
//     mpirun -np 2 mpi_dp_test
// Each rank trains an LSTM + Linear head (float32, SGD with momentum) on its half of every global
// batch and averages gradients with DataParallel. Rank 0 then trains a single-process copy on the
// concatenated global batches (the loss is a mean over the batch, so the mean of the halves'
// gradients is the global gradient) and compares. Prints "N passed, M failed" on rank 0; every
// rank exits non-zero when any check failed.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <numeric>

#include <fmt/format.h>

#include <xgrad/distributed/distributed.hpp>
#include <xgrad/xgrad.hpp>

using namespace xg;

namespace {

constexpr std::size_t kSeq = 6, kIn = 4, kHidden = 16, kClasses = 3;
constexpr std::size_t kExamples = 64, kRankBatch = 8, kEpochs = 2;
constexpr std::uint64_t kShardSeed = 2024;

struct Net : nn::Module<float> {
  std::shared_ptr<nn::LSTM<float>> lstm;
  std::shared_ptr<nn::Linear<float>> head;
  explicit Net(Generator& g) : nn::Module<float>("Net") {
    lstm = register_module("lstm",
                           std::make_shared<nn::LSTM<float>>(nn::LSTMOptions(kIn, kHidden), g));
    head = register_module("head", std::make_shared<nn::Linear<float>>(kHidden, kClasses, g));
  }
  // x [T, B, in] -> logits of the last step [B, classes]
  Var<float> forward(const Var<float>& x) {
    return head->forward(select(lstm->forward(x).output, 0, x.shape(0) - 1));
  }
};

struct Data {
  Array<float> x;  // [T, N, in]
  IndexArray y;    // [N]
};

Data make_data() {  // the same on every rank
  Generator g(11);
  Data d{uniform<float>(Shape{kSeq, kExamples, kIn}, -1.f, 1.f, g),
         IndexArray::from_shape({kExamples})};
  // The label: which of the first three inputs was largest at t = 0.
  for (std::size_t n = 0; n < kExamples; ++n) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < kClasses; ++c)
      if (d.x(0, n, c) > d.x(0, n, best)) best = c;
    d.y(n) = static_cast<std::int64_t>(best);
  }
  return d;
}

Var<float> batch_loss(Net& net, const Data& d, const std::vector<std::size_t>& idx) {
  Array<float> x = empty<float>(Shape{kSeq, idx.size(), kIn});
  IndexArray y = IndexArray::from_shape({idx.size()});
  for (std::size_t b = 0; b < idx.size(); ++b) {
    for (std::size_t t = 0; t < kSeq; ++t)
      for (std::size_t i = 0; i < kIn; ++i) x(t, b, i) = d.x(t, idx[b], i);
    y(b) = d.y(idx[b]);
  }
  return cross_entropy(net.forward(Var<float>(x)), y);  // mean over the batch
}

// This rank's examples for global step `step` (kRankBatch of them).
std::vector<std::size_t> rank_batch(const dist::ShardSampler& s, std::size_t step) {
  const std::size_t per_epoch = s.num_samples() / kRankBatch;
  const std::vector<std::size_t> all = s.indices(step / per_epoch);
  const auto from = all.begin() + static_cast<std::ptrdiff_t>((step % per_epoch) * kRankBatch);
  return {from, from + static_cast<std::ptrdiff_t>(kRankBatch)};
}

optim::SGD<float> make_sgd(Net& net) {
  return optim::SGD<float>(net.named_parameters(), optim::SGDOptions(0.2).momentum(0.9));
}

double max_abs_diff(const Net& a, const Net& b) {
  double worst = 0;
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    worst =
        std::max(worst, double(xt::amax(xt::abs(pa[i].second.value() - pb[i].second.value()))()));
  return worst;
}

struct Runner {
  int rank, size;
  int passed = 0, failed = 0;
  // Every rank runs every check; a check passes only where it passed on all ranks.
  void check(const std::string& name, const std::function<bool(std::string&)>& body) {
    std::string detail;
    bool ok = false;
    try {
      ok = body(detail);
    } catch (const std::exception& e) {
      detail = fmt::format("exception: {}", e.what());
    }
    const bool all_ok = dist::allreduce(ok ? 1.0 : 0.0, MPI_MIN) == 1.0;
    if (!ok) fmt::print(stderr, "rank {}: {}: {}\n", rank, name, detail);
    if (rank == 0) fmt::print("{:<44} {}  {}\n", name, all_ok ? "ok  " : "FAIL", ok ? detail : "");
    (all_ok ? passed : failed)++;
  }
};

}  // namespace

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);
  Runner run{env.rank(), env.size()};
  const Data data = make_data();
  const std::size_t steps =
      kEpochs * (kExamples / static_cast<std::size_t>(env.size())) / kRankBatch;
  const std::size_t resume_at = steps / 2;
  const std::filesystem::path ckpt_path =
      std::filesystem::temp_directory_path() / fmt::format("xgrad_mpi_dp_{}.npz", getpid());
  if (env.is_root())
    fmt::print("mpi_dp_test: {} ranks, {} steps of {} x {} examples\n", env.size(), steps,
               env.size(), kRankBatch);

  run.check("shards are disjoint and cover the data", [&](std::string& detail) {
    bool ok = true;
    for (std::size_t epoch = 0; epoch < 2; ++epoch) {
      dist::ShardSampler s(kExamples, kShardSeed, env.rank(), env.size(), true, true);
      std::vector<std::size_t> mine = s.indices(epoch);
      std::vector<unsigned long long> m(mine.begin(), mine.end()), all(m.size() * env.size());
      MPI_Allgather(m.data(), static_cast<int>(m.size()), MPI_UNSIGNED_LONG_LONG, all.data(),
                    static_cast<int>(m.size()), MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
      std::sort(all.begin(), all.end());
      std::vector<unsigned long long> want(kExamples);
      std::iota(want.begin(), want.end(), 0ull);
      ok = ok && std::adjacent_find(all.begin(), all.end()) == all.end();  // disjoint
      if (kExamples % env.size() == 0) ok = ok && all == want;             // and covering
      ok = ok && s.permutation(epoch) != s.permutation(epoch + 1);
    }
    // Padding: 5 examples over 2 ranks gives 3 each, wrapping around to the start.
    dist::ShardSampler p(5, 1, env.rank() % 2, 2);
    ok = ok && p.indices(0).size() == 3;
    detail = fmt::format("{} per rank per epoch", kExamples / env.size());
    return ok;
  });

  run.check("missing gradients count as zeros", [&](std::string& detail) {
    // a: gradient (rank + 1) on every rank; b: only on rank size-1; c: on no rank.
    Var<float> a(full<float>(Shape{3}, 1.f), true), b(full<float>(Shape{2}, 1.f), true),
        c(full<float>(Shape{4}, 1.f), true);
    dist::DataParallel<float> dp(std::vector<Var<float>>{a, b, c},
                                 dist::DataParallelOptions().bucket_bytes(8));
    Var<float> loss = sum(a) * Var<float>::scalar(float(env.rank() + 1));
    if (env.rank() == env.size() - 1) loss = loss + sum(b) * Var<float>::scalar(6.f);
    loss.backward();
    dp.allreduce_gradients();
    const float mean_a = float(env.size() + 1) / 2.f, mean_b = 6.f / float(env.size());
    detail = fmt::format("{} buckets of 2 floats", dp.num_buckets());
    return a.has_grad() && b.has_grad() && !c.has_grad() &&
           xt::allclose(a.grad(), full<float>(Shape{3}, mean_a)) &&
           xt::allclose(b.grad(), full<float>(Shape{2}, mean_b));
  });

  // ---- Distributed training: every rank starts from a different initialisation ---------------
  Generator init(100 + static_cast<std::uint64_t>(env.rank()));
  Net net(init);
  optim::SGD<float> opt = make_sgd(net);
  const dist::ShardSampler sampler(kExamples, kShardSeed, env.rank(), env.size(), true, true);
  double before = 0;
  {  // how far apart the replicas start (without broadcast)
    dist::DataParallel<float> probe(net.named_parameters(),
                                    dist::DataParallelOptions().broadcast_at_start(false));
    before = probe.max_divergence();
  }
  // 1 KiB buckets: several buckets, with parameters straddling their boundaries; pipelined.
  dist::DataParallel<float> dp(net.named_parameters(),
                               dist::DataParallelOptions().bucket_bytes(1024).pipeline(true));
  const double after = dp.max_divergence();
  run.check("construction broadcasts rank 0's values", [&](std::string& detail) {
    detail = fmt::format("max |diff| {:.3g} before, {:.3g} after", before, after);
    return (env.size() == 1 || before > 0) && after == 0;
  });

  std::vector<float> losses;
  for (std::size_t step = 0; step < steps; ++step) {
    if (step == resume_at && env.is_root()) {  // only rank 0 writes checkpoints
      Checkpoint ck{net.state_dict(), opt.state_dict(), {}};
      ck.set_scalar("step", double(step));
      save_checkpoint(ckpt_path.string(), ck);
    }
    opt.zero_grad();
    Var<float> loss = batch_loss(net, data, rank_batch(sampler, step));
    loss.backward();
    dp.allreduce_gradients();
    opt.step();
    const float global = float(dist::allreduce(loss.item(), MPI_SUM) / env.size());
    losses.push_back(global);
    if (env.is_root()) fmt::print("  step {:2d}  loss {:.5f}\n", step, global);
  }

  run.check("replicas identical after training", [&](std::string& detail) {
    const double d = dp.max_divergence();
    detail = fmt::format("max |diff| {:.3g}; {} bytes allreduced per step in {} buckets", d,
                         dp.bytes_per_step(), dp.num_buckets());
    return d == 0 && dp.bytes_per_step() == (net.num_parameters() + 6) * sizeof(float);
  });

  run.check("matches single-process global batch", [&](std::string& detail) {
    if (!env.is_root()) return true;
    Generator init0(100);  // rank 0's initialisation
    Net ref(init0);
    optim::SGD<float> ref_opt = make_sgd(ref);
    std::vector<dist::ShardSampler> shards;
    for (int r = 0; r < env.size(); ++r)
      shards.emplace_back(kExamples, kShardSeed, r, env.size(), true, true);
    double worst_loss = 0;
    for (std::size_t step = 0; step < steps; ++step) {
      std::vector<std::size_t> global;
      for (const auto& s : shards)
        for (std::size_t i : rank_batch(s, step)) global.push_back(i);
      ref_opt.zero_grad();
      Var<float> loss = batch_loss(ref, data, global);
      loss.backward();
      ref_opt.step();
      worst_loss = std::max(worst_loss, double(std::abs(loss.item() - losses[step])));
    }
    double worst_rel = 0, worst_abs = 0;
    bool ok = true;
    const auto pd = net.named_parameters(), pr = ref.named_parameters();
    for (std::size_t i = 0; i < pd.size(); ++i) {
      const Array<float>& d = pd[i].second.value();
      const Array<float>& r = pr[i].second.value();
      ok = ok && xt::allclose(d, r, 1e-5, 1e-6);
      const Array<float> diff = xt::abs(d - r);
      worst_abs = std::max(worst_abs, double(xt::amax(diff)()));
      worst_rel = std::max(worst_rel, double(xt::amax(diff / (xt::abs(r) + 1e-6f))()));
    }
    Generator init0_again(100);
    const double moved = max_abs_diff(ref, Net(init0_again));  // training did change the weights
    detail = fmt::format("max |diff| {:.2g} (rel {:.2g}), loss diff {:.2g}; weights moved {:.2g}",
                         worst_abs, worst_rel, worst_loss, moved);
    return ok && worst_loss < 1e-5 && moved > 1e-2;
  });

  run.check("all ranks resume from rank 0's checkpoint", [&](std::string& detail) {
    Generator other(999 + static_cast<std::uint64_t>(env.rank()));
    Net again(other);
    optim::SGD<float> again_opt = make_sgd(again);
    // Read by rank 0 only; every rank receives its bytes.
    const Checkpoint ck = dist::load_checkpoint_broadcast(ckpt_path.string());
    again.load_state_dict(ck.model);
    again_opt.load_state_dict(ck.optimizer);
    // Default options this time (blocking allreduce, 8 MiB buckets): the sums are the same.
    dist::DataParallel<float> dp2(again.named_parameters());
    for (auto step = static_cast<std::size_t>(ck.scalar("step")); step < steps; ++step) {
      again_opt.zero_grad();
      batch_loss(again, data, rank_batch(sampler, step)).backward();
      dp2.allreduce_gradients();
      again_opt.step();
    }
    const double d = dist::allreduce(max_abs_diff(net, again), MPI_MAX);
    detail = fmt::format("from step {}: max |diff| {:.3g} vs uninterrupted", ck.scalar("step"), d);
    // With 2 ranks a sum of two floats does not depend on the algorithm: bit-identical.
    return env.size() <= 2 ? d == 0 : d < 1e-6;
  });

  // Rank r holds r + 1 examples x = 10 r + 1, ..., 10 r + r + 1 and backpropagates the mean of
  // p * x over them: the global mean weighs every example once, not every rank.
  run.check("uneven shards weigh every example once", [&](std::string& detail) {
    Var<double> p(zeros<double>(Shape{1}), true);
    dist::DataParallel<double> dp(std::vector<Var<double>>{p});
    const std::size_t n = static_cast<std::size_t>(env.rank()) + 1;
    double want = 0, count = 0;
    for (int r = 0; r < env.size(); ++r)
      for (int i = 1; i <= r + 1; ++i) want += 10.0 * r + i, count += 1;
    want /= count;
    Array<double> x = Array<double>::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) x(i) = 10.0 * env.rank() + static_cast<double>(i + 1);
    mean(p * Var<double>(x)).backward();
    dp.allreduce_gradients(n);
    const double got = p.grad()(0);
    detail = fmt::format("gradient {} (want {})", got, want);
    bool refused = false;  // no examples anywhere: refused on every rank
    try {
      dp.allreduce_gradients(0);
    } catch (const ValueError& e) {
      refused = std::string(e.what()).find("counts sum to 0") != std::string::npos;
    }
    return std::abs(got - want) < 1e-12 && refused;
  });

  run.check("misuse fails on every rank, no hang", [&](std::string& detail) {
    bool missing = false, mismatch = false;
    try {  // rank 0 cannot read it: every rank gets its IoError
      dist::load_checkpoint_broadcast("/nonexistent/xgrad.ckpt.npz");
    } catch (const IoError& e) {
      missing = std::string(e.what()).find("/nonexistent/xgrad.ckpt.npz") != std::string::npos;
    }
    try {  // rank 1 holds one more parameter than the others
      std::vector<Var<float>> ps{Var<float>(zeros<float>(Shape{2}), true)};
      if (env.rank() == 1) ps.push_back(Var<float>(zeros<float>(Shape{3}), true));
      dist::DataParallel<float> bad(ps);
      mismatch = env.size() == 1;
    } catch (const ValueError& e) {
      mismatch = std::string(e.what()).find("different parameter lists") != std::string::npos;
      detail = e.what();
    }
    return missing && mismatch;
  });

  if (env.is_root()) {
    std::filesystem::remove(ckpt_path);
    fmt::print("{} passed, {} failed\n", run.passed, run.failed);
  }
  return run.failed == 0 ? 0 : 1;
}
