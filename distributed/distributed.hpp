// Data-parallel training over MPI. Every rank holds a full copy of the model, computes gradients
// on its shard of the global batch, and the gradients are averaged with MPI_Allreduce before
// every rank takes the same optimizer step, so the copies stay identical.
//
//     dist::Environment env(argc, argv);                      // MPI_Init_thread ... MPI_Finalize
//     dist::DataParallel<float> dp(model.named_parameters()); // copies rank 0's initial values
//     dist::ShardSampler sampler(n_examples, /*seed=*/1, env.rank(), env.size());
//     for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
//       std::vector<std::size_t> mine = sampler.indices(epoch);   // disjoint across ranks
//       for (each batch of `mine`) {
//         opt.zero_grad();
//         loss_on(batch).backward();     // a mean over the batch
//         dp.allreduce_gradients();      // grad = mean over ranks = gradient of the global batch
//         opt.step();                    // identical on every rank
//       }
//       if (env.is_root()) save_checkpoint(path, ck);   // only rank 0 prints and writes
//     }
//
// Optional component: built when CMake finds MPI (target xgrad::distributed).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/autograd/var.hpp>
#include <xgrad/optim/checkpoint.hpp>
#include <xgrad/tensor/npy.hpp>
#include <xgrad/tensor/options.hpp>
#include <xgrad/tensor/random.hpp>

