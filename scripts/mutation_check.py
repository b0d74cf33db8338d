#!/usr/bin/env python
"""Weaken the bound code on purpose and report which tests catch it (docs/bounds.md section 11).

Each mutation is a (file, exact old text, new text) patch of the estimators, the headline or
certify: a dropped union term, a margin cut by 20 %, a forgotten delta split ... It is applied
to a private copy of the repository (``git archive HEAD``, or the working tree with
``--from-working-tree``), never to the shared checkout, and the chosen test files are run
there one by one (``OMP_NUM_THREADS=1 pytest -x -q -p no:cacheprovider FILE``) with the copy's
packages first on PYTHONPATH. A mutation is *caught* when at least one of those files fails
that passed unmutated (the baseline run). A patch whose old text is not in its file is
reported as *stale* (the code moved on: update the patch), not skipped.

    .venv/bin/python scripts/mutation_check.py --list
    .venv/bin/python scripts/mutation_check.py --only freedman_drop_lnK --only headline_delta_K --out table.md
    .venv/bin/python scripts/mutation_check.py --out docs/mutations.md        # every mutation (an hour or so)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EST = "packages/bounds/src/sublora/bounds/estimators"
BOUNDS = "packages/bounds/src/sublora/bounds"
DEFAULT_TESTS = ["tests/bounds", "tests/core/test_bound_contract*"]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    what: str


M = Mutation
MUTATIONS: list[Mutation] = [
    # --- Azuma (section 5.1) ---
    M("azuma_martingale_cut20", f"{EST}/azuma.py",
      "return mean_loss + Delta * math.sqrt((div_nats + math.log(1.0 / delta)) / (2.0 * n_tokens))",
      "return mean_loss + 0.8 * Delta * math.sqrt((div_nats + math.log(1.0 / delta)) / (2.0 * n_tokens))",
      "Azuma martingale term cut by 20 %"),
    M("azuma_subsample_cut20", f"{EST}/azuma.py",
      "mean = subsample_ucb(loss[a], Delta, delta2, cfg.subsample_bound) if tokens.sampled else float(loss[a].mean())",
      "mean = float(loss[a].mean()) + 0.8 * (subsample_ucb(loss[a], Delta, delta2, cfg.subsample_bound) "
      "- float(loss[a].mean())) if tokens.sampled else float(loss[a].mean())",
      "Azuma block-subsample term cut by 20 %"),
    M("azuma_no_alpha_union", f"{EST}/azuma.py",
      "delta1, delta2 = (1.0 - f) * delta, f * delta / A",
      "delta1, delta2 = (1.0 - f) * delta, f * delta",
      "Azuma subsample term at f delta instead of f delta / |A|"),
    M("azuma_no_delta_split", f"{EST}/azuma.py",
      "delta1, delta2 = (1.0 - f) * delta, f * delta / A",
      "delta1, delta2 = delta, f * delta / A",
      "Azuma martingale term at delta instead of (1 - f) delta when sampled"),
    # --- Freedman (section 5.2) ---
    M("freedman_drop_lnK", f"{EST}/freedman.py",
      "cost = (div_nats + math.log(lambdas.size / delta)) / (lambdas * n_tokens)",
      "cost = (div_nats + math.log(1.0 / delta)) / (lambdas * n_tokens)",
      "Freedman: union over the lambda grid (ln |K|) dropped"),
    M("freedman_variance_cut20", f"{EST}/freedman.py",
      "values = psi(lambdas) / lambdas * sigma + cost",
      "values = 0.8 * psi(lambdas) / lambdas * sigma + cost",
      "Freedman variance term cut by 20 %"),
    M("freedman_cost_cut20", f"{EST}/freedman.py",
      "cost = (div_nats + math.log(lambdas.size / delta)) / (lambdas * n_tokens)",
      "cost = 0.8 * (div_nats + math.log(lambdas.size / delta)) / (lambdas * n_tokens)",
      "Freedman cost term (div + ln(|K|/delta)) / (lambda n) cut by 20 %"),
    M("freedman_mean_ucb_cut20", f"{EST}/freedman.py",
      "mean_up = subsample_ucb(loss[a], Delta_x, delta_x, cfg.subsample_bound)",
      "mean_up = mean_up + 0.8 * (subsample_ucb(loss[a], Delta_x, delta_x, cfg.subsample_bound) - mean_up)",
      "Freedman mean UCB margin cut by 20 %"),
    M("freedman_sigma_ucb_cut20", f"{EST}/freedman.py",
      "sigma_up = min(1.0, subsample_ucb(xi2[a], 1.0, delta_s, cfg.subsample_bound))",
      "sigma_up = min(1.0, sigma_up + 0.8 * (subsample_ucb(xi2[a], 1.0, delta_s, cfg.subsample_bound) - sigma_up))",
      "Freedman Sigma_hat UCB margin cut by 20 %"),
    M("freedman_no_mean_ucb", f"{EST}/freedman.py",
      "mean_up = subsample_ucb(loss[a], Delta_x, delta_x, cfg.subsample_bound)",
      "pass",
      "Freedman: sampled mean used without its UCB"),
    M("freedman_no_sigma_ucb", f"{EST}/freedman.py",
      "sigma_up = min(1.0, subsample_ucb(xi2[a], 1.0, delta_s, cfg.subsample_bound))",
      "pass",
      "Freedman: sampled Sigma_hat used without its UCB"),
    M("freedman_no_delta_split", f"{EST}/freedman.py",
      "delta1, delta_x, delta_s = (1.0 - f) * delta, f * delta / (2.0 * A), f * delta / (2.0 * A)",
      "delta1, delta_x, delta_s = (1.0 - f) * delta, f * delta / A, f * delta / A",
      "Freedman: mean and Sigma UCBs each at f delta / |A| (the split in two forgotten)"),
    M("freedman_no_alpha_union", f"{EST}/freedman.py",
      "delta1, delta_x, delta_s = (1.0 - f) * delta, f * delta / (2.0 * A), f * delta / (2.0 * A)",
      "delta1, delta_x, delta_s = (1.0 - f) * delta, f * delta / 2.0, f * delta / 2.0",
      "Freedman: UCBs without the / |A| of the alpha union"),
    M("freedman_martingale_full_delta", f"{EST}/freedman.py",
      "delta1, delta_x, delta_s = (1.0 - f) * delta, f * delta / (2.0 * A), f * delta / (2.0 * A)",
      "delta1, delta_x, delta_s = delta, f * delta / (2.0 * A), f * delta / (2.0 * A)",
      "Freedman martingale term at delta instead of (1 - f) delta when sampled"),
    M("freedman_range_Delta_alpha", f"{EST}/freedman.py",
      "return mean_up + Delta_F * term, lam, sigma_up",
      "return mean_up + Delta_x * term, lam, sigma_up",
      "Freedman scaled by Delta(a) instead of Delta_F(a) = log2(V/a)"),
    # --- subsampling (sections 6.1, 7) ---
    M("subsampling_occam_cut20", f"{EST}/subsampling.py",
      "return R * math.sqrt((div_nats - math.log(delta)) / (2.0 * N))",
      "return 0.8 * R * math.sqrt((div_nats - math.log(delta)) / (2.0 * N))",
      "subsampling Occam term cut by 20 %"),
    M("subsampling_sample_cut20", f"{EST}/subsampling.py",
      "return subsample_ucb(values, R, (1.0 - r) * delta / share, self.config.subsample_bound) + occam_term(",
      "return float(values.mean()) + 0.8 * (subsample_ucb(values, R, (1.0 - r) * delta / share, "
      "self.config.subsample_bound) - float(values.mean())) + occam_term(",
      "subsampling sample term cut by 20 %"),
    M("subsampling_no_alpha_union", f"{EST}/subsampling.py",
      "(1.0 - r) * delta / share, self.config.subsample_bound)",
      "(1.0 - r) * delta, self.config.subsample_bound)",
      "subsampling sample term at (1 - r) delta instead of (1 - r) delta / |A|"),
    M("subsampling_occam_full_delta", f"{EST}/subsampling.py",
      "N, div, R, r * delta)",
      "N, div, R, delta)",
      "subsampling Occam term at delta instead of r delta"),
    # --- PAC-Bayes (section 6.2) ---
    M("pacbayes_subsample_cut20", f"{EST}/pacbayes.py",
      "upper = min(1.0, subsample_ucb(values01, 1.0, d_s, cfg.subsample_bound))",
      "upper = min(1.0, float(np.mean(values01)) + 0.8 * (subsample_ucb(values01, 1.0, d_s, cfg.subsample_bound) "
      "- float(np.mean(values01))))",
      "PAC-Bayes subsample term cut by 20 %"),
    M("pacbayes_no_alpha_union", f"{EST}/pacbayes.py",
      "value01, beta, upper = unit_bound(values01, complexity.nats, delta_s / A)",
      "value01, beta, upper = unit_bound(values01, complexity.nats, delta_s)",
      "PAC-Bayes BPD subsample term at f delta instead of f delta / |A|"),
    M("pacbayes_no_delta_split", f"{EST}/pacbayes.py",
      "delta_pb, delta_s = (1.0 - f) * delta, f * delta",
      "delta_pb, delta_s = delta, f * delta",
      "PAC-Bayes term at delta instead of (1 - f) delta"),
    M("pacbayes_clip_per_document", f"{EST}/pacbayes.py",
      "values01 = (bpd[a] - lo) / Delta  # not clipped per document: only the limit is (at 1)",
      "values01 = np.clip((bpd[a] - lo) / Delta, 0.0, 1.0)",
      "PAC-Bayes clips each rescaled document loss to [0, 1] (lowers the mean when losses round above hi)"),
    M("kl_inverse_lower_end", f"{EST}/pacbayes.py",
      "            hi = mid\n    return hi",
      "            hi = mid\n    return lo",
      "kl inverse returns the lower end of the bisection (tolerance on the wrong side)"),
    M("catoni_no_beta_union", f"{EST}/pacbayes.py",
      "exponent = betas * risk + (kl_nats + math.log(betas.size / delta)) / n",
      "exponent = betas * risk + (kl_nats + math.log(1.0 / delta)) / n",
      "Catoni: union over the beta grid (ln |B|) dropped"),
    M("mcallester_no_xi", f"{EST}/pacbayes.py",
      "return risk + math.sqrt((kl_nats + math.log(maurer_xi(n) / delta)) / (2.0 * n))",
      "return risk + math.sqrt((kl_nats + math.log(1.0 / delta)) / (2.0 * n))",
      "McAllester without xi(N)"),
    M("kl_no_xi", f"{EST}/pacbayes.py",
      "(kl_nats + math.log(maurer_xi(n) / delta)) / n)",
      "(kl_nats + math.log(1.0 / delta)) / n)",
      "kl bound without xi(N)"),
    M("xi_lower_bound", f"{EST}/pacbayes.py",
      "    if n >= 8:\n        return 2.0 * math.sqrt(n)",
      "    if n >= 8:\n        return math.sqrt(n)",
      "xi(N) = sqrt(N), Maurer's lower bound on E exp(N kl) instead of the upper 2 sqrt(N)"),
    # --- shared pieces (sections 2-4) ---
    M("bernstein_seven_thirds_halved", f"{EST}/_common.py",
      "7.0 * R * log_term / (3.0 * (m - 1))",
      "7.0 * R * log_term / (6.0 * (m - 1))",
      "empirical Bernstein range term halved"),
    M("bernstein_log_one_over_delta", f"{EST}/_common.py",
      "log_term = math.log(2.0 / delta)",
      "log_term = math.log(1.0 / delta)",
      "empirical Bernstein at ln(1/d) instead of ln(2/d)"),
    M("hoeffding_cut20", f"{EST}/_common.py",
      "return Delta * math.sqrt(math.log(1.0 / delta) / (2.0 * m))",
      "return 0.8 * Delta * math.sqrt(math.log(1.0 / delta) / (2.0 * m))",
      "Hoeffding subsample term cut by 20 %"),
    M("extremes_check_removed", f"{EST}/_common.py",
      "    if extremes is None:\n        return",
      "    if True:\n        return",
      "per-token loss extremes no longer checked against [lo, hi]"),
    M("token_n_not_whole_blocks", f"{EST}/_tokens.py",
      "    if tokens.n % tokens.block_size:\n",
      "    if False:\n",
      "token evidence whose n is not a whole number of blocks accepted (n larger than the blocks cover)"),
    M("range_tolerance_loose", f"{EST}/_common.py",
      "RANGE_TOLERANCE = 1e-3",
      "RANGE_TOLERANCE = 1.0",
      "range check tolerates a whole bit outside [lo, hi]"),
    M("delta_range_wrong_V", f"{BOUNDS}/smoothing.py",
      "return math.log2(1.0 + (1.0 - alpha) * V / alpha)",
      "return math.log2(1.0 + (1.0 - alpha) * (V - 1) / alpha)",
      "Delta(a) computed with V - 1"),
    M("evidence_tokenizer_V", f"{BOUNDS}/sharded.py",
      "return Evidence(vocab_size=vocab, alphas=alphas, documents=documents, tokens=tokens)",
      "return Evidence(vocab_size=data.vocab_size, alphas=alphas, documents=documents, tokens=tokens)",
      "bounds use the tokenizer's V instead of the predictor's"),
    # --- complexity (section 3) ---
    M("complexity_no_alpha_bits", f"{BOUNDS}/prior.py",
      '"alpha_grid": math.log2(len(grid))}',
      '"alpha_grid": 0.0}',
      "log2 |A| not charged"),
    M("complexity_no_prefix_term", "packages/core/src/sublora/core/bound.py",
      "return self.code_bits + 2.0 * math.log2(self.code_bits)",
      "return self.code_bits + 1.0 * math.log2(self.code_bits)",
      "prefix-free code length L + log2 L instead of L + 2 log2 L"),
    # --- headline (section 9) and attempts (section 8) ---
    M("headline_delta_K", f"{BOUNDS}/headline.py",
      "estimator.compute(evidence, complexity, delta / K)",
      "estimator.compute(evidence, complexity, delta)",
      "headline candidates at delta instead of delta / K"),
    M("headline_no_floor_rule", f"{BOUNDS}/headline.py",
      "elif r.vacuous:",
      "elif False:",
      "candidates vacuous by construction kept (K larger than specified: looser, not invalid)"),
    M("headline_floor_is_real_evidence", f"{BOUNDS}/headline.py",
      "floor = floor_evidence(evidence)",
      "floor = evidence",
      "candidates dropped on the real evidence (a choice after seeing it) instead of the floor evidence"),
    M("scoring_ignores_dtype", f"{BOUNDS}/sharded.py",
      "predict = predictor(model, device, b.dtype)",
      "predict = predictor(model, device)",
      "bound.dtype=bfloat16 certificate whose evidence was scored by the float32 predictor (another hypothesis)"),
    M("topk_ties_favour_target", f"{BOUNDS}/evidence.py",
      "    if bool(tied.any()):",
      "    if False:",
      "top-k errors counting a tie with the target as a hit (the set predictor would depend on the target)"),
    M("attempts_dtype_free", f"{BOUNDS}/attempts.py",
      'NO_EFFECT = {"batch_size", "hyper_bits_cover"}',
      'NO_EFFECT = {"batch_size", "hyper_bits_cover", "dtype"}',
      "switching bound.dtype after a certificate not counted as a new attempt (a free choice after seeing data)"),
    M("attempts_not_charged", f"{BOUNDS}/attempts.py",
      "return delta / (attempt * (attempt + 1))",
      "return delta",
      "re-certifications not charged (delta instead of delta / (j (j + 1)))"),
    M("attempts_delta_over_j", f"{BOUNDS}/attempts.py",
      "return delta / (attempt * (attempt + 1))",
      "return delta / attempt",
      "attempt j at delta / j (the old delta / k rule: sums past delta when the user stops after a good first one)"),
]


# --- running ---------------------------------------------------------------------------------

def make_copy(from_working_tree: bool) -> Path:
    """A private copy of the repository: HEAD (git archive), or the working tree's tracked + untracked files."""
    dest = Path(tempfile.mkdtemp(prefix="mut-"))
    if from_working_tree:
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                               capture_output=True).stdout.decode().split("\0")
        for f in filter(None, files):
            src = ROOT / f
            if src.is_file():
                (dest / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / f)
    else:
        archive = dest / ".head.tar"
        subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), "HEAD"], cwd=ROOT, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        archive.unlink()
    return dest


