// Trains a small LSTM and GRU with xgrad for a few steps, then writes, into the folder given as
// the only argument (made if missing):
//   model.npz  the ModuleDict's state_dict ("lstm.*", "gru.*"), as Module::save writes it;
//   io.npz     an input and xgrad's outputs on it (lstm_output, lstm_h_n, lstm_c_n,
//              gru_output, gru_h_n), in float32.
// check_torch.py then loads model.npz into torch.nn.LSTM / GRU with scripts/xgrad_to_torch.py
// and compares torch's outputs with these.
#include <cstdio>
#include <filesystem>
#include <string>

#include <xgrad/xgrad.hpp>

using namespace xg;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  manual_seed(16);
  nn::ModuleDict<float> model;
  auto lstm = model.insert("lstm", std::make_shared<nn::LSTM<float>>(
                                       nn::LSTMOptions(3, 5).num_layers(2).bidirectional(true)));
  auto gru = model.insert("gru", std::make_shared<nn::GRU<float>>(nn::GRUOptions(3, 4).batch_first(true)));
  Generator gen(7);
  Var<float> x(normal<float>(Shape{6, 2, 3}, 0.f, 1.f, gen));        // [T, B, I]
  Var<float> xb(normal<float>(Shape{2, 6, 3}, 0.f, 1.f, gen));       // [B, T, I]
  Var<float> target(normal<float>(Shape{6, 2, 10}, 0.f, 1.f, gen));
  Var<float> target_b(normal<float>(Shape{2, 6, 4}, 0.f, 1.f, gen));

  // A few steps of training, so that the weights are xgrad's own rather than the initial ones.
  optim::Adam<float> opt(model.named_parameters(), optim::AdamOptions(0.05));
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    Var<float> loss = mse_loss(lstm->forward(x).output, target) + mse_loss(gru->forward(xb).output, target_b);
    loss.backward();
    opt.step();
  }

  NoGradGuard no_grad;
  auto l = lstm->forward(x);
  auto g = gru->forward(xb);
  model.save(dir + "/model.npz");
  ArrayMap io;
  io.emplace("lstm_input", x.value());
  io.emplace("lstm_output", l.output.value());
  io.emplace("lstm_h_n", l.h_n.value());
  io.emplace("lstm_c_n", l.c_n.value());
  io.emplace("gru_input", xb.value());
  io.emplace("gru_output", g.output.value());
  io.emplace("gru_h_n", g.h_n.value());
  save_npz(dir + "/io.npz", io);
  std::printf("wrote %s/model.npz and %s/io.npz\n", dir.c_str(), dir.c_str());
  return 0;
}
