"""Uniform-bin and k-means quantizers, also through the registry."""

import numpy as np
import pytest

from sublora.bounds.configs import KMeansQuantizerConfig, UniformQuantizerConfig
from sublora.bounds.quantizers import KMeansQuantizer, UniformQuantizer
from sublora.core.registry import registry


def test_uniform_centroids_are_bin_means():
    w = np.array([-1.0, -0.9, -0.1, 0.05, 0.1, 0.2, 0.95])
    centroids = UniformQuantizer(UniformQuantizerConfig(levels=4)).fit(w, seed=0)
    # edges -1, -0.5, 0, 0.5, 1: bins {-1, -0.9}, {-0.1}, {0.05, 0.1, 0.2}, {0.95}
    np.testing.assert_allclose(centroids, [-0.95, -0.1, 0.35 / 3, 0.95])


def test_uniform_drops_empty_bins_and_handles_zeros():
    w = np.array([-1.0, -1.0, 1.0, 1.0, 0.99])
    centroids = UniformQuantizer(UniformQuantizerConfig(levels=11)).fit(w, seed=0)
    np.testing.assert_allclose(centroids, [-1.0, 2.99 / 3])
    assert UniformQuantizer(UniformQuantizerConfig()).quantize(np.zeros(5)).codebook.tolist() == [0.0]


@pytest.mark.parametrize("name", ["uniform", "kmeans"])
def test_quantize_maps_to_nearest_fp16_centroid(name):
    w = np.random.default_rng(1).standard_normal(3000) * 0.02
    quantizer = registry("quantizer").config(name, {"levels": 7}).build()
    q = quantizer.quantize(w, seed=3)
    assert q.codebook.dtype == np.float16 and 1 <= q.codebook.size <= 7
    assert np.all(np.diff(q.codebook.astype(np.float64)) > 0)
    dist = np.abs(w[:, None] - q.codebook.astype(np.float64)[None, :])
    np.testing.assert_array_equal(dist[np.arange(w.size), q.symbols], dist.min(axis=1))
    assert q.values.shape == w.shape


def test_kmeans_deterministic_per_seed_and_lloyd_fixed_point():
    w = np.random.default_rng(0).standard_normal(5000)
    km = KMeansQuantizer(KMeansQuantizerConfig(levels=5, max_iter=300))
    a, b = km.fit(w, seed=7), km.fit(w, seed=7)
    np.testing.assert_array_equal(a, b)
    assigned = np.argmin(np.abs(w[:, None] - a[None, :]), axis=1)
    for j, c in enumerate(a):  # each centroid is the mean of its cluster
        assert c == pytest.approx(w[assigned == j].mean(), abs=1e-9)


def test_kmeans_finds_separated_clusters_and_few_distinct_values():
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.normal(m, 0.01, 200) for m in (-1.0, 0.0, 2.0)])
    centroids = KMeansQuantizer(KMeansQuantizerConfig(levels=3)).fit(w, seed=1)
    np.testing.assert_allclose(centroids, [-1.0, 0.0, 2.0], atol=0.01)
    few = KMeansQuantizer(KMeansQuantizerConfig(levels=11)).fit(np.array([0.5, 0.5, -0.5]), seed=0)
    np.testing.assert_allclose(few, [-0.5, 0.5])
