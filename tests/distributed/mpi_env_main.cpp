// Errors under MPI reach the user. Launched by CTest as `mpirun -np 2 mpi_env_test MODE`:
//   caught:   rank 1 throws out of the Environment's scope and main catches and prints it, while
//             rank 0 waits in a barrier. The message must be printed (an abort in the
//             Environment's destructor used to end the job first), then the job must end.
//   uncaught: rank 1's exception escapes main: it is printed with the rank, then the job ends.
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include <xgrad/distributed/distributed.hpp>

int main(int argc, char** argv) {
  const bool caught = argc > 1 && std::strcmp(argv[1], "caught") == 0;
  auto body = [&] {
    xg::dist::Environment env(argc, argv);
    if (env.rank() == 1) throw std::runtime_error("boom on rank 1");
    env.barrier();  // rank 0 waits for rank 1, which never comes
  };
  if (!caught) {
    body();
    return 0;
  }
  try {
    body();
  } catch (const std::exception& e) {
    fmt::print(stderr, "caught: {}\n", e.what());
    return 3;
  }
  return 0;
}
