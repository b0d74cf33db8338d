"""Bound estimators, one per module: subsampling (IID documents), azuma and freedman (token martingales)."""
