"""Random RWKV checkpoints in RWKV-LM's `.pth` layout, one generator per version.

The values imitate a trained model closely enough that every path of the forward pass
does non-trivial arithmetic: decays spread over (0.3, 0.999), mixing coefficients in
(0, 1), layer norms near 1, low-rank branches small but not negligible.

Arch names follow rwkv.cpp: "5.1" is RWKV-5 with `ln_x` and no gate (the reference
package calls it 5.0), "5.2" has the gate and per-channel decays.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from . import ARCHS

# Substrings of the keys rwkv.cpp's converter keeps in FP32 even in an FP16 file.
_FP32_KEY_PARTS = (".time_", ".k_k", ".k_a", ".r_k", ".x_", ".w0", ".a0", ".v0")

# Low-rank sizes: RWKV-6 uses 32 (mix) and 64 (decay); RWKV-7 ranks are scaled down
# to stay multiples of 16 at n_embd 64.
V6_MIX_RANK, V6_DECAY_RANK = 32, 64
V7_DECAY_RANK, V7_A_RANK, V7_V_RANK, V7_GATE_RANK = 16, 16, 16, 32


def ffn_size(arch: str, n_embd: int) -> int:
    """Hidden size of the channel mix as RWKV-LM chooses it for each version."""
    if arch in ("5.1", "5.2", "6"):
        return int(n_embd * 3.5) // 32 * 32
    return 4 * n_embd


class _Random:
    """Seeded helpers that draw float32 tensors of one shape."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def normal(self, *shape: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        return mean + std * torch.randn(shape, generator=self.generator)

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=self.generator)

    def matrix(self, n_out: int, n_in: int, gain: float = 1.0) -> torch.Tensor:
        """A (n_out, n_in) weight that keeps activations at unit scale."""
        return self.normal(n_out, n_in, std=gain / math.sqrt(n_in))

    def decay_log_log(self, *shape: int) -> torch.Tensor:
        """d such that exp(-exp(d)) is spread over (0.3, 0.999)."""
        return self.uniform(*shape, low=math.log(-math.log(0.999)), high=math.log(-math.log(0.3)))

    def mix(self, n_embd: int) -> torch.Tensor:
        return self.uniform(1, 1, n_embd)


def _layer_norm(sd: dict, prefix: str, rnd: _Random, n_embd: int) -> None:
    sd[prefix + ".weight"] = rnd.normal(n_embd, mean=1.0, std=0.1)
    sd[prefix + ".bias"] = rnd.normal(n_embd, std=0.05)


def _att_v4(sd: dict, att: str, rnd: _Random, C: int, H: int) -> None:
    sd[att + "time_decay"] = rnd.uniform(C, low=-6.0, high=1.0)
    sd[att + "time_first"] = rnd.normal(C, mean=math.log(0.3), std=0.5)
    for name in ("k", "v", "r"):
        sd[att + "time_mix_" + name] = rnd.mix(C)
    _projections(sd, att, rnd, C, ("key", "value", "receptance", "output"))


def _att_v5_1(sd: dict, att: str, rnd: _Random, C: int, H: int) -> None:
    for name in ("k", "v", "r"):
        sd[att + "time_mix_" + name] = rnd.mix(C)
    sd[att + "time_decay"] = rnd.decay_log_log(H)
    sd[att + "time_first"] = rnd.normal(H, mean=math.log(0.5), std=0.5)
    _projections(sd, att, rnd, C, ("receptance", "key", "value", "output"))
    _layer_norm(sd, att + "ln_x", rnd, C)


def _att_v5_2(sd: dict, att: str, rnd: _Random, C: int, H: int) -> None:
    N = C // H
    for name in ("k", "v", "r", "g"):
        sd[att + "time_mix_" + name] = rnd.mix(C)
    sd[att + "time_decay"] = rnd.decay_log_log(H, N)
    sd[att + "time_faaaa"] = rnd.normal(H, N, mean=0.3, std=0.3)
    _projections(sd, att, rnd, C, ("receptance", "key", "value", "output", "gate"))
    _layer_norm(sd, att + "ln_x", rnd, C)


def _att_v6(sd: dict, att: str, rnd: _Random, C: int, H: int) -> None:
    N = C // H
    for name in ("x", "w", "k", "v", "r", "g"):
        sd[att + "time_maa_" + name] = rnd.mix(C)
    sd[att + "time_maa_w1"] = rnd.normal(C, 5 * V6_MIX_RANK, std=0.1)
    sd[att + "time_maa_w2"] = rnd.normal(5, V6_MIX_RANK, C, std=0.05)
    sd[att + "time_decay"] = rnd.decay_log_log(1, 1, C)
    sd[att + "time_decay_w1"] = rnd.normal(C, V6_DECAY_RANK, std=0.1)
    sd[att + "time_decay_w2"] = rnd.normal(V6_DECAY_RANK, C, std=0.15)
    sd[att + "time_faaaa"] = rnd.normal(H, N, mean=0.3, std=0.3)
    _projections(sd, att, rnd, C, ("receptance", "key", "value", "output", "gate"))
    _layer_norm(sd, att + "ln_x", rnd, C)


