"""The sums source against the source contract; documents are correct additions."""

from sublora.core.registry import registry
from sublora.core.testing import check_source_contract, read


def test_contract():
    check_source_contract("sums")
    check_source_contract("sums", {"n_documents": 3, "lines": 1})  # count() checked against every document


def test_every_equation_adds_up():
    source = registry("source").config("sums", {"n_documents": 20, "seed": 4}).build()
    for _, text in read(source, 20):
        for line in text.splitlines():
            left, right = line.split(" = ")
            a, b = left.split(" + ")
            assert int(a) + int(b) == int(right)