def environment(copy: Path) -> dict[str, str]:
    """The copy's packages ahead of the editable installs of the shared checkout."""
    paths = [str(p) for p in sorted(copy.glob("packages/*/src"))] + [str(p) for p in copy.glob("plugins_example/src")]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "SUBLORA_DEBUG")}
    env.update(OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])))
    return env


def check_isolation(copy: Path, env: dict[str, str]) -> None:
    code = "import sublora.bounds.estimators.azuma as a, sublora.core.bound as b; print(a.__file__); print(b.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, check=True)
    for line in out.stdout.split():
        if not Path(line).resolve().is_relative_to(copy.resolve()):
            raise SystemExit(f"isolation failed: {line} is imported from outside the copy {copy}")


def environment_fingerprint() -> str:
    """The installed distributions and their entry points, which the copy shares with the checkout: a
    reinstall midway (new components, renamed modules) changes what the tests load, not the mutation."""
    import hashlib
    import site

    digest = hashlib.sha256()
    for root in site.getsitepackages():
        for f in sorted(Path(root).glob("*.dist-info/entry_points.txt")) + sorted(Path(root).glob("*.pth")):
            digest.update(str(f).encode() + f.read_bytes())
    return digest.hexdigest()


def test_files(copy: Path, patterns: list[str]) -> list[str]:
    files = []
    for pattern in patterns:
        for p in sorted(copy.glob(pattern)):
            files += sorted(str(f.relative_to(copy)) for f in p.rglob("test_*.py")) if p.is_dir() else [
                str(p.relative_to(copy))]
    return list(dict.fromkeys(files))


