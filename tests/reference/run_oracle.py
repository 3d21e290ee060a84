"""Runs BlinkDL's reference implementation (`rwkv.model.RWKV`) on checkpoints; a subprocess.

Usage: run_oracle.py JOBS.json, where JOBS.json is a list of
{"pth": path, "tokens": [ints], "out": path.npz, "state_in": path.npy or null}.
The parent sets RWKV_V7_ON (1 for RWKV-7 jobs only), RWKV_JIT_ON and RWKV_CUDA_ON
before this process imports `rwkv.model`; every job in one call shares that choice.

Also the one place that knows how the reference's state list maps onto rwkv.cpp's flat
float32 state (importable without importing the reference):
- v4, per layer 5 x C: ffn_xx, att_xx, att_aa, att_bb, att_pp; the reference's list is
  [att_xx, att_aa, att_bb, att_pp, ffn_xx] per layer.
- v5, v6, v7, per layer: ffn_xx (C), att_xx (C), att_kv (H x N x N) as the reference
  stores it ([head][key][value] for v5/v6, [head][value][key] for v7); the reference's
  list is [att_xx, att_kv, ffn_xx] per layer.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

V4_FLAT_PARTS = ("ffn_xx", "att_xx", "att_aa", "att_bb", "att_pp")
V4_REFERENCE_PARTS = ("att_xx", "att_aa", "att_bb", "att_pp", "ffn_xx")
MATRIX_FLAT_PARTS = ("ffn_xx", "att_xx", "att_kv")
MATRIX_REFERENCE_PARTS = ("att_xx", "att_kv", "ffn_xx")
V4_FRESH_PP = -1e30


def _parts(arch_is_v4: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if arch_is_v4:
        return V4_FLAT_PARTS, V4_REFERENCE_PARTS
    return MATRIX_FLAT_PARTS, MATRIX_REFERENCE_PARTS


def state_names(is_v4: bool, n_layer: int) -> list[str]:
    """Names of the flat state's segments in order, e.g. 'L0.ffn_xx'."""
    flat_parts, _ = _parts(is_v4)
    return [f"L{i}.{part}" for i in range(n_layer) for part in flat_parts]


