"""The `lm` coder (issue 11 item 6b) against `arithmetic`, `adaptive` and `shortest` on real quantized w.

    .venv/bin/python benchmarks/lm_coder.py --run RUN [--run RUN ...] --prior NAME=PRIOR_RUN [...]
        [--out /tmp/lm-coder.json]

For each certified run (model.slc + certificate.json), the symbols of every hypothesis tensor are
decoded from model.slc, then coded by each coder: bytes, bits per symbol, d * H(p_hat) (the
empirical entropy, which no code that knows only the sequence can beat by much), encode and decode
seconds on one thread, exact round trip, and for the lm coder whether the prior would be admitted
in that run's certificate (``LMCoder.check_run_data`` on the run's data record) or why not. The
lm coder is run with two spellings: hex (``0a 03 07``) and a decimal Python list (``[10, 3, 7]``).
Finally `shortest` with candidates arithmetic, adaptive and the best lm setting.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

FORMATS = {"hex": {}, "decimal list": {"digits": "decimal", "separator": ", ", "start": "[", "end": "]"}}


def symbols_of(run: Path) -> dict[str, tuple]:
    from sublora.bounds.container import read_compressed
    from sublora.core.registry import registry

    cert = json.loads((run / "certificate.json").read_text())
    b = cert["bound_settings"]
    coder = registry("coder").config(b["coder"], b["coder_options"]).build()
    shapes = {name: h["length"] for name, h in cert["hypothesis"].items()}
    quantized = read_compressed(run / cert["compressed_file"], shapes, coder)
    return {name: (q.symbols.astype("int64"), int(q.codebook.size)) for name, q in quantized.items()}, cert


def measure(coder, symbols, A) -> dict:
    t0 = time.perf_counter()
    payload = coder.encode(symbols, A)
    enc = time.perf_counter() - t0
    fresh = type(coder)(coder.config)
    t0 = time.perf_counter()
    back = fresh.decode(payload, symbols.size, A)
    dec = time.perf_counter() - t0
    return {"bytes": len(payload), "bits_per_symbol": 8 * len(payload) / symbols.size, "encode_s": enc,
            "decode_s": dec, "exact": bool((back == symbols).all())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, action="append", required=True)
    parser.add_argument("--prior", action="append", required=True, help="NAME=PRIOR_RUN")
    parser.add_argument("--out", type=Path, default=Path("/tmp/lm-coder.json"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from sublora.bounds.coders import entropy_bits
    from sublora.core.registry import registry
    from sublora.lmgc.errors import PriorNotIndependentError
    from sublora.lmgc.prior import load_prior

    priors = {}
    for item in args.prior:
        name, _, path = item.partition("=")
        priors[name] = {"prior": str(Path(path).resolve()), "identity": load_prior(path).identity}
    results = []
    for run in args.run:
        tensors, cert = symbols_of(run)
        manifest = json.loads((run / "manifest.json").read_text())
        for tensor, (symbols, A) in tensors.items():
            d = symbols.size
            base = {"run": str(run), "tensor": tensor, "d": d, "levels": A, "entropy_bits": entropy_bits(symbols, A),
                    "certificate_coder": cert["bound_settings"]["coder"], "certificate_code_bits": cert["code_bits"]}
            rows = []
            for spec in ("arithmetic", "adaptive", "shortest"):
                rows.append({"coder": spec, **measure(registry("coder").config(spec).build(), symbols, A)})
            best_lm = None
            for pname, opts in priors.items():
                for fname, fmt in FORMATS.items():
                    coder = registry("coder").config("lm", {**opts, **fmt}).build()
                    row = {"coder": f"lm ({pname} prior, {fname})", **measure(coder, symbols, A),
                           "ideal_bits": coder.stats.get("ideal_bits")}
                    try:
                        coder.check_run_data(manifest.get("data"))
                        row["admissible"] = "yes"
                    except PriorNotIndependentError as exc:
                        row["admissible"] = "no: " + exc.message.split(": ", 1)[1].split(". Its bits")[0]
                    rows.append(row)
                    print(f"{run.name} {tensor}: {row['coder']} {row['bytes']} bytes "
                          f"({row['bits_per_symbol']:.3f} bits/symbol), exact {row['exact']}, {row['admissible']}",
                          flush=True)
                    if best_lm is None or row["bytes"] < best_lm[0]["bytes"]:
                        best_lm = (row, {**opts, **fmt})
            shortest = registry("coder").config("shortest", {"candidates": ["arithmetic", "adaptive", "lm"],
                                                             "candidate_options": {"lm": best_lm[1]}}).build()
            rows.append({"coder": f"shortest (arithmetic, adaptive, {best_lm[0]['coder']})",
                         **measure(shortest, symbols, A)})
            results.append({**base, "rows": rows})
            for r in rows:
                print(f"  {r['coder']}: {r['bytes']} B, {r['bits_per_symbol']:.3f} b/sym, enc {r['encode_s']:.2f} s, "
                      f"dec {r['decode_s']:.2f} s, exact {r['exact']}", flush=True)
            print(f"  d * H = {base['entropy_bits'] / 8:.1f} bytes ({base['entropy_bits'] / d:.3f} bits/symbol)")
    args.out.write_text(json.dumps({"results": results, "priors": priors,
                                    "loadavg": " ".join(f"{x:.1f}" for x in os.getloadavg())}, indent=2, default=str))


if __name__ == "__main__":
    main()
