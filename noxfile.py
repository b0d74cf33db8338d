"""nox sessions: each package's tests with only that package's declared dependencies.

    nox -s core projectors bounds cli plugin   # one fresh venv per package
    nox -s all                                 # everything together, as CI does

Installing torch in each venv uses this machine's local CPU wheel (torch==2.13.0);
elsewhere set TORCH_SPEC.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["all"]
TORCH = os.environ.get("TORCH_SPEC", "torch==2.13.0")


def _install(session: nox.Session, *paths: str) -> None:
    session.install(TORCH)
    session.install("pytest>=8", *[arg for p in paths for arg in ("-e", p)])


@nox.session
def core(session: nox.Session) -> None:
    _install(session, "packages/core[hf]")
    session.run("pytest", "-q", "tests/core", *session.posargs)


@nox.session
def projectors(session: nox.Session) -> None:
    _install(session, "packages/core", "packages/projectors")
    session.run("pytest", "-q", "tests/projectors", *session.posargs)


@nox.session
def bounds(session: nox.Session) -> None:
    _install(session, "packages/core", "packages/bounds")
    session.run("pytest", "-q", "tests/bounds", *session.posargs)


@nox.session
def plugin(session: nox.Session) -> None:
    _install(session, "packages/core", "packages/bounds", "plugins_example")  # the estimator uses sublora.bounds
    session.run("pytest", "-q", "plugins_example/tests", *session.posargs)


@nox.session
def cli(session: nox.Session) -> None:
    _install(session, "packages/core[hf]", "packages/projectors", "packages/bounds", "packages/cli", "plugins_example")
    session.run("pytest", "-q", "tests/cli", "tests/e2e", *session.posargs)


@nox.session
def all(session: nox.Session) -> None:  # noqa: A001 - the session's name
    _install(session, "packages/core[hf]", "packages/projectors", "packages/bounds", "packages/cli", "plugins_example")
    session.run("pytest", "-q", *session.posargs)
