"""Tests of the test infrastructure itself: random checkpoints, the reference runner and
the mapping between the reference's state and rwkv.cpp's flat state."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from reference import ARCHS, REFERENCE_VERSION
from reference.checkpoints import ffn_size, is_fp16_in_rwkvcpp, make_checkpoint, make_state_dict, round_to_fp16
from reference.oracle import ReferenceJob, run_references
from reference.run_oracle import flat_to_reference_state, fresh_flat_state, reference_state_to_flat, state_names

_REPO = Path(__file__).resolve().parent.parent
FIXTURES = next((d for d in (_REPO / "shared" / "fixtures" / "rwkvcpp",
                             _REPO.parent / "shared" / "fixtures" / "rwkvcpp") if d.is_dir()), None)

# The reference against itself (sequence vs token by token, or a state passed back in):
# only float32 summation order differs.
SELF_CONSISTENCY_ATOL = 1e-4
# The fixture npz files come from the same reference and torch versions on the same
# weights: only thread counts may differ (they matched bit for bit when written).
FIXTURE_ATOL = 1e-5

C, H, N, L = 64, 4, 16, 2
EXPECTED_ATT_SHAPES = {
    "4": {"time_decay": (C,), "time_first": (C,), "time_mix_k": (1, 1, C), "key.weight": (C, C)},
    "5.1": {"time_decay": (H,), "time_first": (H,), "ln_x.weight": (C,), "time_mix_r": (1, 1, C)},
    "5.2": {"time_decay": (H, N), "time_faaaa": (H, N), "time_mix_g": (1, 1, C), "gate.weight": (C, C)},
    "6": {"time_maa_x": (1, 1, C), "time_maa_w1": (C, 160), "time_maa_w2": (5, 32, C),
          "time_decay": (1, 1, C), "time_decay_w1": (C, 64), "time_decay_w2": (64, C),
          "time_faaaa": (H, N), "gate.weight": (C, C)},
    "7": {"x_r": (1, 1, C), "w0": (1, 1, C), "w1": (C, 16), "w2": (16, C), "a1": (C, 16),
          "v0": (1, 1, C), "v2": (16, C), "g1": (C, 32), "g2": (32, C), "r_k": (H, N),
          "k_k": (1, 1, C), "ln_x.bias": (C,)},
}
ABSENT_ATT_KEYS = {"4": ["ln_x.weight", "gate.weight"], "5.1": ["gate.weight", "time_mix_g"],
                   "5.2": ["time_first"], "6": ["time_mix_k"], "7": ["gate.weight", "time_decay"]}


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_has_rwkv_lm_keys_and_shapes(arch):
    sd = make_state_dict(arch)
    keys = list(sd)
    assert keys[0] == "emb.weight" and keys[-3:] == ["ln_out.weight", "ln_out.bias", "head.weight"]
    assert keys[1:7] == [f"blocks.0.{n}.{p}" for n in ("ln1", "ln2", "ln0") for p in ("weight", "bias")]
    assert "blocks.1.ln0.weight" not in sd
    for i in range(L):
        block = [k for k in keys if k.startswith(f"blocks.{i}.")]
        first_ffn = next(j for j, k in enumerate(block) if ".ffn." in k)
        assert all(".ffn." in k for k in block[first_ffn:]), "every att key comes before the ffn"
        for name, shape in EXPECTED_ATT_SHAPES[arch].items():
            assert tuple(sd[f"blocks.{i}.att.{name}"].shape) == shape, name
        for name in ABSENT_ATT_KEYS[arch]:
            assert f"blocks.{i}.att.{name}" not in sd
        F = ffn_size(arch, C)
        assert tuple(sd[f"blocks.{i}.ffn.key.weight"].shape) == (F, C)
        assert tuple(sd[f"blocks.{i}.ffn.value.weight"].shape) == (C, F)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in sd.values())
    assert torch.equal(make_state_dict(arch)["head.weight"], sd["head.weight"]), "seeded"
    assert not torch.equal(make_state_dict(arch, seed=1)["head.weight"], sd["head.weight"])


def test_checkpoint_is_written_in_the_requested_dtype(tmp_path):
    path = make_checkpoint("7", tmp_path / "v7.pth", dtype=torch.bfloat16, n_layer=1)
    sd = torch.load(path)
    assert all(t.dtype == torch.bfloat16 for t in sd.values())
    assert torch.equal(sd["emb.weight"], make_state_dict("7", n_layer=1)["emb.weight"].bfloat16())


def test_round_to_fp16_rounds_what_rwkvcpp_stores_as_fp16():
    sd = make_state_dict("7")
    rounded = round_to_fp16(sd)
    fp16 = {"emb.weight", "head.weight", "blocks.0.att.key.weight", "blocks.1.ffn.value.weight",
            "blocks.0.att.w1", "blocks.1.att.g2"}
    fp32 = {"blocks.0.ln0.weight", "blocks.0.att.x_r", "blocks.0.att.w0", "blocks.0.att.r_k",
            "blocks.0.att.k_k", "blocks.0.ffn.x_k", "blocks.0.att.ln_x.weight", "blocks.0.att.v0"}
    for key in fp16:
        assert is_fp16_in_rwkvcpp(key, sd[key])
        assert torch.equal(rounded[key], sd[key].half().float()) and not torch.equal(rounded[key], sd[key])
    for key in fp32:
        assert not is_fp16_in_rwkvcpp(key, sd[key])
        assert torch.equal(rounded[key], sd[key])
    v6 = make_state_dict("6")
    assert not any(is_fp16_in_rwkvcpp(k, t) for k, t in v6.items() if ".time_" in k)


@pytest.mark.parametrize("is_v4", [True, False], ids=["v4", "v5-v7"])
def test_state_layout_round_trips(is_v4):
    head_size = 0 if is_v4 else N
    size = L * C * (5 if is_v4 else 2 + N)
    flat = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    state = flat_to_reference_state(flat, is_v4, L, C, head_size)
    assert np.array_equal(reference_state_to_flat(state, is_v4), flat)
    if is_v4:  # reference list [att_xx, aa, bb, pp, ffn_xx]; flat ffn_xx, att_xx, aa, bb, pp
        assert [s.shape for s in state] == [(C,)] * 5 * L
        assert np.array_equal(state[5 + 4], flat[5 * C:6 * C]), "L1 ffn_xx comes first in flat"
        assert np.array_equal(state[5 + 3], flat[9 * C:10 * C]), "L1 att_pp comes last in flat"
    else:  # reference list [att_xx, att_kv, ffn_xx]; flat ffn_xx, att_xx, att_kv
        assert [s.shape for s in state[:3]] == [(C,), (H, N, N), (C,)]
        assert np.array_equal(state[2], flat[:C]) and np.array_equal(state[0], flat[C:2 * C])
        assert np.array_equal(state[1].reshape(-1), flat[2 * C:C * (2 + N)])
    with pytest.raises(ValueError):
        flat_to_reference_state(flat[:-1], is_v4, L, C, head_size)


def test_fresh_state_and_names_follow_rwkvcpp():
    v4 = fresh_flat_state(True, L, C, 0).reshape(L, 5, C)
    assert (v4[:, 4] == -1e30).all() and (v4[:, :4] == 0).all()
    assert state_names(True, 1) == ["L0.ffn_xx", "L0.att_xx", "L0.att_aa", "L0.att_bb", "L0.att_pp"]
    assert not fresh_flat_state(False, L, C, N).any()
    assert state_names(False, 1) == ["L0.ffn_xx", "L0.att_xx", "L0.att_kv"]


def test_reference_detects_the_intended_version(reference_case):
    assert reference_case.version == REFERENCE_VERSION[reference_case.arch]


def test_reference_sequence_mode_agrees_with_token_by_token(reference_case):
    np.testing.assert_allclose(reference_case.logits_seq, reference_case.logits,
                               rtol=0, atol=SELF_CONSISTENCY_ATOL)


def test_reference_case_exercises_the_model(reference_case):
    case = reference_case
    T = len(case.tokens)
    assert case.logits.shape == (T, 256) and case.states.shape == (T, case.state_len)
    assert np.isfinite(case.logits).all() and np.isfinite(case.states).all()
    assert (case.logits.std(axis=1) > 0.5).all(), "logits must tell tokens apart"
    assert np.abs(case.logits[-1] - case.logits_fresh_last).max() > 0.5, "the state must matter"
    fp16_effect = np.abs(case.logits_fp16 - case.logits).max()
    assert 1e-4 < fp16_effect < 0.1, "FP16 rounding is visible but small"
    assert np.array_equal(case.states_fp16.shape, case.states.shape)


def test_reference_continues_from_a_given_state(reference_cases):
    split = 40
    cases = list(reference_cases.values())
    jobs = [ReferenceJob(c.pth_path, tuple(c.tokens[split:]), c.arch, state_in=c.states[split - 1])
            for c in cases]
    for case, result in zip(cases, run_references(jobs)):
        np.testing.assert_allclose(result["logits"], case.logits[split:], rtol=0, atol=SELF_CONSISTENCY_ATOL)
        np.testing.assert_allclose(result["states"], case.states[split:], rtol=0, atol=SELF_CONSISTENCY_ATOL)


def _read_rwkvcpp_fp32_bin(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of an FP32 rwkv.cpp `.bin` file, in file order."""
    data = path.read_bytes()
    magic, _version, _n_vocab, _n_embd, _n_layer, data_type = struct.unpack_from("<6i", data)
    assert magic == 0x67676D66 and data_type == 0
    offset, tensors = 24, {}
    while offset < len(data):
        n_dims, key_len, tensor_type = struct.unpack_from("<3i", data, offset)
        assert tensor_type == 0
        shape = struct.unpack_from(f"<{n_dims}i", data, offset + 12)[::-1]
        offset += 12 + 4 * n_dims
        key = data[offset:offset + key_len].decode()
        offset += key_len
        count = int(np.prod(shape))
        tensors[key] = torch.from_numpy(np.frombuffer(data, np.float32, count, offset).reshape(shape).copy())
        offset += 4 * count
    return tensors


