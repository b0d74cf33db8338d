"""Configs of the built-in quantizers, coders and bound estimators.

Registered through entry points; cheap to import (pydantic only). Each names
its implementation, imported only when the component is built.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from sublora.core.bound import BoundConfig
from sublora.core.coder import CoderConfig
from sublora.core.quantizer import QuantizerConfig

def _subsample_fraction() -> float:
    return Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="Share of delta spent on the Hoeffding term(s) of subsampled blocks "
        "(unused when every block is evaluated).",
    )


SubsampleBound = Literal["hoeffding", "bernstein"]


def _subsample_bound(default: str) -> Any:
    return Field(
        default,
        description="Upper confidence limit of a mean over sampled units (docs/bounds.md section 4): 'hoeffding' "
        "pays the full range, 'bernstein' (empirical Bernstein) the observed spread plus 7R ln(2/d)/(3(m-1)). "
        "Fixed before the data is seen; never the smaller of the two afterwards.",
    )


class UniformQuantizerConfig(QuantizerConfig):
    description: ClassVar[str] = "Uniform bins on [-max|w|, max|w|]; each centroid is the mean of its bin."
    implementation: ClassVar[str] = "sublora.bounds.quantizers:UniformQuantizer"


class KMeansQuantizerConfig(QuantizerConfig):
    description: ClassVar[str] = "1-D k-means: seeded k-means++ initialisation, then Lloyd iterations."
    implementation: ClassVar[str] = "sublora.bounds.quantizers:KMeansQuantizer"

    max_iter: int = Field(100, ge=1, description="Maximum Lloyd iterations (stops earlier once centroids settle).")


class ArithmeticCoderConfig(CoderConfig):
    description: ClassVar[str] = "Range coder (constriction); the payload stores the empirical symbol counts."
    implementation: ClassVar[str] = "sublora.bounds.coders:ArithmeticCoder"


class AdaptiveCoderConfig(CoderConfig):
    description: ClassVar[str] = ("Adaptive range coder (constriction): add-prior estimator learned while coding; "
                                  "no counts stored.")
    implementation: ClassVar[str] = "sublora.bounds.adaptive_coder:AdaptiveCoder"

    prior: float = Field(0.5, gt=0.0, allow_inf_nan=False,
                         description="a: P(s) = (count_s + a) / (i + a * levels); 0.5 = Krichevsky-Trofimov.")


#: The flag naming the chosen candidate has at most 8 bits, so it never costs more than one byte.
MAX_CANDIDATES = 2**8


class ShortestCoderConfig(CoderConfig):
    description: ClassVar[str] = ("Codes with every candidate and keeps the shortest; a ceil(log2 n)-bit flag "
                                  "names it (shares a byte with the chosen code's padding when it fits).")
    implementation: ClassVar[str] = "sublora.bounds.shortest_coder:ShortestCoder"

    candidates: list[str] = Field(
        default_factory=lambda: ["arithmetic", "adaptive"], min_length=1, max_length=MAX_CANDIDATES,
        description="Coder specs to try, in flag order (ties go to the earlier one).",
    )
    candidate_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per candidate spec, e.g. {adaptive: {prior: 0.3}}."
    )

    @field_validator("candidates")
    @classmethod
    def _known_distinct(cls, v: list[str]) -> list[str]:
        from sublora.core.errors import UnknownComponentError
        from sublora.core.registry import registry
        from sublora.core.spec import parse_spec

        specs = [str(parse_spec(s, "coder")) for s in v]
        if len(set(specs)) != len(specs):
            raise ValueError(f"candidates must be distinct (a repeat only costs flag bits); got {specs}")
        for spec in specs:
            family = parse_spec(spec).family
            if family == "shortest":
                raise ValueError("'shortest' cannot be its own candidate; list the coders it should choose from")
            try:
                registry("coder").entry(family)
            except UnknownComponentError as exc:
                usable = ", ".join(n for n in registry("coder").names() if n != "shortest")
                raise ValueError(f"{exc.message.rstrip('.')} Candidates can be: {usable}") from exc
        return specs

    @model_validator(mode="after")
    def _candidate_options_match(self) -> "ShortestCoderConfig":
        extra = sorted(set(self._options_by_spec()) - set(self.candidates))
        if extra:
            raise ValueError(f"candidate_options names {extra}, which are not among the candidates {self.candidates}")
        self.candidate_configs()  # validate every candidate's options now, not at encode time
        return self

    def _options_by_spec(self) -> dict[str, dict[str, Any]]:
        from sublora.core.spec import parse_spec

        return {str(parse_spec(k, "coder")): v for k, v in self.candidate_options.items()}

    def candidate_configs(self) -> list[CoderConfig]:
        """The candidates' validated configs, in flag order."""
        from sublora.core.registry import registry

        options = self._options_by_spec()
        return [registry("coder").config(spec, options.get(spec)) for spec in self.candidates]


