"""Reference outputs for the tests: BlinkDL's `rwkv` package run in subprocesses, cached.

The reference picks RWKV-7 or RWKV-4..6 code by the RWKV_V7_ON environment variable at
import time, so it always runs in a child process (`run_oracle.py`) with the variable
set for that job's version. `build_reference_cases` makes seeded checkpoints, runs the
reference on them (FP32 weights and the FP16-rounded weights of an FP16 file) and keeps
the results in a cache directory keyed by everything that can change them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoints

RUN_ORACLE = Path(__file__).with_name("run_oracle.py")
# The reference's CUDA kernels are never wanted; its TorchScript path is its default.
BASE_ENV = {"RWKV_JIT_ON": "1", "RWKV_CUDA_ON": "0"}


@dataclass(frozen=True)
class ReferenceJob:
    """One run of the reference: `tokens` one by one from `state_in` (None: fresh)."""

    pth_path: Path
    tokens: tuple[int, ...]
    arch: str
    state_in: np.ndarray | None = None


def _child_env(arch: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RWKV_V7_ON"}
    env.update(BASE_ENV)
    if arch == "7":
        env["RWKV_V7_ON"] = "1"
    return env


def _chunks(jobs: list, n_chunks: int) -> list[list]:
    size = math.ceil(len(jobs) / n_chunks)
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


def run_references(jobs: list[ReferenceJob]) -> list[dict[str, np.ndarray]]:
    """Run every job, several child processes at once; results in the order of `jobs`.

    Each result holds numpy arrays: tokens (T,), logits (T, n_vocab) and states
    (T, state_len) after each token, state_init (fresh flat state), state_in,
    logits_seq (T, n_vocab) and state_seq (final) from the reference's sequence mode,
    logits_fresh_last (the last token evaluated from the fresh state), state_names
    (flat segments in order), version (what the reference detected), upcast.
    """
    per_process = max(1, math.ceil(len(jobs) / (os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory(prefix="rwkv-oracle-") as tmp:
        tmp = Path(tmp)
        outputs = [tmp / f"job{i}.npz" for i in range(len(jobs))]
        batches = []  # (arch of the batch's environment, [job specs])
        for v7 in (False, True):
            specs = [_job_spec(job, out, tmp / f"state_in{i}.npy")
                     for i, (job, out) in enumerate(zip(jobs, outputs)) if (job.arch == "7") == v7]
            if specs:
                n_chunks = math.ceil(len(specs) / per_process)
                batches += [("7" if v7 else "4", chunk) for chunk in _chunks(specs, n_chunks)]
        processes = []
        for i, (arch, specs) in enumerate(batches):
            jobs_file, log = tmp / f"batch{i}.json", tmp / f"batch{i}.log"
            jobs_file.write_text(json.dumps(specs))
            with open(log, "wb") as log_out:
                proc = subprocess.Popen([sys.executable, str(RUN_ORACLE), str(jobs_file)],
                                        env=_child_env(arch), stdout=log_out, stderr=subprocess.STDOUT)
            processes.append((proc, log))
        for proc, _ in processes:
            proc.wait()
        for proc, log in processes:
            if proc.returncode != 0:
                raise RuntimeError(f"reference run failed (exit {proc.returncode}):\n"
                                   + log.read_text(errors="replace")[-4000:])
        return [_load_npz(out) for out in outputs]


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return dict(arrays)


def _job_spec(job: ReferenceJob, out: Path, state_in_path: Path) -> dict:
    spec = {"pth": str(Path(job.pth_path).resolve()), "tokens": [int(t) for t in job.tokens],
            "out": str(out), "state_in": None}
    if job.state_in is not None:
        np.save(state_in_path, np.asarray(job.state_in, dtype=np.float32))
        spec["state_in"] = str(state_in_path)
    return spec


def run_reference(pth_path, tokens: list[int], arch: str, *,
                  state_in: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The reference's outputs for one checkpoint (see `run_references` for the keys).

    >>> out = run_reference(tmp_path / "v6.pth", [1, 2, 3], "6")
    >>> out["logits"].shape, out["states"].shape
    ((3, 256), (3, 2304))
    """
    return run_references([ReferenceJob(Path(pth_path), tuple(tokens), arch, state_in)])[0]


# ---- cached cases for the oracle comparison tests ----