namespace xg::dist {

/// A failed MPI call; the message names the call and MPI's error string.
struct MpiError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Initialises MPI for its lifetime (MPI_Init_thread with MPI_THREAD_FUNNELED: only the thread
/// that created it calls MPI) and finalises it at the end. When MPI is already initialised it
/// does neither, so libraries can create one freely.
/// Errors reach the user: when it is left by an exception it neither finalises (another rank may
/// wait for this one) nor aborts (the program may catch and print the error); the job is
/// aborted when the process exits, after "error: rank R of N: ..." on stderr. An exception that
/// nobody catches is printed with its rank ("error: rank 1 of 2: <what>") before the job ends.
///     dist::Environment env(argc, argv);
///     if (env.is_root()) fmt::print("{} ranks\n", env.size());
class Environment {
 public:
  Environment(int& argc, char**& argv, int required_thread_level = MPI_THREAD_FUNNELED);
  /// Without command-line arguments.
  explicit Environment(int required_thread_level = MPI_THREAD_FUNNELED);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Rank 0: the one that prints progress and writes checkpoints.
  bool is_root() const { return rank_ == 0; }
  /// The thread support MPI granted (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  int thread_level() const { return provided_; }
  MPI_Comm comm() const { return MPI_COMM_WORLD; }
  void barrier() const;

 private:
  void init(int* argc, char*** argv, int required);
  bool owns_ = false;
  int rank_ = 0, size_ = 1, provided_ = MPI_THREAD_SINGLE;
};

/// This process's rank, the number of ranks, and whether this is rank 0 of `comm`.
int rank(MPI_Comm comm = MPI_COMM_WORLD);
int size(MPI_Comm comm = MPI_COMM_WORLD);
inline bool is_root(MPI_Comm comm = MPI_COMM_WORLD) {
  return rank(comm) == 0;
}

/// Parameters with names, as Module::named_parameters() returns them.
template <class T>
using NamedVars = std::vector<std::pair<std::string, Var<T>>>;

/// Copies the root's parameter values to every rank (in buckets of `bucket_bytes`). All ranks
/// must pass parameters of the same count and shapes; otherwise every rank throws ValueError.
///     dist::broadcast_parameters(model.parameters());
template <class T>
void broadcast_parameters(const std::vector<Var<T>>& params, int root = 0,
                          MPI_Comm comm = MPI_COMM_WORLD, std::size_t bucket_bytes = 8u << 20);
template <class T>
void broadcast_parameters(const NamedVars<T>& params, int root = 0, MPI_Comm comm = MPI_COMM_WORLD,
                          std::size_t bucket_bytes = 8u << 20);

/// Options of DataParallel, with chained setters: `DataParallelOptions().bucket_bytes(1 << 20)`.
struct DataParallelOptions {
  /// Gradients travel in flat buckets of at most this many bytes (one MPI message each).
  XG_OPTION(std::size_t, bucket_bytes, std::size_t(8) << 20);
  /// The rank whose initial values every rank starts from.
  XG_OPTION(int, root, 0);
  /// Broadcast the root's parameter values at construction.
  XG_OPTION(bool, broadcast_at_start, true);
  /// Pipeline the buckets: MPI_Iallreduce on bucket k while bucket k+1 is packed and k-1
  /// unpacked. Off (default): one blocking MPI_Allreduce per bucket, which measured 1.2-2x
  /// faster with Open MPI 4.1 on one host (README.md). With 2 ranks the results are identical.
  XG_OPTION(bool, pipeline, false);
};

namespace detail {
// Elements [param_offset, +count) of parameter `param` <-> flat[flat_offset, +count).
struct Segment {
  std::size_t param, param_offset, count, flat_offset;
};
struct Bucket {  // [begin, end) of a flat buffer: one MPI message
  std::size_t begin, end;
  std::vector<Segment> segments;
};
/// Cuts `prefix` slots followed by the parameters (of `sizes` elements) into buckets of at most
/// `bucket_elements`.
std::vector<Bucket> make_buckets(const std::vector<std::size_t>& sizes, std::size_t prefix,
                                 std::size_t bucket_elements);
}  // namespace detail

/// Averages gradients across the ranks of `comm` so every rank steps with the global gradient.
///
///   grad_p = (1 / size) sum_r grad_p(rank r)      for every parameter p
///
/// Gradients are packed into flat buckets (bucket_bytes, default 8 MiB) and each bucket is one
/// MPI_Allreduce(SUM), so a model costs a few large messages rather than one per parameter.
/// A parameter without a gradient on some rank contributes zeros there; a parameter with no
/// gradient on any rank keeps none, so optimizers skip it identically everywhere. A NaN on one
/// rank reaches every rank, and every optimizer refuses the step together.
///
/// Why not overlap with backward: the tape reports no per-parameter "gradient ready" event, and
/// in a recurrent network every weight is used at every time step, so its gradient is complete
/// only when the reverse walk reaches step 0, i.e. at the end of backward. Only the head's
/// bucket could start early; the reduction is issued after backward instead (see README.md).
///     dist::DataParallel<float> dp(nn::parameters(lstm, head));
///     loss.backward();  dp.allreduce_gradients();  opt.step();
template <class T = float>
class DataParallel {
 public:
  DataParallel(NamedVars<T> params, DataParallelOptions o = DataParallelOptions(),
               MPI_Comm comm = MPI_COMM_WORLD);
  DataParallel(const std::vector<Var<T>>& params, DataParallelOptions o = DataParallelOptions(),
               MPI_Comm comm = MPI_COMM_WORLD);

  /// Replaces every gradient by its mean over the ranks. Collective: every rank must call it.
  /// Right when every rank's gradient is a mean over the same number of examples; with uneven
  /// shards use the overload below.
  void allreduce_gradients();
  /// The same for uneven shards: this rank's gradient is a mean over `examples` examples (0 for
  /// none), and every gradient becomes the mean over all ranks' examples,
  ///   grad_p = sum_r n_r grad_p(rank r) / sum_r n_r,
  /// so each example weighs the same. Equal counts give exactly allreduce_gradients(). Throws
  /// ValueError on every rank when the counts sum to 0. Collective.
  void allreduce_gradients(std::size_t examples);
  /// Copies the root's values to every rank again (after loading a checkpoint on the root only).
  void broadcast_parameters();
  /// The largest |value - root's value| over all parameters and ranks (0 when the replicas are
  /// identical, as they should be). Collective.
  double max_divergence() const;

  /// Bytes each rank sends into MPI_Allreduce per call: (parameter elements + one flag per
  /// parameter) * sizeof(T). A ring allreduce moves 2 (N-1)/N times this over each link.
  std::size_t bytes_per_step() const { return (num_elements_ + params_.size()) * sizeof(T); }
  std::size_t num_buckets() const { return buckets_.size(); }
  std::size_t num_elements() const { return num_elements_; }
  /// Seconds spent in allreduce_gradients (packing, MPI, unpacking), summed over calls.
  double comm_seconds() const { return comm_seconds_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == options_.root(); }
  const NamedVars<T>& params() const { return params_; }
  const DataParallelOptions& options() const { return options_; }

 private:
  void pack(const detail::Bucket& b);
  void unpack(const detail::Bucket& b);
  void reduce();

  NamedVars<T> params_;
  DataParallelOptions options_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::size_t num_elements_ = 0;
  std::vector<detail::Bucket> buckets_;
  std::vector<T> flat_;  // one "has a gradient" flag per parameter, then the gradients
  double comm_seconds_ = 0;
  T pack_scale_ = T(1), unpack_scale_ = T(1);  // gradients are scaled by these around the sum
};

/// Splits N examples into disjoint per-rank shards for each epoch. Every rank draws the same
/// seeded permutation of [0, N) for (seed, epoch) and rank r takes positions r, r + size, ...
/// Shards have equal length so every rank runs the same number of steps (and no collective
/// waits forever): the permutation is padded by wrapping around (as PyTorch's
/// DistributedSampler), or its tail is dropped with `drop_last`.
///     dist::ShardSampler sampler(50000, /*seed=*/7, env.rank(), env.size());
///     for (std::size_t i : sampler.indices(epoch)) ...
class ShardSampler {
 public:
  ShardSampler(std::size_t n, std::uint64_t seed, int rank, int size, bool shuffle = true,
               bool drop_last = false);
  /// This rank's indices for `epoch` (num_samples() of them).
  std::vector<std::size_t> indices(std::size_t epoch) const;
  /// The permutation all ranks share for `epoch` (the identity without shuffle).
  std::vector<std::size_t> permutation(std::size_t epoch) const;
  /// Indices per rank: ceil(N / size), or floor(N / size) with drop_last.
  std::size_t num_samples() const;
  std::size_t size() const { return n_; }

 private:
  std::size_t n_;
  std::uint64_t seed_;
  int rank_, size_;
  bool shuffle_, drop_last_;
};

/// Reads a checkpoint on the root only and sends its bytes to every rank, so all ranks resume
/// from the same file even when only the root can see it. Collective; a missing or malformed
/// file throws IoError on every rank.
///     Checkpoint ck = dist::load_checkpoint_broadcast("run.ckpt.npz");
///     model.load_state_dict(ck.model);  opt.load_state_dict(ck.optimizer);
Checkpoint load_checkpoint_broadcast(const std::string& path, int root = 0,
                                     MPI_Comm comm = MPI_COMM_WORLD);

/// The root's bytes on every rank (any size: sent in chunks below MPI's int count limit).
/// The argument is read on the root only.
std::string broadcast_bytes(const std::string& bytes, int root = 0, MPI_Comm comm = MPI_COMM_WORLD);

/// MPI_Allreduce of one double: MPI_MAX, MPI_MIN or MPI_SUM over the ranks.
double allreduce(double v, MPI_Op op, MPI_Comm comm = MPI_COMM_WORLD);

}  // namespace xg::dist
