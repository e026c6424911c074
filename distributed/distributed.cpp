#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <cmath>
#include <exception>
#include <numeric>

#include <fmt/format.h>

#include <xgrad/distributed/distributed.hpp>

namespace xg::dist {

namespace {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw MpiError(
      fmt::format("{} failed: {}", call, std::string(text, static_cast<std::size_t>(len))));
}
#define XG_MPI(call) check((call), #call)

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

// The most elements one message may carry: MPI counts are int.
std::size_t bucket_elements(std::size_t bucket_bytes, std::size_t elem) {
  return std::clamp<std::size_t>(bucket_bytes / elem, 1, INT_MAX);
}

int count_of(const detail::Bucket& b) {
  return static_cast<int>(b.end - b.begin);
}

std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Every rank must hold the same parameter list; otherwise the reductions would mix unrelated
// numbers (or wait forever). All ranks learn of a mismatch together and all throw.
template <class T>
void check_same_layout(const char* what, const NamedVars<T>& params, MPI_Comm comm) {
  std::uint64_t h = 1469598103934665603ull;
  std::int64_t elements = 0;
  for (const auto& [name, p] : params) {
    for (std::size_t d : p.shape()) h = mix64(h ^ d);
    h = mix64(h ^ 0xffu);
    elements += static_cast<std::int64_t>(p.size());
  }
  const std::int64_t hash = static_cast<std::int64_t>(h >> 1);
  const std::int64_t n = static_cast<std::int64_t>(params.size());
  std::int64_t v[6] = {n, -n, elements, -elements, hash, -hash};
  XG_MPI(MPI_Allreduce(MPI_IN_PLACE, v, 6, MPI_INT64_T, MPI_MAX, comm));
  if (v[0] != -v[1] || v[2] != -v[3] || v[4] != -v[5])
    throw ValueError(fmt::format(
        "{}: the ranks hold different parameter lists (here {} parameters, {} elements; across "
        "ranks {}..{} parameters, {}..{} elements, or shapes differ)",
        what, n, elements, -v[1], v[0], -v[3], v[2]));
}

template <class T>
NamedVars<T> named(const std::vector<Var<T>>& params) {
  NamedVars<T> out;
  out.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) out.emplace_back(std::to_string(i), params[i]);
  return out;
}

template <class T>
std::vector<std::size_t> sizes_of(const NamedVars<T>& params) {
  std::vector<std::size_t> s;
  for (const auto& [name, p] : params) {
    if (!p.defined())
      throw ValueError(fmt::format("distributed: parameter '{}' is undefined", name));
    s.push_back(p.size());
  }
  return s;
}

// Root's values -> every rank, one bucket per MPI_Bcast. With `compare`, values are not
// overwritten: the largest |own - root| is returned instead.
template <class T>
double bcast_values(const NamedVars<T>& params, int root, MPI_Comm comm, std::size_t bucket_bytes,
                    bool compare) {
  int me = 0;
  XG_MPI(MPI_Comm_rank(comm, &me));
  const auto buckets =
      detail::make_buckets(sizes_of(params), 0, bucket_elements(bucket_bytes, sizeof(T)));
  std::size_t largest = 0;
  for (const auto& b : buckets) largest = std::max(largest, b.end - b.begin);
  std::vector<T> buf(largest);
  double worst = 0;
  for (const auto& b : buckets) {
    if (me == root)
      for (const auto& s : b.segments)
        std::copy_n(params[s.param].second.value().data() + s.param_offset, s.count,
                    buf.data() + (s.flat_offset - b.begin));
    XG_MPI(MPI_Bcast(buf.data(), count_of(b), mpi_type<T>(), root, comm));
    if (me == root) continue;
    for (const auto& s : b.segments) {
      const T* src = buf.data() + (s.flat_offset - b.begin);
      Var<T> p = params[s.param].second;
      if (compare) {
        const T* own = p.value().data() + s.param_offset;
        for (std::size_t i = 0; i < s.count; ++i) {
          const double d = std::abs(static_cast<double>(own[i]) - static_cast<double>(src[i]));
          if (!(d <= worst)) worst = d;  // keeps a NaN
        }
      } else {
        std::copy_n(src, s.count, p.mutable_value().data() + s.param_offset);
      }
    }
  }
  return worst;
}

}  // namespace