@dataclass(frozen=True)
class CaseSpec:
    """What determines a reference case; every field goes into the cache key."""

    arch: str
    n_embd: int = 64
    n_layer: int = 2
    n_vocab: int = 256
    head_size: int = 16
    seed: int = 0
    n_tokens: int = 72
    token_seed: int = 1234

    def tokens(self) -> np.ndarray:
        return np.random.default_rng(self.token_seed).integers(0, self.n_vocab, self.n_tokens)

    def cache_key(self) -> str:
        digest = hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode())
        for source in (checkpoints.__file__, RUN_ORACLE, __file__):
            digest.update(Path(source).read_bytes())
        digest.update(f"{torch.__version__} {_rwkv_version()}".encode())
        return f"v{self.arch}-{digest.hexdigest()[:16]}"


def _rwkv_version() -> str:
    from importlib.metadata import version

    return version("rwkv")


@dataclass(frozen=True)
class ReferenceCase:
    """A random checkpoint and the reference's outputs on a fixed token sequence.

    logits, logits_fp16, logits_seq: (T, n_vocab); states, states_fp16: (T, state_len),
    the full flat state after each token in rwkv.cpp's layout; state_init: (state_len,).
    `pth_fp16_path` holds the FP16-rounded weights (stored as float32); `*_fp16` are
    the reference's outputs on them, what an FP16 file should reproduce.
    logits_fresh_last: (n_vocab,), the last token evaluated from the fresh state.
    Arrays are read-only: the cases are shared by the whole session.
    """

    arch: str
    spec: CaseSpec
    pth_path: Path
    pth_fp16_path: Path
    tokens: np.ndarray
    logits: np.ndarray
    states: np.ndarray
    state_init: np.ndarray
    logits_fp16: np.ndarray
    states_fp16: np.ndarray
    logits_seq: np.ndarray
    logits_fresh_last: np.ndarray
    state_names: tuple[str, ...]
    version: float

    @property
    def state_len(self) -> int:
        return self.state_init.size


_CASE_FILES = ("fp32.pth", "fp16.pth", "fp32.npz", "fp16.npz")


def build_reference_cases(specs: list[CaseSpec], cache_dir) -> list[ReferenceCase]:
    """Load each case from `cache_dir`, building the missing ones (in parallel) first."""
    cache_dir = Path(cache_dir)
    missing = [s for s in specs if not _is_complete(cache_dir / s.cache_key())]
    if missing:
        _build(missing, cache_dir)
    return [_load_case(spec, cache_dir / spec.cache_key()) for spec in specs]


def _is_complete(case_dir: Path) -> bool:
    return all((case_dir / name).is_file() for name in _CASE_FILES)


def _build(specs: list[CaseSpec], cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_dir))
    try:
        jobs = []
        for spec in specs:
            case_dir = staging / spec.cache_key()
            case_dir.mkdir()
            sd = checkpoints.make_state_dict(spec.arch, n_embd=spec.n_embd, n_layer=spec.n_layer,
                                             n_vocab=spec.n_vocab, head_size=spec.head_size,
                                             seed=spec.seed)
            torch.save(sd, case_dir / "fp32.pth")
            torch.save(checkpoints.round_to_fp16(sd), case_dir / "fp16.pth")
            tokens = tuple(int(t) for t in spec.tokens())
            jobs += [ReferenceJob(case_dir / "fp32.pth", tokens, spec.arch),
                     ReferenceJob(case_dir / "fp16.pth", tokens, spec.arch)]
        results = run_references(jobs)
        for job, result in zip(jobs, results):
            np.savez(job.pth_path.with_suffix(".npz"), **result)
        for spec in specs:
            try:  # atomic publish; a concurrent builder may have won the race
                os.rename(staging / spec.cache_key(), cache_dir / spec.cache_key())
            except OSError:
                if not _is_complete(cache_dir / spec.cache_key()):
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_read_only(path: Path) -> dict[str, np.ndarray]:
    arrays = _load_npz(path)
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def _load_case(spec: CaseSpec, case_dir: Path) -> ReferenceCase:
    fp32, fp16 = (_load_read_only(case_dir / name) for name in ("fp32.npz", "fp16.npz"))
    return ReferenceCase(
        arch=spec.arch, spec=spec,
        pth_path=case_dir / "fp32.pth", pth_fp16_path=case_dir / "fp16.pth",
        tokens=fp32["tokens"], logits=fp32["logits"], states=fp32["states"],
        state_init=fp32["state_init"], logits_fp16=fp16["logits"], states_fp16=fp16["states"],
        logits_seq=fp32["logits_seq"], logits_fresh_last=fp32["logits_fresh_last"],
        state_names=tuple(str(n) for n in fp32["state_names"]),
        version=float(fp32["version"]),
    )