class SubsamplingBoundConfig(BoundConfig):
    description: ClassVar[str] = "IID document-level bound on a subsampled empirical risk (Lotfi et al. 2024a)."
    implementation: ClassVar[str] = "sublora.bounds.estimators.subsampling:SubsamplingBound"

    subsample_bound: SubsampleBound = _subsample_bound("hoeffding")
    sequences: bool = Field(
        False, description="Also bound per-sequence risks, treating the training stream's aligned blocks as i.i.d. "
        "draws: an assumption sublora's data does not satisfy, recorded in each result's `assumptions`; these "
        "results never compete for the headline (docs/bounds.md section 7).",
    )


class AzumaBoundConfig(BoundConfig):
    description: ClassVar[str] = "Token-level martingale bound, Azuma form (Lotfi et al. 2024b)."
    implementation: ClassVar[str] = "sublora.bounds.estimators.azuma:AzumaBound"

    subsample_delta_fraction: float = _subsample_fraction()
    subsample_bound: SubsampleBound = _subsample_bound("bernstein")


class FreedmanBoundConfig(BoundConfig):
    description: ClassVar[str] = "Token-level empirical Freedman bound over a grid of lambdas (Finzi et al. 2025)."
    implementation: ClassVar[str] = "sublora.bounds.estimators.freedman:FreedmanBound"

    grid_size: int = Field(
        1000, ge=1, description="|K|: number of lambdas, geometrically spaced in [lambda_min, lambda_max]."
    )
    lambda_min: float = Field(1e-4, gt=0.0, lt=1.0, description="Smallest lambda of the grid.")
    lambda_max: float = Field(0.999, gt=0.0, lt=1.0, description="Largest lambda of the grid.")
    subsample_delta_fraction: float = _subsample_fraction()
    subsample_bound: SubsampleBound = _subsample_bound("bernstein")

    @model_validator(mode="after")
    def _grid_order(self) -> "FreedmanBoundConfig":
        if self.lambda_min > self.lambda_max:
            raise ValueError(f"lambda_min ({self.lambda_min}) must not exceed lambda_max ({self.lambda_max})")
        return self


class PacBayesBoundConfig(BoundConfig):
    description: ClassVar[str] = (
        "PAC-Bayes with a point-mass posterior (KL = C ln 2) on document top-k error and rescaled BPD: "
        "variants kl (Langford-Seeger-Maurer, default), mcallester, catoni (beta grid paid by a union bound)."
    )
    implementation: ClassVar[str] = "sublora.bounds.estimators.pacbayes:PacBayesBound"
    variants: ClassVar[tuple[str, ...]] = ("kl", "mcallester", "catoni")
    default_variant: ClassVar[str | None] = "kl"

    subsample_delta_fraction: float = _subsample_fraction()
    subsample_bound: SubsampleBound = _subsample_bound("hoeffding")
    grid_size: int = Field(100, ge=1, description="catoni: |B|, number of betas, geometric in [beta_min, beta_max].")
    beta_min: float = Field(0.01, gt=0.0, description="catoni: smallest beta of the grid.")
    beta_max: float = Field(1000.0, gt=0.0, description="catoni: largest beta of the grid.")

    @model_validator(mode="after")
    def _beta_order(self) -> "PacBayesBoundConfig":
        if self.beta_min > self.beta_max:
            raise ValueError(f"beta_min ({self.beta_min}) must not exceed beta_max ({self.beta_max})")
        return self
