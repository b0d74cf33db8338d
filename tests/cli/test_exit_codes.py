"""Exit codes follow the error hierarchy: a subclass (a plugin's, sublora-lmgc's) exits like its family."""

from __future__ import annotations

import pytest

from sublora.cli.errors import EXIT_CODES, exit_code
from sublora.core.errors import DataError, SubloraError, VerificationError


class PluginDataError(DataError):
    pass


def test_a_subclass_exits_like_its_family():
    assert exit_code(PluginDataError("x")) == EXIT_CODES["DataError"] == 4
    assert exit_code(VerificationError("x")) == 8
    assert exit_code(SubloraError("x")) == 1


def test_lmgc_errors_have_their_own_code():
    errors = pytest.importorskip("sublora.lmgc.errors")  # not installed in every nox session
    NotFloat32Error, OutputExistsError = errors.NotFloat32Error, errors.OutputExistsError

    assert exit_code(NotFloat32Error("x")) == exit_code(OutputExistsError("x")) == EXIT_CODES["LmgcError"]
