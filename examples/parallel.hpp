// Data-parallel training for the examples: the same binary trains alone or under
// `mpirun -np N`, with the same flags. Each rank takes its share of every global batch, the
// gradients are averaged over the ranks (xgrad::distributed's DataParallel), and every rank takes
// the same optimizer step, so the training curve is the single-process one up to float rounding.
//
//     int train(ex::Parallel& par, int argc, char** argv) {
//       ...
//       par.data_parallel(model.parameters());              // rank 0's values on every rank
//       for (each global batch of n examples) {
//         std::vector<std::size_t> mine = par.shard(n);     // this rank's positions in it
//         opt.zero_grad();
//         Var<float> loss = loss_on(mine);                  // a mean over `mine`
//         par.weight_loss(loss, mine.size(), n).backward();
//         par.allreduce_gradients();                        // now the global batch's gradient
//         opt.step();
//         const double global = par.global_mean(loss.item(), mine.size(), n);
//       }
//       if (par.is_root()) save_run(...);                   // rank 0 writes files
//     }
//     int main(int argc, char** argv) { return ex::run_main(argc, argv, train); }
//
// MPI is used only when the examples were built with xgrad::distributed (CMake found MPI) and the
// program was started by an MPI launcher (mpirun, mpiexec, srun). Otherwise there is one rank,
// no MPI call is made, and every function below reduces to the single-process code: shard(n) is
// all of 0..n-1, weight_loss returns the loss, allreduce_gradients does nothing.
//
// On the ranks other than 0, stdout goes to /dev/null, so the examples print their report with
// plain fmt::print and it appears once; stderr stays open on every rank for errors.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>
#include <xgrad/xgrad.hpp>

namespace ex {

/// The number of ranks an MPI launcher announced in the environment (OMPI_COMM_WORLD_SIZE of
/// Open MPI, PMI_SIZE of MPICH, Intel MPI and Slurm's srun, PMIX_SIZE): 0 when the program was
/// started directly. Reading it needs no MPI library.
int launcher_size();

/// For the examples that are not data-parallel (seq2seq, timeseries): throws (exit 1) when the
/// program was started as one of several MPI ranks, instead of training the same model N times
/// side by side and writing the same files.
void require_one_process(const std::string& program);

class Parallel {
 public:
  /// Starts MPI when built with it and launched by mpirun (see above); otherwise one rank.
  /// Throws when launched with several ranks by a build without MPI: each process would train
  /// alone and write the same files.
  Parallel(int& argc, char**& argv);
  ~Parallel();
  Parallel(const Parallel&) = delete;
  Parallel& operator=(const Parallel&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Rank 0: the one that prints, and writes the CSV, the plot and the checkpoints.
  bool is_root() const { return rank_ == 0; }

  /// This rank's positions in a global batch of n items: rank, rank + size, rank + 2 size, ...
  /// (0..n-1 on one rank). Shares differ by at most one item and may be empty when n < size.
  std::vector<std::size_t> shard(std::size_t n) const;
  /// This rank's items of a global batch: batch[shard(batch.size())] (all of it on one rank).
  template <class T>
  std::vector<T> take_shard(const std::vector<T>& batch) const {
    std::vector<T> mine;
    for (std::size_t i : shard(batch.size())) mine.push_back(batch[i]);
    return mine;
  }

  /// From now on, allreduce_gradients averages the gradients of `params`. Collective: copies
  /// rank 0's values to every rank, and checks that every rank holds the same parameter list.
  void data_parallel(const std::vector<xg::Var<float>>& params);

  /// The loss this rank backpropagates so that the ranks' mean gradient is the gradient of the
  /// global batch's mean loss, for a `loss` that is a mean over `mine` of the batch's `n` items:
  ///     loss * size * mine / n        (mean over ranks of that = sum_r mine_r / n * loss_r)
  /// Returned unchanged when the factor is 1 (one rank, or equal shares).
  xg::Var<float> weight_loss(const xg::Var<float>& loss, std::size_t mine, std::size_t n) const;

  /// Replaces every gradient by its mean over the ranks (nothing on one rank). Collective.
  void allreduce_gradients();

  /// The global batch's mean from this rank's `mean` over `mine` of its `n` items:
  /// sum_r mean_r mine_r / n. Exactly `mean` on one rank. Collective.
  double global_mean(double mean, std::size_t mine, std::size_t n) const;
  /// Sums over the ranks, elementwise for the vector (unchanged on one rank). Collective.
  double sum(double v) const;
  void sum(std::vector<double>& v) const;

  /// A checkpoint read by rank 0 and sent to every rank (xg::load_checkpoint on one rank).
  /// An unreadable file raises the same IoError on every rank. Collective.
  xg::Checkpoint load_checkpoint(const std::string& path) const;

  /// After a successful run (run_main calls it): with several ranks, checks that every rank
  /// ends with rank 0's parameters bit for bit, prints the verdict on rank 0 and throws if not.
  void finish();

  /// The end of a run that failed on this rank with exit code `code` and an error line
  /// (`message`, empty for none). Alone: prints "error: <message>", returns code. With several
  /// ranks it waits up to `wait_s` for the others: if they all failed too (a bad flag, a missing
  /// file), rank 0 prints its line and every rank returns code; otherwise this rank prints
  /// "error: rank R of N: <message>" and aborts the job (MPI_Abort), since the other ranks wait
  /// in a collective for it.
  int fail(int code, const std::string& message, double wait_s = 10.0);

 private:
  struct Mpi;  // the MPI state; null when there is none
  std::unique_ptr<Mpi> mpi_;
  int rank_ = 0, size_ = 1;
};

/// run_main for a body that trains with a Parallel: constructs it, runs body, and ends with
/// Parallel::finish() on success or Parallel::fail() on an exception (exit codes as run_main:
/// 1 an error, 2 a usage error, Exit's code).
int run_main(int argc, char** argv, int (*body)(Parallel&, int, char**));

}  // namespace ex
