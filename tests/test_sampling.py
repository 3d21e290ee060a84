"""The sampler (rwkv_cpp.Sampler over the C sampler of rwkv.h).

Compared against:
- an independent numpy implementation of the definitions in rwkv.h ("Sampling"): the
  probabilities (Sampler.probs) to float tolerance, the adjusted logits (Sampler.apply) bit
  for bit, and the drawn tokens by chi-square tests;
- BlinkDL's rwkv package (the oracle, when torch is installed): its PIPELINE.generate
  penalties and its PIPELINE.sample_logits distribution at temperature 1;
- an independent Python xoshiro256** + splitmix64, which pins the token sequence of a seed
  on every platform.

Statistical tests use fixed seeds, so they pass or fail deterministically; ALPHA is the
chance that a seed picked at random makes one of them fail although the sampler is right.
"""

from __future__ import annotations

import dataclasses
import math
import types

import numpy as np
import pytest

import rwkv_cpp
from rwkv_cpp import InvalidArgumentError, InvalidTokenError, RwkvError, Sampler, SamplingParams, StateSizeError
from rwkv_cpp._native import ffi
from rwkv_cpp.sampling import SEED_RANDOM

# Chi-square p-value below which a draw test fails. Fewer than 20 such tests run, so with a
# correct sampler a random seed would fail any of them with probability < 2e-5.
ALPHA = 1e-6
# Expected count below which chi-square bins are merged (the usual validity rule).
MIN_EXPECTED_COUNT = 5
# Sampler.probs against numpy: both compute in float64 and round to float32 at the end, but
# sum in other orders; 1e-6 absolute is ~8 float32 ulps of a probability near 1.
PROBS_ATOL = 1e-6
# The rwkv package computes its probabilities in float32 (torch softmax).
ORACLE_PROBS_ATOL = 2e-6
# The rwkv package subtracts the penalty in float32 (we do it in double and round once).
ORACLE_LOGITS_RTOL = 1e-6

N_VOCAB = 64
N_DRAWS = 40_000

# Everything off: plain softmax sampling.
PLAIN = dict(top_p=1.0, presence_penalty=0.0, frequency_penalty=0.0)


# ---- the independent reference ----


def reference_adjusted(logits, *, history=(), logit_bias=None, repetition_penalty=1.0,
                       presence_penalty=0.0, frequency_penalty=0.0, penalty_decay=1.0):
    """Logit bias then penalties, with the float32 / float64 steps rwkv.h documents. The
    occurrence count is kept as PIPELINE.generate keeps it (decay all, then add 1)."""
    out = np.array(logits, dtype=np.float32)
    for token, bias in (logit_bias or {}).items():
        out[token] = out[token] + np.float32(bias)
    decay = float(np.float32(penalty_decay))
    occurrence = {}
    for token in history:
        for seen in occurrence:
            occurrence[seen] *= decay
        occurrence[token] = occurrence.get(token, 0.0) + 1.0
    rp = np.float32(repetition_penalty)
    presence = float(np.float32(presence_penalty))
    frequency = float(np.float32(frequency_penalty))
    for token, count in occurrence.items():
        v = out[token]
        if rp != 1:
            v = v / rp if v > 0 else v * rp  # float32 arithmetic
        out[token] = np.float32(float(v) - (presence + count * frequency))
    return out


