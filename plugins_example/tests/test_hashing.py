"""The hashing projector against the sublora projector contract, plus its own math."""

import torch

from sublora.core.registry import refresh, registry
from sublora.core.testing import build_projector, check_contract, materialize

torch.set_num_threads(1)


def test_registered_through_its_entry_point():
    refresh()
    entry = registry("projector").entry("hashing")
    assert entry.distribution == "sublora-example-plugins"
    assert registry("projector").config("hashing").spec == "hashing"


def test_contract():
    check_contract("hashing")


def test_contract_from_a_config_instance():
    from sublora_example.configs import HashingConfig

    check_contract(HashingConfig(), sizes=((50, 7),), memory=False)


def test_one_signed_entry_per_row_when_D_at_least_d():
    D, d = 103, 10
    P = materialize(build_projector("hashing", D, d))
    assert ((P != 0).sum(dim=1) == 1).all()
    assert torch.allclose(P[P != 0].abs(), torch.full((D,), (d / D) ** 0.5))
    hits = (P != 0).sum(dim=0)
    assert hits.min() == D // d and hits.max() == D // d + 1  # balanced: every column hit


def test_count_sketch_when_D_below_d():
    D, d = 10, 43
    P = materialize(build_projector("hashing", D, d))
    assert ((P != 0).sum(dim=0) == 1).all() and (P.abs().sum(dim=0) == 1).all()
    hits = (P != 0).sum(dim=1)
    assert hits.min() == d // D and hits.max() == d // D + 1
