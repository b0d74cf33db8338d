"""The ASCII tokenizer against the tokenizer contract: lossless on ASCII, one unknown id otherwise."""

from sublora.core.registry import registry
from sublora.core.testing import SAMPLE_TEXTS, check_tokenizer_contract


def test_contract():
    check_tokenizer_contract("ascii")  # lossless = False: non-ASCII text becomes the unknown id
    check_tokenizer_contract("ascii", texts=tuple(t for t in SAMPLE_TEXTS if t.isascii()), lossless=True)


def test_unknown_characters_share_one_id():
    tokenizer = registry("tokenizer").config("ascii").build()
    assert tokenizer.encode("é日").tolist() == [128, 128]
    assert tokenizer.decode([104, 105, 129]) == "hi<|endoftext|>"
