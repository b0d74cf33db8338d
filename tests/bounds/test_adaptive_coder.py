"""The adaptive coder and the shortest-of coder decode exactly, cost what they should, and say when a choice costs a byte."""

import math

import numpy as np
import pytest

from sublora.bounds.adaptive_coder import AdaptiveCoder
from sublora.bounds.coders import ArithmeticCoder, count_width, entropy_bits
from sublora.bounds.container import decode_compressed, encode_compressed, write_compressed
from sublora.bounds.shortest_coder import ShortestCoder
from sublora.core.errors import ConfigError, VerificationError
from sublora.core.quantizer import QuantizedVector
from sublora.core.registry import registry


def _coder(spec, options=None):
    return registry("coder").config(spec, options).build()


def _ideal_bits(symbols, alphabet_size, prior=0.5):
    """-sum_i log2 p_i under the add-prior estimator, computed symbol by symbol."""
    counts, total = [0] * alphabet_size, 0.0
    for i, s in enumerate(symbols):
        total -= math.log2((counts[s] + prior) / (i + prior * alphabet_size))
        counts[s] += 1
    return total


def _gaussian_symbols(d, levels, seed):
    """A Gaussian vector quantized to ``levels`` equal-width bins on [-max|w|, max|w|] (the reference's)."""
    w = np.random.default_rng(seed).standard_normal(d)
    edges = np.linspace(-np.abs(w).max(), np.abs(w).max(), levels + 1)
    return np.clip(np.digitize(w, edges[1:-1]), 0, levels - 1)


def _cases():
    rng = np.random.default_rng(0)
    for length in (0, 1, 2, 3, 7, 64, 1000, 20_000):
        for alphabet in (1, 2, 3, 11, 255):
            if length * alphabet > 2_000_000:
                continue  # keeps the (length x alphabet) weights, and the test, small
            for concentration in (0.1, 1.0):  # skewed and flat random distributions
                yield rng.choice(alphabet, size=length, p=rng.dirichlet(np.full(alphabet, concentration))), alphabet
            yield rng.integers(0, alphabet, size=length), alphabet  # uniform
            yield np.full(length, alphabet - 1), alphabet  # one symbol repeated
            yield np.zeros(length, dtype=np.int64), alphabet  # symbol 0 repeated: an empty payload
    yield _gaussian_symbols(4000, 11, 1), 11


CODERS = [("adaptive", None), ("adaptive", {"prior": 0.1}), ("adaptive", {"prior": 1 / 3}),
          ("shortest", None), ("shortest", {"candidates": ["adaptive", "arithmetic"]}),
          ("shortest", {"candidates": ["adaptive"], "candidate_options": {"adaptive": {"prior": 7.0}}})]


@pytest.mark.parametrize("spec, options", CODERS)
def test_round_trip(spec, options):
    coder = _coder(spec, options)
    for symbols, alphabet in _cases():
        payload = coder.encode(symbols, alphabet)
        decoded = coder.decode(payload, symbols.size, alphabet)
        assert decoded.dtype == np.int64 and decoded.shape == (symbols.size,)
        np.testing.assert_array_equal(decoded, symbols, err_msg=f"{spec} {options} d={symbols.size} K={alphabet}")


@pytest.mark.parametrize("prior", [0.5, 0.1, 2.0])
def test_adaptive_length_is_within_a_few_bits_of_ideal(prior):
    coder = _coder("adaptive", {"prior": prior})
    for symbols, alphabet in _cases():
        if alphabet == 1 or symbols.size == 0:
            continue
        bits, ideal = 8 * len(coder.encode(symbols, alphabet)), _ideal_bits(symbols, alphabet, prior)
        # the shortest point of the final interval: <= ideal + 1 bit, + 7 bits of byte padding,
        # + the range coder's fixed-point rounding (24-bit probabilities), which grows with d.
        assert bits <= ideal + 9 + 2e-4 * symbols.size, (symbols.size, alphabet, bits, ideal)
        if symbols.size >= 1000 and np.unique(symbols).size > 1:  # shorter only if the interval holds a round point
            assert bits >= ideal - 16, (symbols.size, alphabet, bits, ideal)


