// Saves that cannot be hijacked: the temporary file is new (O_EXCL, O_NOFOLLOW) and unpredictably
// named, a symlink at the target is replaced rather than followed, concurrent saves to one path
// all succeed, and temporary files left by killed saves are removed by the next save.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "test_util.hpp"

using namespace xg;
using xg::test::mentions;
namespace fs = std::filesystem;

namespace {
struct Scratch {
  fs::path dir = fs::temp_directory_path() / fmt::format("xgrad_saves_test_{}", ::getpid());
  Scratch() {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(saves)

BOOST_AUTO_TEST_CASE(planted_symlinks_are_never_followed) {
  Scratch tmp;
  const std::string victim = tmp / "victim.txt", ck = tmp / "run.npz";
  write_file_atomic(victim, "precious");
  // The old temporary name was "<path>.tmp.<pid>": a link planted there made a save overwrite
  // the victim, and the checkpoint became a link to it.
  fs::create_symlink(victim, fmt::format("{}.tmp.{}", ck, ::getpid()));
  Checkpoint c;
  c.set_scalar("epoch", 3);
  save_checkpoint(ck, c);
  BOOST_TEST(read_file(victim) == "precious");
  BOOST_TEST(fs::is_regular_file(fs::symlink_status(ck)));
  BOOST_TEST(load_checkpoint(ck).count("epoch") == 3u);
  // A link at the target itself is replaced by the file, not written through.
  fs::remove(ck);
  fs::create_symlink(victim, ck);
  save_checkpoint(ck, c);
  BOOST_TEST(read_file(victim) == "precious");
  BOOST_TEST(fs::is_regular_file(fs::symlink_status(ck)));
}

BOOST_AUTO_TEST_CASE(concurrent_saves_to_one_path_all_succeed) {
  Scratch tmp;
  const std::string path = tmp / "shared.npz";
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        Checkpoint c;
        c.model.emplace("w", full<float>(Shape{64, 64}, static_cast<float>(t * 100 + i)));
        c.set_scalar("version", t * 100 + i);
        try {
          save_checkpoint(path, c);
        } catch (const std::exception& e) {
          BOOST_TEST_MESSAGE(e.what());
          ++failures;
        }
      }
    });
  for (auto& th : threads) th.join();
  BOOST_TEST(failures.load() == 0);  // 8 of 20 failed with the shared temporary name
  const Checkpoint c = load_checkpoint(path);  // one of them, whole
  const double v = c.scalar("version");
  BOOST_TEST(xt::all(xt::equal(std::get<Array<float>>(c.model.at("w")), static_cast<float>(v))));
  BOOST_TEST(tmp.files() == std::vector<std::string>{"shared.npz"});  // no temporary left
}

BOOST_AUTO_TEST_CASE(temporary_files_of_killed_saves_are_removed) {
  Scratch tmp;
  const std::string path = tmp / "k.npz";
  // Left by a process that no longer exists (a child that has exited), in the old and new forms.
  const pid_t child = fork();
  BOOST_TEST_REQUIRE(child >= 0);
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  const std::string dead_old = fmt::format("{}.tmp.{}", path, child);
  const std::string dead_new = fmt::format("{}.tmp.{}.0123456789abcdef", path, child);
  // Belonging to live processes (this one, and pid 1): another save may be in flight.
  const std::string live_self = fmt::format("{}.tmp.{}.0123456789abcdef", path, ::getpid());
  const std::string live_other = fmt::format("{}.tmp.1.0123456789abcdef", path);
  const std::string unrelated = fmt::format("{}.tmp.notes", path);
  for (const auto& f : {dead_old, dead_new, live_self, live_other, unrelated}) write_file_atomic(f, "partial");
  save_npz(path, {{"x", Array<double>{1.0}}});
  BOOST_TEST(!fs::exists(dead_old));
  BOOST_TEST(!fs::exists(dead_new));
  BOOST_TEST(fs::exists(live_self));
  BOOST_TEST(fs::exists(live_other));
  BOOST_TEST(fs::exists(unrelated));
}

BOOST_AUTO_TEST_CASE(temporary_files_are_new_and_private_to_the_folder) {
  Scratch tmp;
  // A save into a folder that cannot be written fails cleanly and names the file.
  fs::create_directories(tmp / "ro");
  fs::permissions(tmp / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  if (::access((tmp / "ro").c_str(), W_OK) != 0) {  // root may write anyway
    BOOST_CHECK_EXCEPTION(write_file_atomic(tmp / "ro/x.npz", "x"), IoError, mentions({tmp / "ro/x.npz", "cannot write"}));
  }
  fs::permissions(tmp / "ro", fs::perms::owner_all);
  // The file is written where it is asked for, with the usual permissions (0666 less the umask).
  write_file_atomic(tmp / "p.bin", "abc");
  struct stat st;
  BOOST_TEST_REQUIRE(::stat((tmp / "p.bin").c_str(), &st) == 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  BOOST_TEST((st.st_mode & 0777) == (0666 & ~mask));
  BOOST_CHECK_EXCEPTION(write_file_atomic(tmp.dir.string() + "/", "x"), IoError, mentions("not a file name"));
}

BOOST_AUTO_TEST_SUITE_END()
