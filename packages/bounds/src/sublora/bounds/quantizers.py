"""Built-in quantizers: uniform bins and seeded 1-D k-means.

Both return centroids only; ``Quantizer.quantize`` (core) rounds them to fp16
and maps every value to its nearest centroid.
"""

from __future__ import annotations

import numpy as np

from sublora.core.quantizer import Quantizer


class UniformQuantizer(Quantizer):
    """levels + 1 equally spaced edges on [-max|w|, max|w|]; centroid = mean of the values in each bin.

    Bins are half-open [e_i, e_{i+1}) except the last, which includes max|w|.
    Empty bins are dropped, so fewer than ``levels`` centroids may come back.
    ``seed`` is unused (the method is deterministic).
    """

    def fit(self, values: np.ndarray, seed: int) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).ravel()
        levels = self.config.levels
        bound = float(np.max(np.abs(values))) if values.size else 0.0
        if bound == 0.0:
            return np.zeros(1)
        edges = np.linspace(-bound, bound, levels + 1)
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, levels - 1)
        counts = np.bincount(bins, minlength=levels)
        sums = np.bincount(bins, weights=values, minlength=levels)
        full = counts > 0
        return sums[full] / counts[full]


class KMeansQuantizer(Quantizer):
    """1-D k-means: k-means++ initialisation drawn with ``numpy.random.default_rng(seed)``,
    then Lloyd iterations (at most ``max_iter``) until the centroids stop moving.

    Works on the sorted values, so one Lloyd step costs O(levels log d).
    Deterministic given the values and the seed. Empty clusters are dropped.
    """

    def fit(self, values: np.ndarray, seed: int) -> np.ndarray:
        x = np.sort(np.asarray(values, dtype=np.float64).ravel())
        if x.size == 0:
            return np.zeros(1)
        centroids = _kmeans_pp(x, self.config.levels, np.random.default_rng(seed))
        prefix = np.concatenate([[0.0], np.cumsum(x)])
        for _ in range(self.config.max_iter):
            centroids = np.sort(centroids)
            # Cluster j holds x[cut[j]:cut[j+1]]: the values nearer to centroid j than to its neighbours.
            mids = (centroids[1:] + centroids[:-1]) / 2
            cut = np.concatenate([[0], np.searchsorted(x, mids, side="right"), [x.size]])
            counts = np.diff(cut)
            full = counts > 0
            updated = (prefix[cut[1:]] - prefix[cut[:-1]])[full] / counts[full]
            if updated.shape == centroids.shape and np.array_equal(updated, centroids):
                break
            centroids = updated
        return np.sort(centroids)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: first centre uniform, then each next one with probability ~ squared distance.

    Stops early when every value already coincides with a centre (fewer distinct values than k).
    """
    centres = [x[rng.integers(x.size)]]
    dist2 = (x - centres[0]) ** 2
    for _ in range(1, k):
        total = dist2.sum()
        if total <= 0.0:
            break
        pick = int(np.searchsorted(np.cumsum(dist2), rng.random() * total, side="right"))
        centres.append(x[min(pick, x.size - 1)])
        dist2 = np.minimum(dist2, (x - centres[-1]) ** 2)
    return np.array(centres)