def test_adaptive_long_iid_sequence_costs_entropy_plus_kt_redundancy():
    d, levels = 50_000, 11
    p = np.exp(-0.5 * ((np.arange(levels) - 5) / 1.7) ** 2)
    symbols = np.random.default_rng(3).choice(levels, size=d, p=p / p.sum())
    bits = 8 * len(_coder("adaptive").encode(symbols, levels))
    d_h, redundancy = entropy_bits(symbols, levels), (levels - 1) / 2 * math.log2(d)
    # Stirling: -log2 P_KT = d H + (K-1)/2 log2(d / 2 pi) + log2(Gamma(1/2)^K / Gamma(K/2)) + o(1)
    constant = -(levels - 1) / 2 * math.log2(2 * math.pi) + (levels * math.lgamma(0.5) - math.lgamma(levels / 2)) / math.log(2)
    assert abs(bits - (d_h + redundancy + constant)) <= 12, (bits, d_h, redundancy, constant)
    assert abs(bits - (d_h + redundancy)) <= 24
    assert bits < 8 * len(ArithmeticCoder(None).encode(symbols, levels)) - levels * count_width(d) / 2


def test_adaptive_edge_cases():
    coder = AdaptiveCoder(None)
    assert coder.encode(np.zeros(0, dtype=np.int64), 11) == b""
    assert coder.encode(np.zeros(500, dtype=np.int64), 1) == b""  # one letter: nothing to say
    np.testing.assert_array_equal(coder.decode(b"", 500, 1), np.zeros(500))
    assert coder.decode(b"", 0, 11).shape == (0,)
    one = np.full(10_000, 7)
    assert len(coder.encode(one, 11)) <= math.ceil((_ideal_bits(one, 11) + 9) / 8)
    for bad in (np.array([0, 11]), np.array([-1, 2]), np.array([0.0, 1.0])):
        with pytest.raises(ValueError):
            coder.encode(bad, 11)
    with pytest.raises(ValueError):
        coder.encode(np.array([0]), 0)


def test_adaptive_rejects_what_it_never_writes():
    coder = AdaptiveCoder(None)
    symbols = np.random.default_rng(1).integers(0, 11, 500)
    payload = coder.encode(symbols, 11)
    for bad, length, alphabet in [(payload + b"\0", 500, 11), (b"\0", 500, 11),  # a trailing zero byte
                                  (b"\x01", 0, 11), (b"\x01", 500, 1)]:  # bytes where none are needed
        with pytest.raises(VerificationError):
            coder.decode(bad, length, alphabet)
    # the range coder's own (sealed, whole-word) output decodes to the same symbols but is not the code
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    counts = np.zeros(11)
    weights = np.empty((500, 11))
    for i, s in enumerate(symbols):
        weights[i] = counts + 0.5
        counts[s] += 1
    encoder.encode(symbols.astype(np.int32), constriction.stream.model.Categorical(perfect=False), weights)
    sealed = encoder.get_compressed().astype(">u4").tobytes().rstrip(b"\0")
    assert len(sealed) > len(payload)
    with pytest.raises(VerificationError, match="not the code"):
        coder.decode(sealed, 500, 11)


def _packed_lengths(coder: ShortestCoder, symbols, alphabet):
    return [len(coder.pack(i, c.encode(symbols, alphabet), symbols.size, alphabet)) for i, c in enumerate(coder.coders)]


@pytest.mark.parametrize("options", [None, {"candidate_options": {"adaptive": {"prior": 1000.0}}}])
def test_shortest_picks_the_shorter_code_and_costs_its_flag_bit(options):
    coder = _coder("shortest", options)
    arithmetic, adaptive = coder.coders
    picked = set()
    for symbols, alphabet in _cases():
        d = symbols.size
        payload = coder.encode(symbols, alphabet)
        packed = _packed_lengths(coder, symbols, alphabet)
        best = int(np.argmin(packed))
        assert len(payload) == packed[best]
        assert (payload[0] >> 7 if payload else 0) == best  # the flag names the shorter one
        picked.add(best)
        a, b = arithmetic.encode(symbols, alphabet), adaptive.encode(symbols, alphabet)
        assert len(payload) <= min(len(a), len(b)) + 1 and len(payload) <= len(a) + 1
        # exactly one flag bit, in the padding when there is room:
        h = alphabet * count_width(d)
        assert packed[0] == len(a) + ((-h) % 8 < coder.flag_bits)  # +1 byte iff the counts' padding is too short
        k = 8 * len(b) - ((b[-1] & -b[-1]).bit_length() - 1) if b else 0  # adaptive's meaningful bits
        assert packed[1] == (math.ceil((1 + k) / 8) if b else 1)
        np.testing.assert_array_equal(coder.decode(payload, d, alphabet), symbols)
    assert 1 in picked and (options is None or 0 in picked)  # a near-uniform adaptive loses to the counts