namespace {
std::atomic<bool> abort_at_exit{false};
std::terminate_handler previous_terminate = nullptr;

bool mpi_running() {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  return initialised && !finalised;
}

std::string rank_label() {
  int r = 0, n = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return fmt::format("rank {} of {}", r, n);
}

// The process ends after an Environment was left by an exception: the program has had its chance
// to catch and print it; now end the job, since other ranks may wait for this one.
void end_job_at_exit() {
  if (!abort_at_exit || !mpi_running()) return;
  std::fflush(stdout);
  std::fprintf(stderr, "error: %s: ended by an error (see above); aborting the MPI job\n",
               rank_label().c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

// An exception nobody caught: print it with the rank, then end the job.
[[noreturn]] void terminate_with_rank() {
  if (mpi_running()) {
    std::string what = "terminated";
    if (auto e = std::current_exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        what = x.what();
      } catch (...) {
        what = "an exception that is not a std::exception";
      }
    }
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s: %s\n", rank_label().c_str(), what.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (previous_terminate) previous_terminate();
  std::abort();
}
}  // namespace

// ---- Environment ----------------------------------------------------------------------------

Environment::Environment(int& argc, char**& argv, int required) {
  init(&argc, &argv, required);
}
Environment::Environment(int required) {
  init(nullptr, nullptr, required);
}

void Environment::init(int* argc, char*** argv, int required) {
  int initialised = 0;
  XG_MPI(MPI_Initialized(&initialised));
  if (initialised) {
    XG_MPI(MPI_Query_thread(&provided_));
  } else {
    XG_MPI(MPI_Init_thread(argc, argv, required, &provided_));
    owns_ = true;
    static std::once_flag once;
    std::call_once(once, [] {
      std::atexit(end_job_at_exit);
      previous_terminate = std::set_terminate(terminate_with_rank);
    });
  }
  XG_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  XG_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size_));
}

Environment::~Environment() {
  if (!owns_) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (finalised) return;
  // Leaving by an exception: the other ranks may be waiting in a collective for this one, so
  // MPI_Finalize could hang; but aborting here would end the job before the program can catch
  // and print the error. Neither: the job is aborted when the process exits (end_job_at_exit).
  if (std::uncaught_exceptions() > 0) {
    abort_at_exit = true;
    return;
  }
  MPI_Finalize();
}

void Environment::barrier() const {
  XG_MPI(MPI_Barrier(MPI_COMM_WORLD));
}

int rank(MPI_Comm comm) {
  int r = 0;
  XG_MPI(MPI_Comm_rank(comm, &r));
  return r;
}

int size(MPI_Comm comm) {
  int s = 1;
  XG_MPI(MPI_Comm_size(comm, &s));
  return s;
}

double allreduce(double v, MPI_Op op, MPI_Comm comm) {
  XG_MPI(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, op, comm));
  return v;
}

// ---- Buckets ----------------------------------------------------------------------------------

std::vector<detail::Bucket> detail::make_buckets(const std::vector<std::size_t>& sizes,
                                                 std::size_t prefix, std::size_t bucket_elements) {
  const std::size_t total = std::accumulate(sizes.begin(), sizes.end(), prefix);
  std::vector<Bucket> out;
  std::size_t p = 0, done = 0;  // parameter p, of which `done` elements are placed
  for (std::size_t begin = 0; begin < total; begin += bucket_elements) {
    Bucket b{begin, std::min(total, begin + bucket_elements), {}};
    std::size_t at = std::max(b.begin, prefix);  // parameter data starts after the prefix
    while (at < b.end && p < sizes.size()) {
      const std::size_t n = std::min(sizes[p] - done, b.end - at);
      if (n > 0) b.segments.push_back({p, done, n, at});
      at += n;
      done += n;
      if (done == sizes[p]) ++p, done = 0;
    }
    out.push_back(std::move(b));
  }
  return out;
}

// ---- broadcast_parameters ----------------------------------------------------------------------

template <class T>
void broadcast_parameters(const NamedVars<T>& params, int root, MPI_Comm comm,
                          std::size_t bucket_bytes) {
  check_same_layout("broadcast_parameters", params, comm);
  bcast_values(params, root, comm, bucket_bytes, false);
}

template <class T>
void broadcast_parameters(const std::vector<Var<T>>& params, int root, MPI_Comm comm,
                          std::size_t bucket_bytes) {
  broadcast_parameters(named(params), root, comm, bucket_bytes);
}

// ---- DataParallel -----------------------------------------------------------------------------

template <class T>
DataParallel<T>::DataParallel(NamedVars<T> params, DataParallelOptions o, MPI_Comm comm)
    : params_(std::move(params)), options_(o), comm_(comm) {
  XG_MPI(MPI_Comm_rank(comm_, &rank_));
  XG_MPI(MPI_Comm_size(comm_, &size_));
  if (options_.root() < 0 || options_.root() >= size_)
    throw ValueError(fmt::format("DataParallel: root {} is not a rank of a {}-rank communicator",
                                 options_.root(), size_));
  const std::vector<std::size_t> sizes = sizes_of(params_);
  num_elements_ = std::accumulate(sizes.begin(), sizes.end(), std::size_t(0));
  check_same_layout("DataParallel", params_, comm_);
  // flat_ = [one flag per parameter | the parameters' gradients]: a parameter's flag always
  // lies in its first bucket or an earlier one, so unpacking in order knows it in time.
  buckets_ = detail::make_buckets(sizes, params_.size(),
                                  bucket_elements(options_.bucket_bytes(), sizeof(T)));
  flat_.resize(num_elements_ + params_.size());
  if (options_.broadcast_at_start()) broadcast_parameters();
}

