"""The ``lm`` coder: a language-model prior codes a symbol sequence, as LM-GC codes numbers.

The symbols (codebook indices of the quantized subspace vector) are written as text, e.g.
``0a 03 07 05`` (``digits: hex``: fixed width, separator " ") or ``[10, 3, 7, 5]`` (``digits:
decimal``, separator ", ", start "[", end "]"), and the text is fed to a byte-level prior one
character at a time. Where the text is fixed (separators, start, a hex digit that only one value
can take) nothing is coded. Where it is not, the prior's next-token distribution restricted to
the valid continuations (the characters that can still spell a symbol below the alphabet size,
or end it), renormalized in float64 and mixed with ``floor`` spread evenly over them, codes the
character with constriction's range coder (``Categorical(perfect=False)``). So the code is
exactly sum(-log2 p) over the decided characters, plus at most a few bytes.

Decoding makes the same calls in the same order (``sublora.lmgc.stepper``), with the same
grammar deciding which characters are fixed, so it rebuilds the same probabilities bit for bit
on the same machine, library versions and thread count (``threads``, set while coding).

The prior is named by ``prior`` (a path) and ``identity`` (its sha256, ``prior.py``): both are in
the run's config and so in the certificate; a prior with another identity is refused at encode
and decode (``PriorMismatchError``). Whether it may cost zero bits is decided by what it saw
(``check_run_data``, ``sublora.lmgc.provenance``; docs/lmgc.md, "The LM prior as a coder").

Payload: the shortest bit string that decodes like the range coder's output, trailing zero bits
implied (as the ``adaptive`` coder writes it), so the ``shortest`` coder can share a byte with
its flag; an empty payload when nothing is decided (an empty sequence, one symbol).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, ClassVar

import numpy as np

from sublora.core.coder import Coder
from sublora.core.errors import VerificationError
from sublora.lmgc.coder_config import LMCoderConfig
from sublora.lmgc.errors import PriorError, PriorMismatchError, PriorNotIndependentError

HEX = "0123456789abcdef"
DEC = "0123456789"
_HINT = "The payload is truncated or corrupt, or the prior's probabilities differ from the encoder's."


class SymbolGrammar:
    """How symbols in [0, A) are spelled, and which characters may come next while spelling one."""

    def __init__(self, config: LMCoderConfig, alphabet_size: int):
        self.A = int(alphabet_size)
        self.hex = config.digits == "hex"
        self.width = len(format(self.A - 1, "x"))  # hex: fixed width
        self.separator, self.start, self.end = config.separator, config.start, config.end

    def terminator(self, last: bool) -> str:
        """What ends a decimal symbol (its first character is decided, the rest is fixed)."""
        return (self.end or self.separator) if last else self.separator

    def options(self, typed: str, last: bool) -> str:
        """The characters that may follow ``typed`` (the current symbol's characters so far), in a fixed order."""
        if self.hex:
            rest = 16 ** (self.width - len(typed) - 1)
            v = int(typed, 16) if typed else 0
            return "".join(c for d, c in enumerate(HEX) if (16 * v + d) * rest < self.A)
        term = self.terminator(last)[0]
        if not typed:
            return DEC[:min(10, self.A)]
        if typed == "0":  # no leading zeros: "0" is complete
            return term
        v = int(typed)
        return "".join(c for d, c in enumerate(DEC) if 10 * v + d < self.A) + term

    def spell(self, symbol: int, last: bool) -> str:
        """The characters decided for ``symbol``: its digits (and, decimal, the terminator's first)."""
        return format(symbol, f"0{self.width}x") if self.hex else str(symbol) + self.terminator(last)[0]

    def done(self, typed: str) -> bool:
        return len(typed) == self.width if self.hex else bool(typed) and typed[-1] not in DEC

    def value(self, typed: str) -> int:
        return int(typed, 16) if self.hex else int(typed[:-1])


@contextlib.contextmanager
def _threads(n: int):
    """torch uses ``n`` threads inside, and the caller's count again afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LMCoder(Coder):
    """Range coding of the symbols' text with a byte-level language model's probabilities."""

    #: The payload's trailing zero bits are implied and it never ends in a zero byte (``shortest`` packs the flag).
    implicit_trailing_zeros: ClassVar[bool] = True

    def __init__(self, config: LMCoderConfig):
        super().__init__(config)
        self._prior = None
        self._stepper = None
        #: what the last encode/decode did: decisions coded, model calls, ideal bits, seconds
        self.stats: dict[str, Any] = {}

    # ---- the prior, checked

    def prior(self):
        """The prior named by the config, loaded once; refused unless its identity is the config's."""
        if self._prior is None:
            from sublora.lmgc.prior import load_prior

            with _threads(self.config.threads):  # loading a run sets torch's threads to its own
                prior = load_prior(self.config.prior, dtype=self.config.dtype)
            if prior.identity != self.config.identity:
                raise PriorMismatchError(
                    f"The lm coder's prior {self.config.prior} has identity {prior.identity[:16]}..., not the "
                    f"{self.config.identity[:16]}... the config names: it is another prior (retrained, edited, "
                    "another checkpoint or dtype).",
                    hint="Point `prior` at the prior the run's config names, or, before any data is seen, name "
                    f"this one: identity {prior.identity}.")
            if getattr(prior.tokenizer, "identity", None) != "bytes" or prior.vocab_size < 256:
                raise PriorError(f"The lm coder needs a byte-level prior (one token per character); {prior.spec} "
                                 f"uses the {getattr(prior.tokenizer, 'identity', '?')} tokenizer.",
                                 hint="Train the prior with --data.tokenizer=bytes (sublora's default).")
            self._prior = prior
        return self._prior

    def stepper(self):
        if self._stepper is None:
            from sublora.lmgc.stepper import GPT2Stepper

            prior = self.prior()
            window = self.config.window or prior.max_context or 256
            if prior.max_context is not None and window > prior.max_context:
                raise PriorError(f"The lm coder's window {window} exceeds the prior's context of {prior.max_context}.",
                                 hint=f"Set window to at most {prior.max_context}, or null.")
            self._stepper = GPT2Stepper(prior, window)
        return self._stepper

    def check_run_data(self, run_data: dict[str, Any] | None) -> dict[str, Any]:
        """Refuse a prior whose records show it depends on the run's training data; else what was checked.

        ``run_data`` is the run manifest's ``data`` record (dir, config_key, sha256 of the token files).
        Returns the record a certificate can keep: the prior, its identity, what it saw.
        """
        from sublora.lmgc.provenance import independence_problems, prior_saw

        saw = prior_saw(self.config.prior)
        problems = independence_problems(saw, run_data)
        if problems:
            raise PriorNotIndependentError(
                f"The lm coder's prior {self.config.prior} is not independent of this run's training data: "
                + "; ".join(problems) + ". Its bits would not be free, and the bound would not hold as computed.",
                hint="Use a prior trained on other data (e.g. serialized gradients of runs on other data, or another "
                "corpus), or another coder; a prior that saw the data must be charged by hand (docs/lmgc.md).")
        return {"prior": self.config.prior, "identity": self.config.identity, "data": saw["data"],
                "numbers_of": saw["numbers_of"], "independent_of": (run_data or {}).get("config_key")}

    # ---- coding

    def _probabilities(self, options: str) -> np.ndarray:
        """(len(options),) float64: the prior's next-token distribution over the options, renormalized, floored."""
        row = self.stepper().logits()
        z = row[[ord(c) for c in options]].double().numpy()
        e = np.exp(z - z.max())
        p = e / e.sum()
        return (1.0 - self.config.floor) * p + self.config.floor / p.size

    def _walk(self, n: int, alphabet_size: int, decide) -> np.ndarray:
        """Spell n symbols through the grammar; ``decide(options, typed, i, last)`` picks each undetermined character."""
        grammar = SymbolGrammar(self.config, alphabet_size)
        stepper = self.stepper()
        stepper.reset()
        stepper.feed(list(grammar.start.encode()))
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            last = i == n - 1
            if i and grammar.hex:
                stepper.feed(list(grammar.separator.encode()))
            typed = ""
            while not grammar.done(typed):
                options = grammar.options(typed, last)
                c = options if len(options) == 1 else decide(options, typed, i, last)
                stepper.feed([ord(c)])
                typed += c
            if not grammar.hex and not last:
                stepper.feed(list(grammar.terminator(last)[1:].encode()))
            out[i] = grammar.value(typed)
        return out

    def encode(self, symbols: np.ndarray, alphabet_size: int) -> bytes:
        import constriction

        from sublora.bounds.adaptive_coder import check_symbols, shortest_point

        symbols = check_symbols(symbols, alphabet_size)
        self.prior()  # the identity is checked on every use, coded or not
        if symbols.size == 0 or alphabet_size == 1:
            self.stats = {"decisions": 0, "calls": 0, "ideal_bits": 0.0, "seconds": 0.0}
            return b""
        grammar = SymbolGrammar(self.config, alphabet_size)
        encoder = constriction.stream.queue.RangeEncoder()
        family = constriction.stream.model.Categorical
        ideal, decisions, t0 = 0.0, 0, time.perf_counter()
        calls0 = self.stepper().calls

        def decide(options: str, typed: str, i: int, last: bool) -> str:
            nonlocal ideal, decisions
            c = grammar.spell(int(symbols[i]), last)[len(typed)]
            p = self._probabilities(options)
            k = options.index(c)
            encoder.encode(k, family(p, perfect=False))
            ideal -= float(np.log2(p[k]))
            decisions += 1
            return c

        with _threads(self.config.threads):
            check = self._walk(symbols.size, alphabet_size, decide)
        assert np.array_equal(check, symbols)  # the grammar spells every symbol back
        self.stats = {"decisions": decisions, "calls": self.stepper().calls - calls0, "ideal_bits": ideal,
                      "seconds": time.perf_counter() - t0}
        if decisions == 0:
            return b""
        position, (lower, range_) = encoder.pos()
        return shortest_point(np.asarray(encoder.get_compressed(), dtype=np.uint32), position, lower, range_)

    def decode(self, payload: bytes, length: int, alphabet_size: int) -> np.ndarray:
        import constriction

        if alphabet_size < 1:
            raise ValueError(f"alphabet_size must be >= 1; got {alphabet_size}.")
        self.prior()
        if length == 0 or alphabet_size == 1:
            if payload:
                raise VerificationError(f"lm payload corrupt: {len(payload)} bytes where the sequence needs none.",
                                        hint=_HINT)
            return np.zeros(length, dtype=np.int64)
        if payload.endswith(b"\0"):
            raise VerificationError("lm payload corrupt: it ends in a zero byte, which the coder never writes.",
                                    hint=_HINT)
        padded = payload + b"\0" * (-len(payload) % 4)
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype=">u4").astype(np.uint32))
        family = constriction.stream.model.Categorical
        t0, calls0 = time.perf_counter(), self.stepper().calls

        def decide(options: str, typed: str, i: int, last: bool) -> str:
            return options[int(decoder.decode(family(self._probabilities(options), perfect=False)))]

        try:
            with _threads(self.config.threads):
                out = self._walk(length, alphabet_size, decide)
        except PriorError:
            raise
        except Exception as exc:  # noqa: BLE001 - a range decoder failure means a corrupt payload
            raise VerificationError(f"lm payload corrupt: range decoding failed ({exc}).", hint=_HINT) from exc
        self.stats = {"calls": self.stepper().calls - calls0, "seconds": time.perf_counter() - t0}
        return out