def test_shortest_with_one_candidate_is_that_candidate():
    coder = _coder("shortest", {"candidates": ["arithmetic"]})
    assert coder.flag_bits == 0
    for symbols, alphabet in _cases():
        assert coder.encode(symbols, alphabet) == ArithmeticCoder(None).encode(symbols, alphabet)


def test_shortest_rejects_corrupt_payloads():
    coder = _coder("shortest", {"candidate_options": {"adaptive": {"prior": 1000.0}}})
    symbols = np.random.default_rng(2).choice(11, size=500, p=[0.9] + [0.01] * 10)
    payload = coder.encode(symbols, 11)
    assert payload[0] >> 7 == 0  # arithmetic: 11 counts of 9 bits, flag in the 1 spare bit
    with pytest.raises(VerificationError):
        coder.decode(payload[:5], 500, 11)  # counts truncated
    with pytest.raises(VerificationError):
        coder.decode(payload[:-1], 500, 11)  # not whole words
    padded = bytearray(payload)
    padded[12] |= 1  # flag + 99 count bits = 100 bits: the last 4 bits of byte 12 are padding
    with pytest.raises(VerificationError):
        coder.decode(bytes(padded), 500, 11)
    tail = _coder("shortest").encode(symbols, 11)  # adaptive wins with the default prior
    assert tail[0] >> 7 == 1
    with pytest.raises(VerificationError):
        _coder("shortest").decode(tail + b"\0", 500, 11)
    with pytest.raises(VerificationError):
        _coder("shortest").decode(b"", 500, 11)  # flag 0 (arithmetic), no counts


def test_configs_are_validated():
    assert isinstance(_coder("adaptive"), AdaptiveCoder)
    assert registry("coder").config("adaptive").prior == 0.5
    config = registry("coder").config("shortest")
    assert config.candidates == ["arithmetic", "adaptive"] and isinstance(config.build(), ShortestCoder)
    assert {"adaptive", "arithmetic", "shortest"} <= set(registry("coder").names())
    for spec, options, field in [
        ("adaptive", {"prior": 0.0}, "prior"),
        ("adaptive", {"prior": float("nan")}, "prior"),
        ("adaptive", {"alpha": 0.5}, "unknown field"),
        ("shortest", {"candidates": []}, "at least 1"),
        ("shortest", {"candidates": ["arithmetc"]}, "Did you mean 'arithmetic'"),
        ("shortest", {"candidates": ["shortest"]}, "own candidate"),
        ("shortest", {"candidates": ["adaptive", "Adaptive"]}, "distinct"),
        ("shortest", {"candidate_options": {"adaptive": {"prior": -1}}}, "prior"),
        ("shortest", {"candidate_options": {"arithmetic:x": {}}}, "not among the candidates"),
    ]:
        with pytest.raises(ConfigError, match=field):
            registry("coder").config(spec, options)


@pytest.mark.parametrize("spec", ["adaptive", "shortest"])
def test_in_the_model_file(tmp_path, spec):
    coder = _coder(spec)
    tensors = {"w": QuantizedVector(_gaussian_symbols(4000, 11, 0), np.linspace(-1, 1, 11)),
               "gates": QuantizedVector(np.array([1, 0, 1, 1]), np.array([0.0, 1.0]))}
    bits = write_compressed(tmp_path / "model.slc", tensors, spec, coder)
    data = (tmp_path / "model.slc").read_bytes()
    assert bits == 8 * len(data) and data == encode_compressed(tensors, coder)
    back = decode_compressed(data, {"w": 4000, "gates": 4}, coder)
    np.testing.assert_array_equal(back["w"].symbols, tensors["w"].symbols)
    # truncation and bit flips inside a payload are the file's CRC32's job
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    for bad in (data[:-5] + data[-4:], bytes(flipped)):
        with pytest.raises(VerificationError):
            decode_compressed(bad, {"w": 4000, "gates": 4}, coder)