template <class T>
DataParallel<T>::DataParallel(const std::vector<Var<T>>& params, DataParallelOptions o,
                              MPI_Comm comm)
    : DataParallel(named(params), o, comm) {}

template <class T>
void DataParallel<T>::broadcast_parameters() {
  bcast_values(params_, options_.root(), comm_, options_.bucket_bytes(), false);
}

template <class T>
double DataParallel<T>::max_divergence() const {
  const double mine = bcast_values(params_, options_.root(), comm_, options_.bucket_bytes(), true);
  // MPI_MAX drops NaN on some implementations: report a NaN as infinity.
  return allreduce(std::isnan(mine) ? INFINITY : mine, MPI_MAX, comm_);
}

template <class T>
void DataParallel<T>::pack(const detail::Bucket& b) {
  const std::size_t np = params_.size();
  for (std::size_t i = b.begin; i < std::min(b.end, np); ++i)
    flat_[i] = params_[i].second.has_grad() ? T(1) : T(0);
  for (const auto& s : b.segments) {
    const Var<T>& p = params_[s.param].second;
    T* dst = flat_.data() + s.flat_offset;
    if (p.has_grad() && pack_scale_ != T(1)) {
      const T* src = p.grad().data() + s.param_offset;
      for (std::size_t i = 0; i < s.count; ++i) dst[i] = src[i] * pack_scale_;
    } else if (p.has_grad()) {
      std::copy_n(p.grad().data() + s.param_offset, s.count, dst);
    } else {
      std::fill_n(dst, s.count, T(0));
    }
  }
}

template <class T>
void DataParallel<T>::unpack(const detail::Bucket& b) {
  const T inv = unpack_scale_;
  for (const auto& s : b.segments) {
    if (flat_[s.param] == T(0)) continue;  // no rank has a gradient: keep none
    Var<T>& p = params_[s.param].second;
    if (!p.has_grad()) {
      // Other ranks produced one: this rank's zeros took part, so it receives the mean too.
      p.set_grad(empty<T>(p.shape()));
    }
    T* dst = p.mutable_grad().data() + s.param_offset;
    const T* src = flat_.data() + s.flat_offset;
    for (std::size_t i = 0; i < s.count; ++i) dst[i] = src[i] * inv;
  }
}

template <class T>
void DataParallel<T>::allreduce_gradients(std::size_t examples) {
  // Counts of every rank: equal ones take the plain path (bit-identical to the unweighted mean).
  std::int64_t c[3] = {static_cast<std::int64_t>(examples), -static_cast<std::int64_t>(examples), 0};
  XG_MPI(MPI_Allreduce(MPI_IN_PLACE, c, 2, MPI_INT64_T, MPI_MAX, comm_));
  std::int64_t total = static_cast<std::int64_t>(examples);
  XG_MPI(MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_INT64_T, MPI_SUM, comm_));
  if (total == 0)
    throw ValueError("DataParallel::allreduce_gradients: no rank has any example (the counts sum to 0)");
  if (c[0] == -c[1]) {
    allreduce_gradients();
    return;
  }
  // grad = sum_r n_r grad_r / N: each rank scales its gradient by n_r / N before the sum.
  pack_scale_ = static_cast<T>(static_cast<double>(examples) / static_cast<double>(total));
  unpack_scale_ = T(1);
  try {
    reduce();
  } catch (...) {
    pack_scale_ = T(1), unpack_scale_ = T(1) / static_cast<T>(size_);
    throw;
  }
  pack_scale_ = T(1), unpack_scale_ = T(1) / static_cast<T>(size_);
}

template <class T>
void DataParallel<T>::allreduce_gradients() {
  unpack_scale_ = T(1) / static_cast<T>(size_);
  reduce();
}

