"""Shared fixtures: random checkpoints with the reference implementation's outputs on them.

`reference` (and so torch) is imported only when a test asks for these fixtures.
Results are cached under tests/.cache/reference/, keyed by the generator and runner
sources, the case parameters and the torch / rwkv versions; delete the folder to rebuild.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reference import ARCHS
REFERENCE_CACHE_DIR = Path(__file__).parent / ".cache" / "reference"


@pytest.fixture(scope="session")
def make_reference_cases():
    """Factory: `make_reference_cases([CaseSpec(...), ...]) -> [ReferenceCase, ...]`.

    Missing cases are built together, the reference runs in parallel subprocesses.
    """
    from reference.oracle import build_reference_cases

    def make(specs):
        return build_reference_cases(list(specs), REFERENCE_CACHE_DIR)

    return make


@pytest.fixture(scope="session")
def make_reference_case(make_reference_cases):
    """Factory: `make_reference_case("6", n_layer=3, head_size=32) -> ReferenceCase`."""
    from reference.oracle import CaseSpec

    def make(arch: str, **params):
        return make_reference_cases([CaseSpec(arch, **params)])[0]

    return make


@pytest.fixture(scope="session")
def reference_cases(make_reference_cases) -> dict:
    """{arch: ReferenceCase} for every arch at the default size (n_embd 64, 2 layers,
    head size 16, 256 tokens of vocabulary, 72 random tokens)."""
    from reference.oracle import CaseSpec

    cases = make_reference_cases([CaseSpec(arch) for arch in ARCHS])
    return dict(zip(ARCHS, cases))


@pytest.fixture(scope="session", params=ARCHS, ids=[f"v{arch}" for arch in ARCHS])
def reference_case(request, reference_cases):
    """One default ReferenceCase per arch; a test using it runs once for each arch."""
    return reference_cases[request.param]
