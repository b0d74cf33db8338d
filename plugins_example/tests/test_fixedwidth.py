"""The fixed-width coder against the coder contract; its length is exactly ceil(log2 levels) bits a symbol."""

import numpy as np
import pytest

from sublora.core.errors import VerificationError
from sublora.core.registry import registry
from sublora.core.testing import check_coder_contract


def test_contract():
    check_coder_contract("fixedwidth")


def test_length_and_truncation():
    coder = registry("coder").config("fixedwidth").build()
    symbols = np.random.default_rng(0).integers(0, 11, 1001)
    payload = coder.encode(symbols, 11)
    assert len(payload) == (1001 * 4 + 7) // 8  # 11 symbols need 4 bits
    with pytest.raises(VerificationError):
        coder.decode(payload[:-1], 1001, 11)
