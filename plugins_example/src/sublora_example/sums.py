"""A synthetic source: documents of additions such as '17 + 25 = 42', drawn from a seeded generator.

Needs no files or network, so a smoke run works anywhere. Every option that changes the
documents is in the config, so the options alone identify the data: ``location()`` and
``fingerprint()`` keep the defaults (None).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sublora.core.source import Source


class SumsSource(Source):
    def documents(self) -> Iterator[tuple[str, str]]:
        """``n_documents`` documents of ``lines`` equations each, the same for the same options."""
        c = self.config
        rng = np.random.default_rng(c.seed)
        for i in range(c.n_documents):
            a, b = rng.integers(0, c.max_operand + 1, (2, c.lines))
            yield f"sums-{i:06d}", "".join(f"{x} + {y} = {x + y}\n" for x, y in zip(a.tolist(), b.tolist()))

    def count(self) -> int:
        """Optional: lets `sublora data prepare` show progress out of a total."""
        return self.config.n_documents
