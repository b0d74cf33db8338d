"""The quantizer contract: checks any ``sublora.quantizers`` plugin can run on itself (numpy only).

Each check takes a registered spec (``"kmeans"``), a config instance (before registering) or a
built quantizer, raises ``AssertionError`` naming the quantizer, the codebook size, the test
vector and what is wrong, and needs no pytest. ``check_quantizer_contract`` runs them all.

- ``check_quantizer_output``: at every codebook size of ``LEVELS`` (what ``bound.levels`` and
  ``bound.levels_grid`` may ask for) and on every vector of ``vectors()`` (Gaussian, heavy
  tails, one-sided, outliers, constant, all zeros, one value, fewer distinct values than levels,
  large and tiny scales): ``fit`` returns a 1-D array of at most ``levels`` finite numbers;
  ``quantize`` returns a ``QuantizedVector`` whose codebook is float16, finite, strictly
  increasing, with 1..levels entries, whose symbols are integers in range, one per value, each
  value's symbol is its nearest codebook entry, and whose ``fixed_codebook`` is the config's
  declaration (what QAT reads); neither call modifies its input.
- ``check_quantizer_determinism``: the same values and seed give the same codebook bits and
  symbols, on a second call and from a second instance (no state kept between calls).
- ``check_quantizer_error``: at 3 levels or more, on light-tailed vectors, the quantized vector
  is closer to the input than the zero vector is: catches a codebook on the wrong scale or a
  quantizer that ignores its input.
"""

from __future__ import annotations

import numpy as np

from sublora.core.quantizer import QuantizedVector, Quantizer, QuantizerConfig
from sublora.core.testing._resolve import label, resolve, with_options

#: Codebook sizes the contract checks: the smallest, odd and even, the default, the largest a file stores.
LEVELS: tuple[int, ...] = (2, 3, 11, 24, 255)
#: Vectors ``check_quantizer_error`` uses: no heavy tails or outliers, where an evenly spaced grid is fine.
LIGHT_TAILED = ("gaussian", "large", "tiny", "constant")

Spec = str | QuantizerConfig | Quantizer


def vectors(seed: int = 0) -> dict[str, np.ndarray]:
    """The test vectors, by name (float64, like the hypothesis tensors certify quantizes)."""
    rng = np.random.default_rng(seed)
    gaussian = rng.standard_normal(3000) * 0.02
    outliers = gaussian.copy()
    outliers[:3] = [1.0, -1.0, 0.7]
    return {
        "gaussian": gaussian,
        "heavy_tailed": rng.standard_t(2, 3000) * 0.01,
        "one_sided": rng.exponential(0.01, 2000),
        "outliers": outliers,
        "constant": np.full(500, 0.25),
        "zeros": np.zeros(100),
        "one_value": np.array([0.3]),
        "few_distinct": np.repeat([-0.5, -0.1, 0.0, 0.2, 0.4], 40),
        "large": rng.standard_normal(1000) * 100.0,
        "tiny": rng.standard_normal(1000) * 1e-3,
    }


def _sizes(config: QuantizerConfig | None, quantizer: Quantizer, levels: tuple[int, ...]):
    """(levels, quantizer) at each size; a built quantizer only at its own size."""
    if config is None:
        yield quantizer.config.levels, quantizer
        return
    for n in levels:
        sized = with_options(config, levels=n)
        yield n, sized.build()


def _resolve(spec: Spec, options: dict | None) -> tuple[QuantizerConfig | None, Quantizer, str]:
    config, quantizer = resolve("quantizer", spec, options, QuantizerConfig, Quantizer)
    built = isinstance(spec, Quantizer)
    return (None if built else config), quantizer, label("quantizer", config, quantizer)


def check_fit(quantizer: Quantizer, values: np.ndarray, seed: int, where: str) -> np.ndarray:
    """``fit``: at most ``levels`` finite numbers in a 1-D array; the input is left as it was."""
    before = values.copy()
    centroids = np.asarray(quantizer.fit(values, seed))
    assert np.array_equal(values, before), f"{where}: fit modified the values it was given"
    levels = quantizer.config.levels
    assert centroids.ndim == 1 and centroids.size >= 1, (
        f"{where}: fit must return a 1-D array of 1..{levels} centroids; got shape {centroids.shape}")
    assert np.issubdtype(centroids.dtype, np.number), f"{where}: fit returned {centroids.dtype}, not numbers"
    assert centroids.size <= levels, f"{where}: fit returned {centroids.size} centroids for levels = {levels}"
    assert np.all(np.isfinite(centroids)), f"{where}: fit returned non-finite centroids {centroids[~np.isfinite(centroids)][:3]}"
    return centroids


