#!/usr/bin/env python3
"""Loads an xgrad state_dict (.npz) into torch.nn.LSTM, GRU or RNN.

xgrad's recurrent modules use PyTorch's parameter names, shapes and gate order, so the .npz that
`Module::save` writes is a PyTorch state_dict stored with NumPy. This script rebuilds the matching
torch module from the names and shapes alone (kind, sizes, layers, direction) and loads it:

    import xgrad_to_torch
    lstm = xgrad_to_torch.load_rnn("model.npz", prefix="lstm.")      # torch.nn.LSTM, float32
    output, (h_n, c_n) = lstm(x)

From the shell, it prints the module it built:

    scripts/xgrad_to_torch.py model.npz --prefix lstm. [--batch-first]

Needs PyTorch and NumPy (on Debian 12: apt-get install python3-torch python3-numpy). Options that
the weights cannot show must be given: batch_first, the RNN's nonlinearity (tanh or relu); dropout
between layers is a training option and is not restored.
"""

import argparse
import re
import sys

import numpy as np

try:
    import torch
except ImportError:  # reported by the functions that need it
    torch = None


def rnn_config(state, prefix=""):
    """The torch.nn.LSTM/GRU/RNN constructor arguments implied by the names and shapes of `state`
    (a dict of arrays; keys start with `prefix`). Raises ValueError when they do not fit."""
    keys = [k[len(prefix):] for k in state if k.startswith(prefix)]
    layers = sorted(int(m.group(1)) for k in keys if (m := re.fullmatch(r"weight_ih_l(\d+)", k)))
    if not layers or layers != list(range(len(layers))):
        raise ValueError(f"no recurrent weights under prefix {prefix!r} (keys: {sorted(state)})")
    w_ih = state[prefix + "weight_ih_l0"]
    w_hh = state[prefix + "weight_hh_l0"]
    hidden = w_hh.shape[1]
    gates = w_hh.shape[0] // hidden
    kinds = {4: "LSTM", 3: "GRU", 1: "RNN"}
    if w_hh.shape[0] % hidden or gates not in kinds:
        raise ValueError(f"{prefix}weight_hh_l0 has shape {w_hh.shape}: not an LSTM, GRU or RNN")
    return {
        "kind": kinds[gates],
        "input_size": w_ih.shape[1],
        "hidden_size": hidden,
        "num_layers": len(layers),
        "bias": (prefix + "bias_ih_l0") in state,
        "bidirectional": (prefix + "weight_ih_l0_reverse") in state,
    }


def load_rnn(path_or_state, prefix="", batch_first=False, nonlinearity="tanh", dtype=None):
    """A torch.nn.LSTM, GRU or RNN holding the weights saved by xgrad under `prefix` (e.g. "lstm."
    for a ModuleDict entry), in eval mode. `dtype` defaults to the file's (float32 usually)."""
    if torch is None:
        raise RuntimeError("xgrad_to_torch: PyTorch is not installed (apt-get install python3-torch)")
    state = dict(np.load(path_or_state)) if isinstance(path_or_state, str) else dict(path_or_state)
    cfg = rnn_config(state, prefix)
    kind = cfg.pop("kind")
    kwargs = dict(cfg, batch_first=batch_first)
    if kind == "RNN":
        kwargs["nonlinearity"] = nonlinearity
    module = getattr(torch.nn, kind)(**kwargs)
    sd = {k[len(prefix):]: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()
          if k.startswith(prefix)}
    dtype = dtype or sd["weight_ih_l0"].dtype
    module = module.to(dtype)
    module.load_state_dict(sd, strict=True)  # names or shapes that do not fit raise here
    return module.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("npz", help="state_dict saved by xgrad (Module::save)")
    ap.add_argument("--prefix", default="", help="key prefix, e.g. 'lstm.' for a ModuleDict entry")
    ap.add_argument("--batch-first", action="store_true")
    ap.add_argument("--nonlinearity", default="tanh", choices=["tanh", "relu"])
    args = ap.parse_args()
    try:
        m = load_rnn(args.npz, args.prefix, args.batch_first, args.nonlinearity)
    except (RuntimeError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    print(m)


if __name__ == "__main__":
    main()
