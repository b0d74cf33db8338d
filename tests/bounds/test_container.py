"""The compressed-model file round-trips, charges 8 * size bits and detects corruption."""

import numpy as np
import pytest

from sublora.bounds.configs import ArithmeticCoderConfig, UniformQuantizerConfig
from sublora.bounds.container import MAGIC, read_compressed, write_compressed
from sublora.core.errors import VerificationError


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    quantizer = UniformQuantizerConfig(levels=11).build()
    tensors = {
        "subspace": quantizer.quantize(rng.standard_normal(5000) * 0.01),
        "head": UniformQuantizerConfig(levels=3).build().quantize(rng.standard_normal(17)),
        "constant": quantizer.quantize(np.full(9, 0.25)),
    }
    return tensors, {name: q.symbols.size for name, q in tensors.items()}, ArithmeticCoderConfig().build()


def test_round_trip_and_bits(model, tmp_path):
    tensors, shapes, coder = model
    path = tmp_path / "model.slc"
    bits = write_compressed(path, tensors, "arithmetic", coder)
    data = path.read_bytes()
    assert bits == 8 * len(data) and data[:4] == MAGIC
    payloads = sum(len(coder.encode(q.symbols, q.codebook.size)) for q in tensors.values())
    assert len(data) == 4 + sum(1 + 2 * q.codebook.size + 4 for q in tensors.values()) + payloads + 4
    back = read_compressed(path, shapes, coder)
    assert list(back) == list(tensors)
    for name, q in tensors.items():
        np.testing.assert_array_equal(back[name].symbols, q.symbols)
        np.testing.assert_array_equal(back[name].codebook, q.codebook)
        np.testing.assert_array_equal(back[name].values, q.values)


def test_corruption_is_detected(model, tmp_path):
    tensors, shapes, coder = model
    path = tmp_path / "model.slc"
    write_compressed(path, tensors, "arithmetic", coder)
    good = path.read_bytes()
    bad_files = [good[:cut] for cut in (0, 3, 7, len(good) // 2, len(good) - 1)]
    bad_files += [b"XLC1" + good[4:], good + b"\x00"]
    for pos in np.random.default_rng(0).choice(len(good), 25, replace=False):
        flipped = bytearray(good)
        flipped[pos] ^= 0x5A
        bad_files.append(bytes(flipped))
    for i, bad in enumerate(bad_files):
        path.write_bytes(bad)
        with pytest.raises(VerificationError):
            read_compressed(path, shapes, coder)
            pytest.fail(f"corrupt file {i} was accepted")


def test_wrong_shapes_and_missing_file(model, tmp_path):
    tensors, shapes, coder = model
    path = tmp_path / "model.slc"
    write_compressed(path, tensors, "arithmetic", coder)
    with pytest.raises(VerificationError):
        read_compressed(path, {**shapes, "subspace": 4999}, coder)
    with pytest.raises(VerificationError):
        read_compressed(path, {"subspace": 5000}, coder)  # tensors left over
    with pytest.raises(VerificationError):
        read_compressed(tmp_path / "missing.slc", shapes, coder)