def _undo_rwkvcpp_conversion(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """RWKV-LM tensors back from rwkv.cpp's converted ones (decays, trailing unit dims)."""
    is_v5 = any(".ln_x." in k for k in tensors)
    sd = {}
    for key, t in tensors.items():
        t = t.double()
        if key.endswith(".time_decay"):
            t = torch.log(-torch.log(t)) if is_v5 else torch.log(-t)
        if is_v5 and (key.endswith(".time_decay") or key.endswith(".time_faaaa")):
            t = t.squeeze(-1)
        sd[key] = t.float()
    return sd


@pytest.mark.skipif(FIXTURES is None, reason="shared/fixtures/rwkvcpp not found")
@pytest.mark.parametrize("model, npz_name", [
    ("4v0-660K", "4v0-660K-FP32.oracle.prompt70.npz"),
    ("5v2-730K", "5v2-730K-FP32.oracle-eps64e-5.prompt70.npz"),
])
def test_runner_reproduces_the_fixture_oracle_outputs(tmp_path, model, npz_name):
    """The fixture npz files were made independently from rwkv.cpp's `.bin` files; running
    our runner on the same weights must give the same logits and flat state."""
    expected = np.load(FIXTURES / "oracle" / npz_name)
    sd = _undo_rwkvcpp_conversion(_read_rwkvcpp_fp32_bin(FIXTURES / f"tiny-rwkv-{model}-FP32.bin"))
    torch.save(sd, tmp_path / "model.pth")
    arch = "4" if model.startswith("4") else "5.2"
    [result] = run_references([ReferenceJob(tmp_path / "model.pth", tuple(expected["tokens"]), arch)])
    np.testing.assert_allclose(result["state_init"], expected["state_init_flat"])
    np.testing.assert_allclose(result["logits"], expected["logits"], rtol=0, atol=FIXTURE_ATOL)
    np.testing.assert_allclose(result["states"][-1], expected["state_flat"], rtol=0, atol=FIXTURE_ATOL)
