#include "parallel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

#include "common.hpp"

#ifdef XGRAD_EXAMPLES_MPI
#include <xgrad/distributed/distributed.hpp>
#endif

namespace ex {

int launcher_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
  for (const char* name : {"PMIX_RANK", "PMI_RANK"})
    if (std::getenv(name)) return 1;  // a launcher that does not say how many
  return 0;
}

void require_one_process(const std::string& program) {
  const int n = launcher_size();
  if (n > 1)
    throw std::runtime_error(fmt::format(
        "{} is not data-parallel, but was started as one of {} MPI ranks; every rank would train "
        "the same model and write the same files. Run it without mpirun (or with -np 1)",
        program, n));
}

namespace {

void print_error(const std::string& message) {
  std::fflush(stdout);
  if (!message.empty()) std::fprintf(stderr, "error: %s\n", message.c_str());
}

}  // namespace

#ifdef XGRAD_EXAMPLES_MPI

struct Parallel::Mpi {
  xg::dist::Environment env;
  // The failure handshake (Parallel::fail) runs on a communicator of its own, so it can never be
  // matched against a collective the healthy ranks are waiting in on MPI_COMM_WORLD.
  MPI_Comm fail_comm = MPI_COMM_NULL;
  std::optional<xg::dist::DataParallel<float>> dp;  // destroyed before env finalises MPI

  Mpi(int& argc, char**& argv) : env(argc, argv) {
    if (MPI_Comm_dup(MPI_COMM_WORLD, &fail_comm) != MPI_SUCCESS)
      throw xg::dist::MpiError("parallel: MPI_Comm_dup failed");
  }
  ~Mpi() {
    dp.reset();
    if (fail_comm != MPI_COMM_NULL) MPI_Comm_free(&fail_comm);
  }
};

Parallel::Parallel(int& argc, char**& argv) {
  if (launcher_size() == 0) return;  // started directly: one rank, no MPI
  mpi_ = std::make_unique<Mpi>(argc, argv);
  rank_ = mpi_->env.rank();
  size_ = mpi_->env.size();
  // The report is printed once, by rank 0.
  if (rank_ != 0 && !std::freopen("/dev/null", "w", stdout))
    std::fprintf(stderr, "warning: rank %d: cannot send stdout to /dev/null\n", rank_);
}

Parallel::~Parallel() = default;

void Parallel::data_parallel(const std::vector<xg::Var<float>>& params) {
  if (!mpi_) return;
  mpi_->dp.reset();
  mpi_->dp.emplace(params);  // broadcasts rank 0's values, checks the parameter lists agree
  if (size_ > 1)
    fmt::print(
        "data-parallel: {} ranks, each computing gradients on 1/{} of every batch; {} "
        "bytes allreduced per step\n",
        size_, size_, mpi_->dp->bytes_per_step());
}

void Parallel::allreduce_gradients() {
  if (!mpi_ || size_ == 1) return;
  if (!mpi_->dp)
    throw std::logic_error("Parallel::allreduce_gradients: call data_parallel(params) first");
  mpi_->dp->allreduce_gradients();
}

double Parallel::sum(double v) const {
  if (!mpi_ || size_ == 1) return v;
  return xg::dist::allreduce(v, MPI_SUM);
}

void Parallel::sum(std::vector<double>& v) const {
  if (!mpi_ || size_ == 1 || v.empty()) return;
  if (MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM,
                    MPI_COMM_WORLD) != MPI_SUCCESS)
    throw xg::dist::MpiError(fmt::format("parallel: MPI_Allreduce of {} sums failed", v.size()));
}

xg::Checkpoint Parallel::load_checkpoint(const std::string& path) const {
  if (!mpi_) return xg::load_checkpoint(path);
  return xg::dist::load_checkpoint_broadcast(path);
}

void Parallel::finish() {
  if (!mpi_ || size_ == 1 || !mpi_->dp) return;
  const double d = mpi_->dp->max_divergence();
  if (d != 0)
    throw std::runtime_error(fmt::format(
        "data-parallel: the {} ranks ended with different parameters (largest difference from "
        "rank 0's: {:g}); the replicas diverged",
        size_, d));
  fmt::print("data-parallel: all {} ranks end with identical parameters\n", size_);
  std::fflush(stdout);
}

int Parallel::fail(int code, const std::string& message, double wait_s) {
  std::fflush(stdout);
  if (!mpi_ || size_ == 1) {
    print_error(message);
    return code;
  }
  // Did every rank fail? Then this is the same error everywhere (flags and data are the same on
  // every rank): rank 0 reports it and all exit normally. A rank that does not come within wait_s
  // is waiting for this one in a collective, so the job is aborted.
  MPI_Request req = MPI_REQUEST_NULL;
  int done = 0;
  if (MPI_Ibarrier(mpi_->fail_comm, &req) == MPI_SUCCESS) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
    while (MPI_Test(&req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (done) {
    if (is_root()) print_error(message);
    return code;
  }
  print_error(
      fmt::format("rank {} of {}: {}", rank_, size_, message.empty() ? "ended early" : message));
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code != 0 ? code : 1);
  return code;
}

#else  // one rank, no MPI

struct Parallel::Mpi {};

Parallel::Parallel(int&, char**&) {
  if (launcher_size() > 1)
    throw std::runtime_error(fmt::format(
        "started as one of {} MPI ranks, but this build has no MPI (xgrad::distributed was not "
        "built): every rank would train alone and write the same files. Run it without mpirun, "
        "or rebuild with MPI (Debian: libopenmpi-dev openmpi-bin)",
        launcher_size()));
}

Parallel::~Parallel() = default;

void Parallel::data_parallel(const std::vector<xg::Var<float>>&) {}
void Parallel::allreduce_gradients() {}
double Parallel::sum(double v) const {
  return v;
}
void Parallel::sum(std::vector<double>&) const {}
xg::Checkpoint Parallel::load_checkpoint(const std::string& path) const {
  return xg::load_checkpoint(path);
}
void Parallel::finish() {}
int Parallel::fail(int code, const std::string& message, double) {
  print_error(message);
  return code;
}

#endif

std::vector<std::size_t> Parallel::shard(std::size_t n) const {
  std::vector<std::size_t> mine;
  for (std::size_t i = static_cast<std::size_t>(rank_); i < n; i += static_cast<std::size_t>(size_))
    mine.push_back(i);
  return mine;
}

xg::Var<float> Parallel::weight_loss(const xg::Var<float>& loss, std::size_t mine,
                                     std::size_t n) const {
  const std::size_t num = static_cast<std::size_t>(size_) * mine;
  if (num == n) return loss;
  return loss * static_cast<float>(static_cast<double>(num) / static_cast<double>(n));
}

double Parallel::global_mean(double mean, std::size_t mine, std::size_t n) const {
  if (size_ == 1) return mean;
  return sum(mine == 0 ? 0.0 : mean * static_cast<double>(mine)) / static_cast<double>(n);
}

int run_main(int argc, char** argv, int (*body)(Parallel&, int, char**)) {
  std::unique_ptr<Parallel> par;
  try {
    par = std::make_unique<Parallel>(argc, argv);
    const int code = body(*par, argc, argv);
    if (code == 0) par->finish();
    std::fflush(stdout);
    return code;
  } catch (...) {
    const ExitStatus s = current_exit_status();
    if (!par) {
      print_error(s.message);
      return s.code;
    }
    return par->fail(s.code, s.message);
  }
}

}  // namespace ex
