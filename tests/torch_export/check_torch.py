#!/usr/bin/env python3
"""Loads the state_dict written by export_rnn into torch.nn.LSTM and torch.nn.GRU with
scripts/xgrad_to_torch.py, runs them on the same input and compares their outputs with xgrad's.

usage: check_torch.py DIR      (DIR holds model.npz and io.npz from export_rnn)

Exits 0 when torch reproduces xgrad's outputs, 1 when it does not, and 77 (which CTest reports as
"Skipped", not "Passed") when PyTorch or NumPy is not installed.
"""

import os
import sys

SKIP = 77

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"SKIPPED: this check needs PyTorch and NumPy ({e}); "
          "on Debian 12: apt-get install python3-torch python3-numpy")
    sys.exit(SKIP)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import xgrad_to_torch  # noqa: E402


def close(name, got, want, tol=2e-5):
    err = float(np.max(np.abs(got - want)))
    ok = got.shape == want.shape and err <= tol
    print(f"{name:12s} shape {tuple(got.shape)}  max |torch - xgrad| = {err:.2e}  {'ok' if ok else 'FAILED'}")
    return ok


def main():
    d = sys.argv[1]
    io = np.load(os.path.join(d, "io.npz"))
    model = os.path.join(d, "model.npz")
    ok = True
    with torch.no_grad():
        lstm = xgrad_to_torch.load_rnn(model, prefix="lstm.")
        print(lstm)
        out, (h, c) = lstm(torch.from_numpy(io["lstm_input"]))
        ok &= close("lstm output", out.numpy(), io["lstm_output"])
        ok &= close("lstm h_n", h.numpy(), io["lstm_h_n"])
        ok &= close("lstm c_n", c.numpy(), io["lstm_c_n"])
        gru = xgrad_to_torch.load_rnn(model, prefix="gru.", batch_first=True)
        print(gru)
        out, h = gru(torch.from_numpy(io["gru_input"]))
        ok &= close("gru output", out.numpy(), io["gru_output"])
        ok &= close("gru h_n", h.numpy(), io["gru_h_n"])
    # A prefix with no weights is an error, not an empty model.
    try:
        xgrad_to_torch.load_rnn(model, prefix="head.")
        print("load_rnn accepted a prefix with no weights: FAILED")
        ok = False
    except ValueError as e:
        print(f"missing prefix refused: {e}")
    print("torch reproduces xgrad's outputs" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