template <class T>
void DataParallel<T>::reduce() {
  const double t0 = MPI_Wtime();
  if (size_ == 1) {  // nothing to average with; parameters keep their own gradients
    comm_seconds_ += MPI_Wtime() - t0;
    return;
  }
  if (!options_.pipeline()) {
    for (const auto& b : buckets_) {
      pack(b);
      XG_MPI(MPI_Allreduce(MPI_IN_PLACE, flat_.data() + b.begin, count_of(b), mpi_type<T>(),
                           MPI_SUM, comm_));
      unpack(b);
    }
  } else {
    std::vector<MPI_Request> req(buckets_.size(), MPI_REQUEST_NULL);
    for (std::size_t k = 0; k < buckets_.size(); ++k) {
      pack(buckets_[k]);
      XG_MPI(MPI_Iallreduce(MPI_IN_PLACE, flat_.data() + buckets_[k].begin, count_of(buckets_[k]),
                            mpi_type<T>(), MPI_SUM, comm_, &req[k]));
      int done = 0;  // lets MPI progress the buckets in flight while the next one is packed
      XG_MPI(MPI_Testall(static_cast<int>(k + 1), req.data(), &done, MPI_STATUSES_IGNORE));
    }
    for (std::size_t k = 0; k < buckets_.size(); ++k) {
      XG_MPI(MPI_Wait(&req[k], MPI_STATUS_IGNORE));
      unpack(buckets_[k]);
    }
  }
  comm_seconds_ += MPI_Wtime() - t0;
}

// ---- ShardSampler -----------------------------------------------------------------------------

ShardSampler::ShardSampler(std::size_t n, std::uint64_t seed, int rank, int size, bool shuffle,
                           bool drop_last)
    : n_(n), seed_(seed), rank_(rank), size_(size), shuffle_(shuffle), drop_last_(drop_last) {
  if (size <= 0 || rank < 0 || rank >= size)
    throw ValueError(fmt::format("ShardSampler: rank {} of {} ranks is out of range", rank, size));
}

std::size_t ShardSampler::num_samples() const {
  const auto s = static_cast<std::size_t>(size_);
  return drop_last_ ? n_ / s : (n_ + s - 1) / s;
}

std::vector<std::size_t> ShardSampler::permutation(std::size_t epoch) const {
  std::vector<std::size_t> perm(n_);
  std::iota(perm.begin(), perm.end(), std::size_t(0));
  if (!shuffle_ || n_ < 2) return perm;
  Generator gen(mix64(seed_ ^ mix64(epoch)));
  for (std::size_t i = n_ - 1; i > 0; --i) std::swap(perm[i], perm[gen.below(i + 1)]);
  return perm;
}

std::vector<std::size_t> ShardSampler::indices(std::size_t epoch) const {
  const std::vector<std::size_t> perm = permutation(epoch);
  std::vector<std::size_t> out;
  const std::size_t m = num_samples();
  out.reserve(m);
  for (std::size_t k = 0; k < m; ++k) {
    const std::size_t pos = static_cast<std::size_t>(rank_) + k * static_cast<std::size_t>(size_);
    out.push_back(perm[pos % n_]);  // past the end: wrap around (padding)
  }
  return out;
}

// ---- Checkpoints --------------------------------------------------------------------------------

namespace {
// The root sends {size, error length}, then the bytes or the error text.
std::string bcast_or_throw(const std::string& bytes, const std::string& error, int root,
                           MPI_Comm comm) {
  int me = 0;
  XG_MPI(MPI_Comm_rank(comm, &me));
  std::int64_t head[2] = {static_cast<std::int64_t>(bytes.size()),
                          static_cast<std::int64_t>(error.size())};
  XG_MPI(MPI_Bcast(head, 2, MPI_INT64_T, root, comm));
  const bool failed = head[1] > 0;
  std::string out = me == root
                        ? (failed ? error : bytes)
                        : std::string(static_cast<std::size_t>(failed ? head[1] : head[0]), '\0');
  constexpr std::size_t chunk = std::size_t(1) << 30;
  for (std::size_t at = 0; at < out.size(); at += chunk)
    XG_MPI(MPI_Bcast(out.data() + at, static_cast<int>(std::min(chunk, out.size() - at)), MPI_BYTE,
                     root, comm));
  if (failed) throw IoError(out);
  return out;
}
}  // namespace

std::string broadcast_bytes(const std::string& bytes, int root, MPI_Comm comm) {
  return bcast_or_throw(bytes, {}, root, comm);
}

Checkpoint load_checkpoint_broadcast(const std::string& path, int root, MPI_Comm comm) {
  std::string bytes, error;
  if (rank(comm) == root) {
    try {
      bytes = read_file(path);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = fmt::format("{}: cannot be read", path);
    }
  }
  bytes = bcast_or_throw(bytes, error, root, comm);
  // The same bytes on every rank: a malformed file throws the same IoError everywhere.
  return parse_checkpoint(bytes.data(), bytes.size(), path);
}

// ---- Instantiations -----------------------------------------------------------------------------

template void broadcast_parameters<float>(const std::vector<Var<float>>&, int, MPI_Comm,
                                          std::size_t);
template void broadcast_parameters<double>(const std::vector<Var<double>>&, int, MPI_Comm,
                                           std::size_t);
template void broadcast_parameters<float>(const NamedVars<float>&, int, MPI_Comm, std::size_t);
template void broadcast_parameters<double>(const NamedVars<double>&, int, MPI_Comm, std::size_t);
template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace xg::dist