def check_quantized(quantizer: Quantizer, values: np.ndarray, q: QuantizedVector, where: str) -> None:
    """The structure of one ``quantize`` result (see the module docstring)."""
    levels = quantizer.config.levels
    assert isinstance(q, QuantizedVector), f"{where}: quantize returned {type(q).__name__}, not a QuantizedVector"
    book = np.asarray(q.codebook)
    assert book.dtype == np.float16 and book.ndim == 1, (
        f"{where}: the codebook must be a 1-D float16 array (what the file stores); got {book.dtype}, shape {book.shape}")
    assert 1 <= book.size <= levels, f"{where}: codebook has {book.size} entries for levels = {levels}"
    assert np.all(np.isfinite(book)), f"{where}: non-finite codebook entries {book[~np.isfinite(book)][:3]}"
    assert np.all(np.diff(book.astype(np.float64)) > 0), f"{where}: codebook not strictly increasing: {book[:8]}"
    symbols = np.asarray(q.symbols)
    assert np.issubdtype(symbols.dtype, np.integer), f"{where}: symbols are {symbols.dtype}, not integers"
    assert symbols.shape == (values.size,), f"{where}: {symbols.shape} symbols for {values.size} values"
    assert symbols.min() >= 0 and symbols.max() < book.size, (
        f"{where}: symbols span [{symbols.min()}, {symbols.max()}], outside the codebook's [0, {book.size})")
    dist = np.abs(values[:, None] - book.astype(np.float64)[None, :])  # (n, levels)
    chosen = dist[np.arange(values.size), symbols]
    wrong = np.flatnonzero(chosen > dist.min(axis=1) * (1 + 1e-12))
    assert wrong.size == 0, (f"{where}: {wrong.size} values are not mapped to their nearest codebook entry "
                             f"(e.g. {values[wrong[0]]!r} -> {float(book[symbols[wrong[0]]])!r})")
    declared = bool(type(quantizer.config).fixed_codebook)
    assert bool(q.fixed_codebook) is declared, (
        f"{where}: the QuantizedVector says fixed_codebook = {q.fixed_codebook}, the config declares {declared}: "
        "QAT reads the vector's flag (build it with fixed_codebook=self.config.fixed_codebook)")


def check_quantizer_output(spec: Spec, options: dict | None = None, levels: tuple[int, ...] = LEVELS,
                           seed: int = 0) -> None:
    """``fit`` and ``quantize`` at every size of ``levels`` on every test vector (module docstring)."""
    config, quantizer, name = _resolve(spec, options)
    assert isinstance(type(quantizer.config).fixed_codebook, bool), f"{name}: fixed_codebook must be a bool"
    for n, sized in _sizes(config, quantizer, levels):
        for vector, values in vectors(seed).items():
            where = f"{name} at levels = {n} on the {vector} vector"
            check_fit(sized, values, seed, where)
            before = values.copy()
            q = sized.quantize(values, seed)
            assert np.array_equal(values, before), f"{where}: quantize modified the values it was given"
            check_quantized(sized, values, q, where)


def check_quantizer_determinism(spec: Spec, options: dict | None = None, seed: int = 3) -> None:
    """Same values and seed: the same codebook bits and symbols, twice and from a second instance."""
    config, quantizer, name = _resolve(spec, options)
    other = config.build() if config is not None else quantizer
    for vector in ("gaussian", "heavy_tailed"):
        values = vectors(0)[vector]
        runs = [quantizer.quantize(values, seed), quantizer.quantize(values, seed), other.quantize(values, seed)]
        for q in runs[1:]:
            same = (np.array_equal(np.asarray(q.codebook).view(np.uint16), np.asarray(runs[0].codebook).view(np.uint16))
                    and np.array_equal(q.symbols, runs[0].symbols))
            assert same, f"{name} on the {vector} vector: seed {seed} gave two different quantizations"


def check_quantizer_error(spec: Spec, options: dict | None = None, levels: tuple[int, ...] = LEVELS,
                          seed: int = 0) -> None:
    """At >= 3 levels the quantized vector is closer to a light-tailed input than the zero vector is."""
    config, quantizer, name = _resolve(spec, options)
    for n, sized in _sizes(config, quantizer, tuple(n for n in levels if n >= 3)):
        for vector in LIGHT_TAILED:
            values = vectors(seed)[vector]
            error = float(((sized.quantize(values, seed).values - values) ** 2).sum())
            norm = float((values**2).sum())
            assert error < norm, (
                f"{name} at levels = {n} on the {vector} vector: squared error {error:.4g} is not below "
                f"||w||^2 = {norm:.4g} (quantizing everything to 0 would do as well): a codebook on the wrong scale?")


def check_quantizer_contract(spec: Spec, options: dict | None = None, levels: tuple[int, ...] = LEVELS) -> None:
    """The whole contract: output structure at every size, determinism, error below the zero vector's."""
    check_quantizer_output(spec, options, levels)
    check_quantizer_determinism(spec, options)
    check_quantizer_error(spec, options, levels)


__all__ = [
    "LEVELS",
    "check_fit",
    "check_quantized",
    "check_quantizer_contract",
    "check_quantizer_determinism",
    "check_quantizer_error",
    "check_quantizer_output",
    "vectors",
]