def run_file(copy: Path, env: dict[str, str], path: str, timeout: float) -> tuple[str, list[str], float]:
    """('pass' | 'fail' | 'timeout', failing test ids, seconds) for one test file."""
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", path],
                             cwd=copy, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", [], time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    if out.returncode in (0, 5):  # 5: nothing collected
        return "pass", [], seconds
    ids = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", out.stdout, flags=re.MULTILINE) or [f"{path} (exit {out.returncode})"]
    return "fail", ids, seconds


def apply(copy: Path, m: Mutation) -> str | None:
    """Patch the copy; returns the original text, or None when the old text is not there exactly once."""
    path = copy / m.file
    if not path.is_file():
        return None
    text = path.read_text()
    if text.count(m.old) != 1:
        return None
    path.write_text(text.replace(m.old, m.new))
    return text


def markdown(rows: list[dict], source: str, files: list[str], baseline_failures: list[str]) -> str:
    lines = [f"Mutation check on {source}; test files: {', '.join(files)}.", ""]
    if baseline_failures:
        lines += [f"Failing before any mutation (not counted as catching): {', '.join(baseline_failures)}.", ""]
    lines += ["| mutation | what | caught | by | seconds |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        by = "<br>".join(r["by"]) if r["by"] else ""
        what = r["what"].replace("|", "\\|")
        lines.append(f"| `{r['name']}` | {what} | {r['status']} | {by} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these (repeatable)")
    parser.add_argument("--tests", nargs="+", default=DEFAULT_TESTS, metavar="PATH",
                        help=f"test files, folders or globs, relative to the repo (default: {' '.join(DEFAULT_TESTS)})")
    parser.add_argument("--out", type=Path, help="write the table as markdown to this file")
    parser.add_argument("--first", action="store_true", help="stop at the first test file that catches a mutation")
    parser.add_argument("--from-working-tree", action="store_true",
                        help="copy the working tree (with uncommitted changes) instead of HEAD")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per test file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)

    if args.list:  # with whether each patch still applies to the shared checkout (read only)
        for m in MUTATIONS:
            path = ROOT / m.file
            found = path.read_text().count(m.old) if path.is_file() else 0
            state = "ok" if found == 1 else ("STALE" if found == 0 else f"AMBIGUOUS x{found}")
            print(f"{m.name:34s} {state:9s} {m.file.split('/')[-1]:15s} {m.what}")
        return 0
    unknown = sorted(set(args.only) - {m.name for m in MUTATIONS})
    if unknown:
        parser.error(f"unknown mutation(s) {unknown}; see --list")
    selected = [m for m in MUTATIONS if not args.only or m.name in args.only]

    copy = make_copy(args.from_working_tree)
    source = "the working tree" if args.from_working_tree else "HEAD " + subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    print(f"copy of {source} in {copy}", flush=True)
    try:
        env = environment(copy)
        check_isolation(copy, env)
        files = test_files(copy, args.tests)
        if not files:
            parser.error(f"no test files match {args.tests}")

        def baseline() -> tuple[list[str], str]:
            fingerprint = environment_fingerprint()
            failures = []
            for f in files:
                status, ids, seconds = run_file(copy, env, f, args.timeout)
                print(f"baseline {f}: {status} ({seconds:.0f} s) {' '.join(ids)}", flush=True)
                if status != "pass":
                    failures.append(f)
            return failures, fingerprint

        baseline_failures, fingerprint = baseline()
        usable = [f for f in files if f not in baseline_failures]

        rows = []
        for m in selected:
            if environment_fingerprint() != fingerprint:
                print("the installed distributions changed (someone reinstalled a package): baseline again", flush=True)
                baseline_failures, fingerprint = baseline()
                usable = [f for f in files if f not in baseline_failures]
            t0 = time.perf_counter()
            original = apply(copy, m)
            if original is None:
                rows.append({"name": m.name, "what": m.what, "status": "stale", "by": [], "seconds": 0.0})
                print(f"{m.name}: STALE (old text not found exactly once in {m.file})", flush=True)
                continue
            by = []
            try:
                for f in usable:
                    status, ids, _ = run_file(copy, env, f, args.timeout)
                    if status != "pass":
                        by += ids if status == "fail" else [f"{f} (timeout)"]
                        if args.first:
                            break
            finally:
                (copy / m.file).write_text(original)
            row = {"name": m.name, "what": m.what, "status": "caught" if by else "NOT caught", "by": by,
                   "seconds": time.perf_counter() - t0}
            rows.append(row)
            print(f"{m.name}: {row['status']} in {row['seconds']:.0f} s {' '.join(by)}", flush=True)

        width = max(len(r["name"]) for r in rows)
        print(f"\n{'mutation':{width}s}  {'caught?':10s}  {'seconds':>7s}  by")
        for r in rows:
            print(f"{r['name']:{width}s}  {r['status']:10s}  {r['seconds']:7.0f}  {', '.join(r['by'])}")
        if args.out:
            args.out.write_text(markdown(rows, source, usable, baseline_failures))
            print(f"table written to {args.out}")
        return 0 if all(r["status"] == "caught" for r in rows) else 1
    finally:
        if args.keep:
            print(f"kept {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