def reference_probs(adjusted, *, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0):
    """Temperature, top-k, top-p, min-p on adjusted logits, as rwkv.h defines them."""
    adjusted = np.asarray(adjusted, dtype=np.float32)
    n = adjusted.shape[0]
    probs = np.zeros(n)
    if temperature == 0:
        probs[int(np.argmax(adjusted))] = 1.0  # np.argmax: the first maximum
        return probs
    # Relative to the largest, in float32; 0 more than 87.3 below it (step 3 of rwkv.h).
    x = (adjusted - adjusted.max()) / np.float32(temperature)
    weights = np.where(x >= np.float32(-87.3), np.exp(x.astype(np.float64)), 0.0)
    order = np.lexsort((np.arange(n), -adjusted))  # larger logit first, then lower id
    order = order[weights[order] > 0]
    if 0 < top_k < order.size:
        order = order[:top_k]
    if top_p < 1:
        p = weights[order] / weights[order].sum()
        cumulative = np.cumsum(p)
        order = order[: int(np.argmax(cumulative >= float(np.float32(top_p)))) + 1]
    if min_p > 0:
        order = order[weights[order] >= float(np.float32(min_p)) * weights[order].max()]
    probs[order] = weights[order] / weights[order].sum()
    return probs


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square with df degrees of freedom (closed forms of the
    regularized upper incomplete gamma function for integer and half-integer shape)."""
    h = x / 2.0
    if h == 0:
        return 1.0
    if df % 2 == 0:
        total = sum(math.exp(i * math.log(h) - math.lgamma(i + 1) - h) for i in range(df // 2))
    else:
        total = math.erfc(math.sqrt(h)) + sum(
            math.exp((i + 0.5) * math.log(h) - math.lgamma(i + 1.5) - h) for i in range((df - 1) // 2))
    return min(1.0, total)


def check_draws(tokens, probs, what: str) -> None:
    """Every drawn token has probability > 0, and the counts pass a chi-square test."""
    tokens = np.asarray(tokens)
    n = tokens.size
    counts = np.bincount(tokens, minlength=probs.size)
    outside = np.flatnonzero((counts > 0) & (probs == 0))
    assert outside.size == 0, f"{what}: drew tokens {outside.tolist()} whose probability is 0"
    support = np.flatnonzero(probs > 0)
    if support.size == 1:
        return
    expected = n * probs[support]
    observed = counts[support].astype(np.float64)
    small = expected < MIN_EXPECTED_COUNT
    if small.any():
        expected = np.append(expected[~small], expected[small].sum())
        observed = np.append(observed[~small], observed[small].sum())
    statistic = float(((observed - expected) ** 2 / expected).sum())
    p_value = chi2_sf(statistic, expected.size - 1)
    assert p_value >= ALPHA, f"{what}: chi-square {statistic:.1f} with {expected.size - 1} df, p = {p_value:.2e}"


def random_logits(seed: int, n: int = N_VOCAB, scale: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, n).astype(np.float32)


def draw(sampler: Sampler, logits, n: int = N_DRAWS):
    return [sampler.sample(logits) for _ in range(n)]


# ---- the helpers themselves ----


def test_chi2_sf_known_values():
    # Tabulated critical values (5%, 0.1%, 1%), odd and even degrees of freedom.
    assert chi2_sf(3.841459, 1) == pytest.approx(0.05, rel=1e-5)
    assert chi2_sf(18.307038, 10) == pytest.approx(0.05, rel=1e-5)
    assert chi2_sf(16.266236, 3) == pytest.approx(0.001, rel=1e-5)
    assert chi2_sf(45.315, 20) == pytest.approx(0.001, rel=1e-4)
    assert chi2_sf(76.154, 50) == pytest.approx(0.01, rel=1e-4)
    assert chi2_sf(124.342, 100) == pytest.approx(0.05, rel=1e-4)


# ---- parameters ----


def test_defaults_match_the_c_library():
    lib = rwkv_cpp._native.load().lib
    c = lib.rwkv_sampling_default_params()
    params = SamplingParams()
    for name in ("temperature", "top_p", "min_p", "repetition_penalty", "presence_penalty",
                 "frequency_penalty", "penalty_decay"):
        assert getattr(c, name) == np.float32(getattr(params, name)), name
    assert c.top_k == params.top_k
    assert c.seed == SEED_RANDOM and params.seed is None


@pytest.mark.parametrize("field, value, error", [
    ("temperature", -0.1, InvalidArgumentError),
    ("temperature", float("nan"), InvalidArgumentError),
    ("temperature", float("inf"), InvalidArgumentError),
    ("temperature", 1e39, InvalidArgumentError),  # inf as float32
    ("temperature", "1", TypeError),
    ("top_k", -1, InvalidArgumentError),
    ("top_k", 2**32, InvalidArgumentError),
    ("top_k", 1.5, TypeError),
    ("top_k", True, TypeError),
    ("top_p", 0.0, InvalidArgumentError),
    ("top_p", 1e-50, InvalidArgumentError),  # 0 as float32
    ("top_p", 1.01, InvalidArgumentError),
    ("min_p", -0.01, InvalidArgumentError),
    ("min_p", 2.0, InvalidArgumentError),
    ("repetition_penalty", 0.0, InvalidArgumentError),
    ("presence_penalty", float("nan"), InvalidArgumentError),
    ("frequency_penalty", float("-inf"), InvalidArgumentError),
    ("penalty_decay", 1.5, InvalidArgumentError),
    ("seed", -1, InvalidArgumentError),
    ("seed", SEED_RANDOM, InvalidArgumentError),
    ("max_tokens", -1, InvalidArgumentError),
    ("stop", [""], InvalidArgumentError),
    ("stop", [1], TypeError),
    ("stop_tokens", [-1], InvalidArgumentError),
    ("stop_tokens", "abc", TypeError),
    ("logit_bias", {1: float("nan")}, InvalidArgumentError),
    ("logit_bias", {1: float("inf")}, InvalidArgumentError),
    ("logit_bias", {-1: 0.0}, InvalidArgumentError),
    ("logit_bias", [(1, 0.0)], TypeError),
])
def test_bad_params_are_clear_errors(field, value, error):
    with pytest.raises(error, match=field.split("_bias")[0]):
        SamplingParams(**{field: value})
    assert issubclass(InvalidArgumentError, ValueError)


def test_params_normalize_and_stay_immutable():
    params = SamplingParams(stop="\n\n", stop_tokens=[0, np.int64(5)], logit_bias={np.int32(3): -1},
                            temperature=1, seed=np.uint64(7), max_tokens=None)
    assert params.stop == ("\n\n",)
    assert params.stop_tokens == (0, 5)
    assert params.logit_bias == {3: -1.0}
    assert params.temperature == 1.0 and params.seed == 7 and params.max_tokens is None
    hash(params)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.temperature = 0.5
    assert dataclasses.replace(params, temperature=0.5).temperature == 0.5
    with pytest.raises(InvalidArgumentError, match="top_p"):
        dataclasses.replace(params, top_p=2.0)


def test_from_pipeline_args():
    args = types.SimpleNamespace(temperature=1.2, top_p=0.7, top_k=10, alpha_frequency=0.3,
                                 alpha_presence=0.1, alpha_decay=0.99, token_ban=[0, 5], token_stop=[261])
    params = SamplingParams.from_pipeline_args(args, seed=3, max_tokens=50)
    assert (params.temperature, params.top_p, params.top_k) == (1.2, 0.7, 10)
    assert (params.presence_penalty, params.frequency_penalty, params.penalty_decay) == (0.1, 0.3, 0.99)
    assert params.logit_bias == {0: -math.inf, 5: -math.inf}
    assert params.stop_tokens == (261,) and params.seed == 3 and params.max_tokens == 50
    greedy = SamplingParams.from_pipeline_args(types.SimpleNamespace(**{**vars(args), "temperature": 0}))
    assert greedy.temperature == 0.0


# ---- the distribution ----


CONFIGS = [
    dict(temperature=1.0),
    dict(temperature=0.6),
    dict(temperature=1.7, top_k=5),
    dict(temperature=1.0, top_p=0.5),
    dict(temperature=0.8, top_p=0.9, top_k=20),
    dict(temperature=1.3, min_p=0.1),
    dict(temperature=0.9, top_k=30, top_p=0.8, min_p=0.02),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_probs_match_numpy_reference(config):
    sampler = Sampler(N_VOCAB, **{**PLAIN, **config}, seed=1)
    for seed in range(20):
        logits = random_logits(seed)
        logits[seed % N_VOCAB] = -np.inf
        expected = reference_probs(logits, **config)
        got = sampler.probs(logits)
        np.testing.assert_array_equal(got > 0, expected > 0, err_msg=f"support differs, logits seed {seed}")
        np.testing.assert_allclose(got, expected, rtol=0, atol=PROBS_ATOL)


def test_probabilities_are_accurate_to_float_precision():
    """Probabilities over 30 orders of magnitude (the library's e^x is its own), and the cutoff
    87.3 * temperature below the largest logit."""
    n = 1000
    logits = np.linspace(-69.0, 0.0, n, dtype=np.float32)  # relative probabilities down to 1e-30
    for temperature in (1.0, 0.5, 3.0):
        probs = Sampler(n, **PLAIN, temperature=temperature, seed=1).probs(logits)
        x = logits.astype(np.float64) / np.float32(temperature)
        exact = np.exp(x - x.max())
        exact /= exact.sum()
        big = exact > 1e-36
        np.testing.assert_allclose(probs[big], exact[big], rtol=2e-6, atol=0)
        assert (probs[x < -87.4] == 0).all() and (probs[x > -87.2] > 0).all()


@pytest.mark.parametrize("config, kept", [
    (dict(top_k=3), [0, 2, 3]),
    (dict(top_p=0.45), [0, 2, 3]),
    (dict(top_k=6, top_p=0.999), [0, 2, 3, 4, 5, 7]),
])
def test_ties_keep_the_lower_ids(config, kept):
    logits = np.array([2, 0, 1, 1, 1, 1, -1, 1, 1, 1], dtype=np.float32)
    expected = reference_probs(logits, **config)
    np.testing.assert_array_equal(np.flatnonzero(expected), kept)  # the reference agrees with rwkv.h
    probs = Sampler(10, **{**PLAIN, **config}, seed=1).probs(logits)
    np.testing.assert_array_equal(np.flatnonzero(probs), kept)
    np.testing.assert_allclose(probs, expected, rtol=0, atol=PROBS_ATOL)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_draws_follow_the_reference_distribution(config):
    logits = random_logits(100)
    sampler = Sampler(N_VOCAB, **{**PLAIN, **config}, seed=12345)
    check_draws(draw(sampler, logits), reference_probs(logits, **config), str(config))


def test_top_k_never_leaves_the_top_k():
    logits = random_logits(7, n=500, scale=1.0)
    k = 8
    top = set(np.argsort(-logits)[:k].tolist())
    sampler = Sampler(500, **PLAIN, temperature=3.0, top_k=k, seed=5)
    tokens = draw(sampler, logits, 20_000)
    assert set(tokens) <= top
    assert set(tokens) == top  # each has probability > 5% at this temperature


def test_top_p_keeps_the_smallest_set_holding_top_p():
    logits = random_logits(8, n=200, scale=1.5)
    top_p, temperature = 0.75, 0.9
    p = np.exp((logits.astype(np.float64) - logits.max()) / temperature)
    p /= p.sum()
    order = np.argsort(-p)
    size = int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1
    nucleus = order[:size]
    mass = p[nucleus].sum()
    assert mass >= top_p > mass - p[nucleus[-1]]  # the smallest such set

    sampler = Sampler(200, **{**PLAIN, "top_p": top_p}, temperature=temperature, seed=9)
    tokens = draw(sampler, logits)
    assert set(tokens) <= set(nucleus.tolist())
    # Inside the nucleus the tokens keep their relative probabilities.
    expected = np.zeros(200)
    expected[nucleus] = p[nucleus] / mass
    check_draws(tokens, expected, "top-p")


def test_min_p_drops_tokens_below_min_p_times_the_best():
    logits = random_logits(9, n=200)
    min_p = 0.05
    allowed = np.exp(logits.astype(np.float64) - logits.max()) >= min_p
    sampler = Sampler(200, **PLAIN, min_p=min_p, seed=10)
    assert set(draw(sampler, logits, 10_000)) <= set(np.flatnonzero(allowed).tolist())
    np.testing.assert_array_equal(sampler.probs(logits) > 0, allowed)


def test_temperature_zero_is_argmax_with_lowest_id_on_ties():
    sampler = Sampler(N_VOCAB, temperature=0, top_k=3, top_p=0.2, min_p=0.5, seed=1,
                      presence_penalty=0, frequency_penalty=0)
    for seed in range(50):
        logits = random_logits(seed)
        assert sampler.sample(logits) == int(np.argmax(logits))
    logits = np.zeros(N_VOCAB, dtype=np.float32)
    logits[[9, 4, 30]] = 2.0
    assert sampler.sample(logits) == 4
    probs = sampler.probs(logits)
    assert probs[4] == 1.0 and probs.sum() == 1.0


def test_high_temperature_approaches_uniform_over_the_allowed_tokens():
    logits = random_logits(11, scale=3.0)
    logits[[1, 2]] = -np.inf
    sampler = Sampler(N_VOCAB, **PLAIN, temperature=1e4, logit_bias={5: -np.inf}, seed=4)
    allowed = np.ones(N_VOCAB)
    allowed[[1, 2, 5]] = 0
    uniform = allowed / allowed.sum()
    probs = sampler.probs(logits)
    # Logits within +-15 at temperature 1e4: every ratio is within exp(3e-3) of 1.
    np.testing.assert_allclose(probs, uniform, rtol=4e-3, atol=0)
    check_draws(draw(sampler, logits), uniform, "temperature 1e4")


# ---- logit bias and penalties ----


def test_logit_bias_bans_and_shifts():
    logits = random_logits(12)
    best = int(np.argmax(logits))
    bias = {best: -np.inf, 3: 2.5, 7: -1.0}
    sampler = Sampler(N_VOCAB, **PLAIN, logit_bias=bias, seed=2)
    adjusted = sampler.apply(logits)
    np.testing.assert_array_equal(adjusted, reference_adjusted(logits, logit_bias=bias))
    assert adjusted[best] == -np.inf
    tokens = draw(sampler, logits, 20_000)
    assert best not in tokens
    check_draws(tokens, reference_probs(adjusted), "logit bias")
    # Replaced (not merged), and a failed update keeps the old table.
    sampler.set_logit_bias({3: 1.0})
    with pytest.raises(InvalidTokenError, match="64"):
        sampler.set_logit_bias({64: 1.0})
    np.testing.assert_array_equal(sampler.apply(logits), reference_adjusted(logits, logit_bias={3: 1.0}))
    sampler.set_logit_bias({})
    np.testing.assert_array_equal(sampler.apply(logits), logits)


@pytest.mark.parametrize("repetition_penalty", [1.0, 1.3, 0.8])
def test_penalties_change_logits_by_exactly_the_documented_amounts(repetition_penalty):
    penalties = dict(presence_penalty=0.4, frequency_penalty=0.25, penalty_decay=0.9,
                     repetition_penalty=repetition_penalty)
    bias = {2: -np.inf, 6: 1.5}
    sampler = Sampler(N_VOCAB, **{**PLAIN, **penalties}, logit_bias=bias, seed=3)
    logits = random_logits(13)
    logits[40] = -np.inf
    history = [6, 1, 6, 40, 2, 6, 17, 1, 1, 63]
    np.testing.assert_array_equal(sampler.apply(logits), reference_adjusted(logits, logit_bias=bias))
    for n in range(1, len(history) + 1):
        sampler.accept(history[n - 1])
        expected = reference_adjusted(logits, history=history[:n], logit_bias=bias, **penalties)
        np.testing.assert_array_equal(sampler.apply(logits), expected, err_msg=f"after {n} tokens")
    # The documented closed form: presence + sum(decay^age) * frequency.
    ages = [len(history) - 1 - i for i, t in enumerate(history) if t == 6]
    before = np.float32(logits[6] + np.float32(1.5))
    if repetition_penalty != 1.0:
        before = before / np.float32(repetition_penalty) if before > 0 else before * np.float32(repetition_penalty)
    occurrence = sum(0.9 ** age for age in ages)
    assert sampler.apply(logits)[6] == pytest.approx(float(before) - 0.4 - occurrence * 0.25, rel=1e-6)
    # In place, and reset forgets the history but keeps the bias.
    in_place = logits.copy()
    assert sampler.apply(in_place, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, expected)
    sampler.reset()
    np.testing.assert_array_equal(sampler.apply(logits), reference_adjusted(logits, logit_bias=bias))


def test_penalties_shape_the_draws():
    logits = random_logits(14)
    sampler = Sampler(N_VOCAB, top_p=1.0, presence_penalty=0.5, frequency_penalty=0.3,
                      penalty_decay=0.95, repetition_penalty=1.1, seed=6)
    history = [int(t) for t in np.argsort(-logits)[:5]] * 2
    for token in history:
        sampler.accept(token)
    expected = reference_probs(reference_adjusted(
        logits, history=history, presence_penalty=0.5, frequency_penalty=0.3, penalty_decay=0.95,
        repetition_penalty=1.1))
    np.testing.assert_allclose(sampler.probs(logits), expected, rtol=0, atol=PROBS_ATOL)
    check_draws(draw(sampler, logits), expected, "penalties")


# ---- seeds ----


MASK64 = 2**64 - 1


class Xoshiro256StarStar:
    """xoshiro256** seeded with splitmix64, written from the authors' reference C code."""

    def __init__(self, seed: int) -> None:
        self.s = []
        x = seed
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & MASK64

    def next(self) -> int:
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def uniform(self) -> float:
        return (self.next() >> 11) * 2.0**-53


def test_python_xoshiro_matches_the_published_sequence():
    rng = Xoshiro256StarStar(0)
    rng.s = [1, 2, 3, 4]
    assert [rng.next() for _ in range(4)] == [11520, 0, 1509978240, 1215971899390074240]


@pytest.mark.parametrize("seed", [0, 42, 2**63 + 12345])
def test_a_seed_gives_the_same_tokens_on_every_platform(seed):
    # Equal logits, no filters: every weight is exactly 1, so the token is floor(u * n).
    n = 1000
    sampler = Sampler(n, **PLAIN, seed=seed)
    assert sampler.seed == seed
    rng = Xoshiro256StarStar(seed)
    logits = np.zeros(n, dtype=np.float32)
    expected = [int(rng.uniform() * n) for _ in range(2000)]
    assert draw(sampler, logits, 2000) == expected


def test_same_seed_same_sequence_different_seed_different():
    logits = random_logits(15)
    a = draw(Sampler(N_VOCAB, seed=77), logits, 300)
    b = draw(Sampler(N_VOCAB, seed=77), logits, 300)
    c = draw(Sampler(N_VOCAB, seed=78), logits, 300)
    assert a == b
    assert a != c
    sampler = Sampler(N_VOCAB, seed=77)
    first = draw(sampler, logits, 300)
    sampler.reset()
    assert draw(sampler, logits, 300) == first == a


def test_random_seed():
    a, b = Sampler(N_VOCAB), Sampler(N_VOCAB)
    assert a.seed != b.seed
    seed = a.seed
    a.reset()
    assert a.seed != seed
    # Replaying a random seed.
    logits = random_logits(16)
    replay = Sampler(N_VOCAB, seed=b.seed)
    assert draw(b, logits, 100) == draw(replay, logits, 100)


# ---- bad input ----


def test_bad_logits_are_clear_errors():
    sampler = Sampler(N_VOCAB, seed=1)
    logits = random_logits(17)
    with pytest.raises(TypeError, match="float32"):
        sampler.sample(logits.astype(np.float64))
    with pytest.raises(StateSizeError):
        sampler.sample(logits[:10])
    with pytest.raises(InvalidArgumentError, match="C-contiguous"):
        sampler.sample(np.repeat(logits, 2)[::2])
    for bad in (np.nan, np.inf):
        broken = logits.copy()
        broken[3] = bad
        for call in (sampler.sample, sampler.probs, sampler.apply):
            with pytest.raises(InvalidArgumentError, match="token 3"):
                call(broken)
    with pytest.raises(InvalidArgumentError, match="every token is banned"):
        sampler.sample(np.full(N_VOCAB, -np.inf, dtype=np.float32))
    banned = Sampler(N_VOCAB, logit_bias={t: -np.inf for t in range(N_VOCAB)})
    with pytest.raises(InvalidArgumentError, match="every token is banned"):
        banned.sample(logits)
    # Still usable after errors.
    assert 0 <= sampler.sample(logits) < N_VOCAB


def test_overflowing_adjustment_is_an_error():
    sampler = Sampler(4, repetition_penalty=1e-30, seed=1)
    sampler.accept(0)
    with pytest.raises(InvalidArgumentError, match="token 0"):
        sampler.sample(np.array([1e30, 0, 0, 0], dtype=np.float32))


def test_bad_tokens_and_arguments():
    sampler = Sampler(N_VOCAB, seed=1)
    for token in (-1, N_VOCAB, 2**40):
        with pytest.raises(InvalidTokenError):
            sampler.accept(token)
    with pytest.raises(TypeError):
        sampler.accept(True)
    with pytest.raises(InvalidTokenError, match="out of range"):
        Sampler(N_VOCAB, logit_bias={N_VOCAB: 1.0})
    with pytest.raises(InvalidArgumentError, match="n_vocab"):
        Sampler(0)
    with pytest.raises(TypeError, match="SamplingParams"):
        Sampler(N_VOCAB, {"temperature": 1.0})
    with pytest.raises(InvalidArgumentError, match="top_p"):
        Sampler(N_VOCAB, SamplingParams(), top_p=0)
    out = np.empty(N_VOCAB, dtype=np.float32)
    assert sampler.probs(random_logits(18), out=out) is out
    with pytest.raises(InvalidArgumentError, match="read-only"):
        readonly = np.empty(N_VOCAB, dtype=np.float32)
        readonly.flags.writeable = False
        sampler.probs(random_logits(18), out=readonly)
    with Sampler(N_VOCAB) as closed:
        pass
    with pytest.raises(RwkvError, match="closed"):
        closed.sample(random_logits(18))
    closed.close()


def test_c_api_rejects_what_python_would():
    """Bypassing SamplingParams: the C checks give the same clear errors."""
    lib = rwkv_cpp._native.load().lib
    lib.rwkv_set_print_errors(ffi.NULL, False)
    params = lib.rwkv_sampling_default_params()
    params.top_p = float("nan")
    assert lib.rwkv_sampler_create(10, ffi.new("struct rwkv_sampling_params *", params)) == ffi.NULL
    assert b"top_p" in ffi.string(lib.rwkv_get_last_error_message(ffi.NULL))
    assert lib.rwkv_get_last_error(ffi.NULL) == lib.RWKV_ERROR_ARGS
    sampler = ffi.gc(lib.rwkv_sampler_create(10, ffi.NULL), lib.rwkv_sampler_free)
    lib.rwkv_sampler_set_print_errors(sampler, False)
    token = ffi.new("uint32_t *")
    logits = ffi.new("float[]", 11)
    assert not lib.rwkv_sampler_sample(sampler, logits, 11, token)
    assert b"got 11 logits" in ffi.string(lib.rwkv_sampler_get_last_error_message(sampler))
    assert lib.rwkv_sampler_get_last_error(sampler) == lib.RWKV_ERROR_ARGS | lib.RWKV_ERROR_DIMENSION
    assert not lib.rwkv_sampler_sample(ffi.NULL, logits, 10, token)
    assert b"NULL" in ffi.string(lib.rwkv_sampler_get_last_error_message(ffi.NULL))


# ---- the rwkv package (oracle) ----


@pytest.fixture(scope="module")
def rwkv_utils():
    pytest.importorskip("torch")
    return pytest.importorskip("rwkv.utils")


def test_penalties_match_pipeline_generate(rwkv_utils, monkeypatch):
    """PIPELINE.generate with a stub model: the logits it hands to sample_logits at each step
    against Sampler.apply after accepting the same tokens."""
    import torch

    alpha = dict(alpha_frequency=0.25, alpha_presence=0.4, alpha_decay=0.97)
    args = rwkv_utils.PIPELINE_ARGS(temperature=1.0, top_p=0.9, top_k=0, token_ban=[3], **alpha)
    logits = random_logits(19)
    script = [5, 9, 5, 5, 12, 9, 0, 5]  # the tokens the stubbed sampler returns
    seen_logits = []

    pipeline = rwkv_utils.PIPELINE.__new__(rwkv_utils.PIPELINE)
    pipeline.model = types.SimpleNamespace(forward=lambda tokens, state: (torch.from_numpy(logits.copy()), state))
    # A letter, so every token counts 1 (PIPELINE.generate counts spaces and digits 0).
    pipeline.tokenizer = types.SimpleNamespace(encode=lambda text: [1, 2], decode=lambda tokens: "a" * len(tokens))

    def fake_sample_logits(out, temperature, top_p, top_k):
        seen_logits.append(out.numpy().copy())
        return script[len(seen_logits) - 1]

    monkeypatch.setattr(pipeline, "sample_logits", fake_sample_logits)
    pipeline.generate("prompt", token_count=len(script), args=args)

    params = SamplingParams.from_pipeline_args(args, seed=1)
    sampler = Sampler(N_VOCAB, params)
    for step, oracle in enumerate(seen_logits):
        np.testing.assert_allclose(sampler.apply(logits), oracle, rtol=ORACLE_LOGITS_RTOL, atol=1e-6,
                                   err_msg=f"step {step}")
        sampler.accept(script[step])


@pytest.mark.parametrize("top_p", [0.5, 0.85, 0.95])
def test_distribution_matches_pipeline_sample_logits_at_temperature_one(rwkv_utils, monkeypatch, top_p):
    """The probabilities PIPELINE.sample_logits passes to np.random.choice, against ours."""
    import torch

    captured = {}

    def fake_choice(a, p):
        captured["p"] = np.asarray(p, dtype=np.float64)
        return 0

    monkeypatch.setattr(np.random, "choice", fake_choice)
    sampler = Sampler(N_VOCAB, temperature=1.0, top_p=top_p, presence_penalty=0, frequency_penalty=0, seed=1)
    for seed in range(10):
        logits = random_logits(200 + seed)
        rwkv_utils.PIPELINE.sample_logits(None, torch.from_numpy(logits.copy()), temperature=1.0, top_p=top_p, top_k=0)
        np.testing.assert_allclose(sampler.probs(logits), captured["p"], rtol=0, atol=ORACLE_PROBS_ATOL)
