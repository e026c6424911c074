// Checkpoints: the model, the optimizer state, the schedule and the random engine in one .npz,
// written atomically and safely (write_file_atomic: a fresh temporary file, fsynced, renamed over
// the old one), so a crash mid-save never loses the previous checkpoint.
//
//     Checkpoint ck{model.state_dict(), opt.state_dict(), {}};
//     ck.set_text("rng", gen.state());
//     ck.set_scalar("epoch", epoch);
//     save_checkpoint("run.ckpt.npz", ck);
//     ...
//     Checkpoint back = load_checkpoint("run.ckpt.npz");
//     opt.check_state_dict(back.optimizer);            // validate everything first,
//     model.load_state_dict(back.model); opt.load_state_dict(back.optimizer);   // then change
//     gen.set_state(back.text("rng"));  std::size_t epoch = back.count("epoch");
#pragma once

#include <cstdint>
#include <string>

#include <xgrad/tensor/npy.hpp>

namespace xg {

struct Checkpoint {
  ArrayMap model, optimizer, extra;
  /// Text values ("extra/<key>" in the file, as numpy str arrays that numpy.load reads as text).
  TextMap texts{};
  /// The file it was read from ("" when made in memory); errors name it.
  std::string source{};

  /// Small values kept in `extra`: numbers, and text (in `texts`).
  void set_scalar(const std::string& key, double v);
  /// The one number stored under `key`; ValueError naming the file and key when it is missing,
  /// not a number array, or holds no number or several.
  double scalar(const std::string& key) const;
  /// A count (an epoch, a step): ValueError unless the number is whole, >= 0 and at most 2^53.
  std::uint64_t count(const std::string& key) const;
  void set_text(const std::string& key, const std::string& text);
  /// The text stored under `key` (also from checkpoints of older versions, which stored text as
  /// int64 arrays of character codes); ValueError naming the file and key when it is not there.
  std::string text(const std::string& key) const;
};

/// Keys are stored as "model/<name>", "optim/<name>" and "extra/<name>".
void save_checkpoint(const std::string& path, const Checkpoint& ck);
/// Throws IoError naming the file when it is missing, truncated or not a checkpoint.
Checkpoint load_checkpoint(const std::string& path);
/// The checkpoint in the bytes of an .npz file; `path` names the source in errors.
Checkpoint parse_checkpoint(const char* data, std::size_t size, const std::string& path);
/// The checkpoint held in arrays read from an .npz (keys "model/...", "optim/...", "extra/...");
/// `path` names the source in errors.
Checkpoint checkpoint_from_arrays(ArrayMap arrays, const std::string& path, TextMap texts = {});

}  // namespace xg
