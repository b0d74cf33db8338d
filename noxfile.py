"""nox sessions: each test directory in a fresh venv, installed from the packages' own metadata.

    pip install nox
    nox -s core projectors bounds plugin lmgc cli   # one fresh venv per session
    nox -s all                                   # everything together, as CI does
    nox -s cli -- -m "not slow"                  # pytest arguments after --

Each session installs the package under test with its ``test`` extra (plus ``plots`` for
sublora-bounds), so a dependency that a package uses but does not declare fails here. Most test
directories also exercise sibling sublora packages (a training run needs a projector, a bound
needs a quantizer); those siblings are installed next to it, as listed per session:

    session      tests                    installs
    core         tests/core               core[hf,test], projectors, bounds, cli  (tests train with rdkron, check
                                          bound names, and a few run `sublora` on a bad config)
    projectors   tests/projectors         core, projectors[test]             (no other sublora package)
    bounds       tests/bounds             core, projectors, bounds[plots,test], cli  (runs train; test_verify calls the CLI)
    plugin       plugins_example/tests    core, bounds, plugins_example[test]        (what a third-party plugin needs)
    lmgc         tests/lmgc               core, projectors, bounds, cli, lmgc[digits,baselines,test]  (tests train a
                                          tiny GPT-2 run with --collect-grads and use it as a prior)
    cli          tests/cli, tests/e2e     everything
    all          every test               everything

torch comes from this machine's local CPU wheel (torch==2.13.0); elsewhere set TORCH_SPEC.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["all"]
TORCH = os.environ.get("TORCH_SPEC", "torch==2.13.0")
EVERYTHING = ("packages/core[hf,test]", "packages/projectors[test]", "packages/bounds[plots,test]",
              "packages/cli[test]", "packages/lmgc[digits,baselines,test]", "plugins_example[test]")


def _install(session: nox.Session, *paths: str) -> None:
    session.install(TORCH)
    session.install(*[arg for p in paths for arg in ("-e", p)])


@nox.session
def core(session: nox.Session) -> None:
    _install(session, "packages/core[hf,test]", "packages/projectors", "packages/bounds", "packages/cli")
    session.run("pytest", "-q", "tests/core", *session.posargs)


@nox.session
def projectors(session: nox.Session) -> None:
    _install(session, "packages/core", "packages/projectors[test]")
    session.run("pytest", "-q", "tests/projectors", *session.posargs)


@nox.session
def bounds(session: nox.Session) -> None:
    _install(session, "packages/core", "packages/projectors", "packages/bounds[plots,test]", "packages/cli")
    session.run("pytest", "-q", "tests/bounds", *session.posargs)


@nox.session
def plugin(session: nox.Session) -> None:
    _install(session, "packages/core", "packages/bounds", "plugins_example[test]")
    session.run("pytest", "-q", "plugins_example/tests", *session.posargs)


@nox.session
def lmgc(session: nox.Session) -> None:
    _install(session, "packages/core", "packages/projectors", "packages/bounds", "packages/cli",
             "packages/lmgc[digits,baselines,test]")
    session.run("pytest", "-q", "tests/lmgc", *session.posargs)


@nox.session
def cli(session: nox.Session) -> None:
    _install(session, *EVERYTHING)
    session.run("pytest", "-q", "tests/cli", "tests/e2e", *session.posargs)


@nox.session
def all(session: nox.Session) -> None:  # noqa: A001 - the session's name
    _install(session, *EVERYTHING)
    session.run("pytest", "-q", *session.posargs)