def reference_state_to_flat(state: list, is_v4: bool) -> np.ndarray:
    """The reference's state list (tensors or arrays) as rwkv.cpp's flat float32 state."""
    flat_parts, ref_parts = _parts(is_v4)
    per_layer = len(ref_parts)
    pieces = []
    for i in range(len(state) // per_layer):
        layer = dict(zip(ref_parts, state[i * per_layer:(i + 1) * per_layer]))
        pieces += [np.asarray(layer[part], dtype=np.float32).reshape(-1) for part in flat_parts]
    return np.concatenate(pieces)


def flat_to_reference_state(flat: np.ndarray, is_v4: bool, n_layer: int, n_embd: int,
                            head_size: int) -> list[np.ndarray]:
    """rwkv.cpp's flat state as the reference's state list (numpy, reference shapes)."""
    flat_parts, ref_parts = _parts(is_v4)
    H = n_embd // head_size if head_size else 0
    shapes = {"att_kv": (H, head_size, head_size)}
    flat = np.asarray(flat, dtype=np.float32)
    state, offset = [], 0
    for _ in range(n_layer):
        layer = {}
        for part in flat_parts:
            shape = shapes.get(part, (n_embd,))
            size = int(np.prod(shape))
            layer[part] = flat[offset:offset + size].reshape(shape).copy()
            offset += size
        state += [layer[part] for part in ref_parts]
    if offset != flat.size:
        raise ValueError(f"flat state has {flat.size} floats, the layout needs {offset}")
    return state


def fresh_flat_state(is_v4: bool, n_layer: int, n_embd: int, head_size: int) -> np.ndarray:
    """The fresh state in rwkv.cpp's flat layout (zeros; v4's att_pp is -1e30)."""
    if not is_v4:
        return np.zeros(n_layer * n_embd * (2 + head_size), dtype=np.float32)
    flat = np.zeros((n_layer, 5, n_embd), dtype=np.float32)
    flat[:, V4_FLAT_PARTS.index("att_pp")] = V4_FRESH_PP
    return flat.reshape(-1)


# ---- running the reference (child process only) ----

def _load_model(pth: Path, workdir: Path):
    """Load the reference on `pth`, widened to float32 first if it holds other types."""
    import torch
    from rwkv.model import RWKV

    weights = torch.load(pth, map_location="cpu")
    upcast = any(t.dtype != torch.float32 for t in weights.values())
    if upcast:
        pth = workdir / "upcast.pth"
        torch.save({k: t.float() for k, t in weights.items()}, pth)
    elif pth.suffix != ".pth":  # the reference appends ".pth" to the name it is given
        link = workdir / "model.pth"
        link.symlink_to(pth.resolve())
        pth = link
    model = RWKV(str(pth)[:-len(".pth")], "cpu fp32", **({} if _is_v7() else {"verbose": False}))
    return model, upcast


def _is_v7() -> bool:
    return os.environ.get("RWKV_V7_ON") == "1"


def _dims(model) -> tuple[bool, int, int, int]:
    """(is_v4, n_layer, n_embd, head_size) of a loaded reference model."""
    if _is_v7():
        return False, model.n_layer, model.n_embd, model.head_size
    args = model.args
    if model.version == 4:
        return True, args.n_layer, args.n_embd, 0
    return False, args.n_layer, args.n_embd, args.n_att // args.n_head


def _to_reference_state(flat, model):
    import torch

    return [torch.from_numpy(part) for part in flat_to_reference_state(flat, *_dims(model))]


def _state_to_flat(state, model) -> np.ndarray:
    return reference_state_to_flat([t.detach().float().numpy() for t in state], _dims(model)[0])


def _run_token_by_token(model, tokens: list[int], start: np.ndarray):
    """Logits (T, n_vocab) and flat states (T, state_len) after each token."""
    logits, states = [], []
    state = _to_reference_state(start, model)
    for token in tokens:
        out, state = model.forward([int(token)], state)
        logits.append(out.float().numpy().copy())
        states.append(_state_to_flat(state, model))
    return np.stack(logits).astype(np.float32), np.stack(states)


def run_job(pth: Path, tokens: list[int], state_in: np.ndarray | None) -> dict[str, np.ndarray]:
    """Token-by-token and sequence-mode outputs of the reference, as numpy arrays."""
    import torch

    with tempfile.TemporaryDirectory() as workdir:  # outlives the model: RWKV-7 mmaps its file
        model, upcast = _load_model(Path(pth), Path(workdir))
        is_v4, n_layer, n_embd, head_size = _dims(model)
        state_init = fresh_flat_state(is_v4, n_layer, n_embd, head_size)
        start = state_init if state_in is None else np.asarray(state_in, dtype=np.float32)
        with torch.no_grad():
            logits, states = _run_token_by_token(model, tokens, start)
            if len(tokens) > 1:
                out, seq_state = model.forward([int(t) for t in tokens],
                                               _to_reference_state(start, model), full_output=True)
                logits_seq, state_seq = out.float().numpy(), _state_to_flat(seq_state, model)
            else:
                logits_seq, state_seq = logits, states[-1]
            fresh_out, _ = model.forward([int(tokens[-1])], _to_reference_state(state_init, model))
            version = 7.0 if _is_v7() else model.version

    return {
        "tokens": np.asarray(tokens, dtype=np.int64),
        "logits": logits,
        "states": states,
        "state_init": state_init,
        "state_in": start,
        "logits_seq": logits_seq.astype(np.float32),
        "state_seq": state_seq,
        "logits_fresh_last": fresh_out.float().numpy(),
        "state_names": np.asarray(state_names(is_v4, n_layer)),
        "version": np.float64(version),
        "upcast": np.bool_(upcast),
    }


def main(jobs_path: str) -> None:
    import torch

    torch.set_num_threads(1)  # the parent runs several of these side by side
    for job in json.loads(Path(jobs_path).read_text()):
        state_in = np.load(job["state_in"]) if job.get("state_in") else None
        result = run_job(Path(job["pth"]), job["tokens"], state_in)
        tmp = job["out"] + ".tmp.npz"
        np.savez(tmp, **result)
        os.replace(tmp, job["out"])


if __name__ == "__main__":
    main(sys.argv[1])
