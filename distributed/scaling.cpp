// Data-parallel scaling of a small LSTM training loop: examples per second, time in the
// allreduce, and the bytes allreduced per step. Run with 1, 2, ... ranks:
//     OPENBLAS_NUM_THREADS=1 mpirun -np 1 xgrad_dist_scaling
//     OPENBLAS_NUM_THREADS=1 mpirun -np 2 xgrad_dist_scaling
// Weak scaling by default (--batch examples per rank); --global-batch N keeps the global batch
// fixed instead (strong scaling: N / ranks per rank). Options: --steps --warmup --seq --input
// --hidden --layers --bucket-mb --pipeline (MPI_Iallreduce per bucket).
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include <xgrad/distributed/distributed.hpp>
#include <xgrad/xgrad.hpp>

using namespace xg;

namespace {
struct Args {
  std::size_t steps = 30, warmup = 3, batch = 32, global_batch = 0, seq = 32, input = 32,
              hidden = 128, layers = 1, classes = 10;
  double bucket_mb = 8;
  bool pipeline = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> double {
      if (i + 1 >= argc) throw ValueError(fmt::format("{} needs a value", k));
      return std::atof(argv[++i]);
    };
    if (k == "--steps")
      a.steps = std::size_t(next());
    else if (k == "--warmup")
      a.warmup = std::size_t(next());
    else if (k == "--batch")
      a.batch = std::size_t(next());
    else if (k == "--global-batch")
      a.global_batch = std::size_t(next());
    else if (k == "--seq")
      a.seq = std::size_t(next());
    else if (k == "--input")
      a.input = std::size_t(next());
    else if (k == "--hidden")
      a.hidden = std::size_t(next());
    else if (k == "--layers")
      a.layers = std::size_t(next());
    else if (k == "--bucket-mb")
      a.bucket_mb = next();
    else if (k == "--pipeline")
      a.pipeline = true;
    else
      throw ValueError(fmt::format("unknown option {}", k));
  }
  return a;
}
}  // namespace

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);
  const Args a = parse(argc, argv);
  const std::size_t ranks = static_cast<std::size_t>(env.size());
  const std::size_t batch = a.global_batch ? a.global_batch / ranks : a.batch;

  Generator gen(1);  // the same model everywhere; the data differs per rank
  nn::LSTM<float> lstm(nn::LSTMOptions(a.input, a.hidden).num_layers(a.layers), gen);
  nn::Linear<float> head(a.hidden, a.classes, gen);
  const auto params = nn::parameters(lstm, head);
  optim::Adam<float> opt(params, optim::AdamOptions(1e-3));
  dist::DataParallel<float> dp(params,
                               dist::DataParallelOptions()
                                   .bucket_bytes(static_cast<std::size_t>(a.bucket_mb * (1 << 20)))
                                   .pipeline(a.pipeline));

  Generator data(1000 + static_cast<std::uint64_t>(env.rank()));
  const Var<float> x(uniform<float>(Shape{a.seq, batch, a.input}, -1.f, 1.f, data));
  IndexArray y = IndexArray::from_shape({batch});
  for (std::size_t b = 0; b < batch; ++b) y(b) = static_cast<std::int64_t>(data.below(a.classes));

  auto step = [&] {
    opt.zero_grad();
    Var<float> h = select(lstm.forward(x).output, 0, a.seq - 1);
    cross_entropy(head(h), y).backward();
    dp.allreduce_gradients();
    opt.step();
  };
  for (std::size_t i = 0; i < a.warmup; ++i) step();
  env.barrier();
  const double comm0 = dp.comm_seconds(), t0 = MPI_Wtime();
  for (std::size_t i = 0; i < a.steps; ++i) step();
  const double mine = MPI_Wtime() - t0, comm = dp.comm_seconds() - comm0;
  const double wall = dist::allreduce(mine, MPI_MAX);  // the slowest rank sets the pace
  const double comm_max = dist::allreduce(comm, MPI_MAX);

  // The allreduce alone (gradients already there), for the cost model's bandwidth term.
  const std::size_t reps = 50;
  env.barrier();
  const double c0 = MPI_Wtime();
  for (std::size_t i = 0; i < reps; ++i) dp.allreduce_gradients();
  const double comm_only = dist::allreduce(MPI_Wtime() - c0, MPI_MAX) / double(reps);

  if (env.is_root()) {
    const double per_step = wall / double(a.steps);
    fmt::print("ranks {}  batch/rank {}  global batch {}  seq {}  input {}  hidden {}  layers {}\n",
               ranks, batch, batch * ranks, a.seq, a.input, a.hidden, a.layers);
    fmt::print("parameters {}  bytes allreduced/step {} ({:.2f} MiB) in {} bucket(s), {}\n",
               dp.num_elements(), dp.bytes_per_step(), double(dp.bytes_per_step()) / (1 << 20),
               dp.num_buckets(), a.pipeline ? "pipelined" : "blocking");
    fmt::print("step {:.2f} ms  (allreduce {:.2f} ms in the loop, {:.3f} ms alone)\n",
               per_step * 1e3, comm_max / double(a.steps) * 1e3, comm_only * 1e3);
    fmt::print("examples/s {:.0f}\n", double(batch * ranks) / per_step);
    fmt::print("csv,{},{},{},{:.3f},{:.3f},{:.3f},{:.1f}\n", ranks, batch, dp.bytes_per_step(),
               per_step * 1e3, comm_max / double(a.steps) * 1e3, comm_only * 1e3,
               double(batch * ranks) / per_step);
  }
  return 0;
}
