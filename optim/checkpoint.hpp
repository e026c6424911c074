// Checkpoints: the model, the optimizer state, the schedule and the random engine in one .npz,
// written atomically (a temporary file, flushed, renamed over the old one), so a crash mid-save
// never loses the previous checkpoint.
//
//     Checkpoint ck{model.state_dict(), opt.state_dict(), {}};
//     ck.set_text("rng", gen.state());
//     ck.set_scalar("epoch", epoch);
//     save_checkpoint("run.ckpt.npz", ck);
//     ...
//     Checkpoint back = load_checkpoint("run.ckpt.npz");
//     model.load_state_dict(back.model); opt.load_state_dict(back.optimizer);
//     gen.set_state(back.text("rng"));
#pragma once

#include <string>

#include <xgrad/tensor/npy.hpp>

namespace xg {

struct Checkpoint {
  ArrayMap model, optimizer, extra;

  /// Small values kept in `extra`: numbers and text (stored as int64 arrays).
  void set_scalar(const std::string& key, double v);
  double scalar(const std::string& key) const;
  void set_text(const std::string& key, const std::string& text);
  std::string text(const std::string& key) const;
};

/// Keys are stored as "model/<name>", "optim/<name>" and "extra/<name>".
void save_checkpoint(const std::string& path, const Checkpoint& ck);
/// Throws IoError naming the file when it is missing, truncated or not a checkpoint.
Checkpoint load_checkpoint(const std::string& path);
/// The checkpoint held in arrays read from an .npz (keys "model/...", "optim/...", "extra/...");
/// `path` names the source in errors. load_checkpoint is this on load_npz(path).
Checkpoint checkpoint_from_arrays(ArrayMap arrays, const std::string& path);

}  // namespace xg