def _att_v7(sd: dict, att: str, rnd: _Random, C: int, H: int) -> None:
    N = C // H
    for name in ("r", "w", "k", "v", "a", "g"):
        sd[att + "x_" + name] = rnd.mix(C)
    sd[att + "w0"] = rnd.uniform(1, 1, C, low=-6.0, high=0.0)
    sd[att + "w1"] = rnd.normal(C, V7_DECAY_RANK, std=0.15)
    sd[att + "w2"] = rnd.normal(V7_DECAY_RANK, C, std=0.3)
    sd[att + "a0"] = rnd.normal(1, 1, C, std=0.5)
    sd[att + "a1"] = rnd.normal(C, V7_A_RANK, std=0.1)
    sd[att + "a2"] = rnd.normal(V7_A_RANK, C, std=0.1)
    sd[att + "v0"] = rnd.normal(1, 1, C, std=0.5)
    sd[att + "v1"] = rnd.normal(C, V7_V_RANK, std=0.1)
    sd[att + "v2"] = rnd.normal(V7_V_RANK, C, std=0.1)
    sd[att + "g1"] = rnd.normal(C, V7_GATE_RANK, std=1.0 / math.sqrt(C))
    sd[att + "g2"] = rnd.normal(V7_GATE_RANK, C, std=1.0 / math.sqrt(V7_GATE_RANK))
    sd[att + "k_k"] = rnd.normal(1, 1, C, mean=0.85, std=0.1)
    sd[att + "k_a"] = rnd.normal(1, 1, C, mean=1.0, std=0.1)
    sd[att + "r_k"] = rnd.normal(H, N, mean=0.5, std=0.2)
    _projections(sd, att, rnd, C, ("receptance", "key", "value", "output"))
    _layer_norm(sd, att + "ln_x", rnd, C)


def _projections(sd: dict, att: str, rnd: _Random, C: int, names: tuple) -> None:
    for name in names:
        sd[att + name + ".weight"] = rnd.matrix(C, C, gain=0.7 if name == "output" else 1.0)


def _ffn(sd: dict, ffn: str, rnd: _Random, arch: str, C: int) -> None:
    F = ffn_size(arch, C)
    if arch == "7":
        sd[ffn + "x_k"] = rnd.mix(C)
    elif arch == "6":
        sd[ffn + "time_maa_k"] = rnd.mix(C)
        sd[ffn + "time_maa_r"] = rnd.mix(C)
    else:
        sd[ffn + "time_mix_k"] = rnd.mix(C)
        sd[ffn + "time_mix_r"] = rnd.mix(C)
    sd[ffn + "key.weight"] = rnd.matrix(F, C)
    if arch != "7":
        sd[ffn + "receptance.weight"] = rnd.matrix(C, C)
    sd[ffn + "value.weight"] = rnd.matrix(C, F, gain=0.5)


_TIME_MIX: dict[str, Callable] = {
    "4": _att_v4, "5.1": _att_v5_1, "5.2": _att_v5_2, "6": _att_v6, "7": _att_v7,
}


def make_state_dict(arch: str, *, n_embd: int = 64, n_layer: int = 2, n_vocab: int = 256,
                    head_size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random float32 RWKV-LM state dict, keys in the order RWKV-LM saves them.

    >>> sd = make_state_dict("6", n_layer=1)
    >>> sd["blocks.0.att.time_faaaa"].shape
    torch.Size([4, 16])
    """
    if arch not in _TIME_MIX:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    if n_embd % head_size:
        raise ValueError(f"n_embd {n_embd} is not a multiple of head_size {head_size}")
    rnd = _Random(seed)
    C, H = n_embd, n_embd // head_size
    sd: dict[str, torch.Tensor] = {"emb.weight": rnd.normal(n_vocab, C)}
    for i in range(n_layer):
        block = f"blocks.{i}."
        _layer_norm(sd, block + "ln1", rnd, C)
        _layer_norm(sd, block + "ln2", rnd, C)
        if i == 0:
            _layer_norm(sd, block + "ln0", rnd, C)
        _TIME_MIX[arch](sd, block + "att.", rnd, C, H)
        _ffn(sd, block + "ffn.", rnd, arch, C)
    _layer_norm(sd, "ln_out", rnd, C)
    sd["head.weight"] = rnd.matrix(n_vocab, C, gain=1.5)
    return sd


def make_checkpoint(arch: str, path, *, n_embd: int = 64, n_layer: int = 2, n_vocab: int = 256,
                    head_size: int = 16, seed: int = 0, dtype: torch.dtype = torch.float32) -> Path:
    """Write a random checkpoint (see `make_state_dict`) with every tensor in `dtype`.

    >>> make_checkpoint("7", tmp_path / "v7.pth", dtype=torch.bfloat16)
    """
    sd = make_state_dict(arch, n_embd=n_embd, n_layer=n_layer, n_vocab=n_vocab,
                         head_size=head_size, seed=seed)
    path = Path(path)
    torch.save({k: v.to(dtype) for k, v in sd.items()}, path)
    return path


def is_fp16_in_rwkvcpp(key: str, tensor: torch.Tensor) -> bool:
    """Whether rwkv.cpp's converter stores this tensor as FP16 in an FP16 file.

    It keeps 1-D tensors and the small per-channel parameters in FP32; every matrix
    (emb, head, projections, FFN, RWKV-7's low-rank w1..g2) becomes FP16.
    """
    if any(part in key for part in _FP32_KEY_PARTS):
        return False
    return tensor.dim() > 1


def round_to_fp16(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with what rwkv.cpp stores as FP16 rounded through float16.

    The reference run on the result computes on the same weights an FP16 file holds.
    """
    return {
        k: v.half().to(v.dtype) if is_fp16_in_rwkvcpp(k, v) else v.clone()
        for k, v in sd.items()
    }
