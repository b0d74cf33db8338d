"""Config of the structured A/B projector (no torch import).

Separate subspaces for the LoRA A and B matrices (seed 004). Variants:

- ``uniform`` (default): the plain ``base`` projector over every trainable tensor, nothing else;
- ``fixed``: d_B = floor(d * allocation_ratio) coordinates of w drive the B tensors, the other
  d_A = d - d_B the A tensors (and the misc tensors), each side through its own ``base`` projector;
- ``learned``: one trained gate logit per transformer layer (plus one for the tensors outside the
  blocks) sets the soft share of w that drives that layer's B tensors.

Misc tensors (trainable, neither lora_A nor lora_B; none in sublora's own models, where the head is
LoRA'd too) join the A side, as in the extension: there is no misc slice of w to pay for.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from sublora.core.projector_config import ProjectorConfig

#: the options each variant reads (``base`` and ``base_options`` are read by all)
VARIANT_FIELDS: dict[str, frozenset[str]] = {
    "uniform": frozenset(),
    "fixed": frozenset({"allocation_ratio"}),
    "learned": frozenset({"steepness", "gate_init", "gate_lr_scale"}),
}


class StructuredConfig(ProjectorConfig):
    """Structured A/B subspaces over the LoRA tensors; ``base`` is the projector of each part."""

    description: ClassVar[str] = (
        "Separate subspaces for LoRA A and B: uniform = the plain base projector; fixed = w[:d_A] -> A, "
        "w[d_A:] -> B (d_B = floor(d * allocation_ratio)); learned = one trained gate per layer, "
        "B_l = P_lB(w * m_l), A_l = P_lA(w * (1 - m_l)), a soft mask of width ~4/steepness coordinates."
    )
    implementation: ClassVar[str] = "sublora.projectors.structured:StructuredProjector"
    variants: ClassVar[tuple[str, ...]] = ("uniform", "fixed", "learned")
    default_variant: ClassVar[str | None] = "uniform"

    base: str = Field("rdkron:qr", description="Spec of the projector of each part (any registered projector "
                      "but structured), e.g. 'rdkron:qr', 'dense'.")
    base_options: dict[str, Any] = Field(default_factory=dict, description="Options of the base projector.")
    allocation_ratio: float = Field(0.5, ge=0.0, le=1.0, description="fixed: d_B / (d_A + d_B); 0.2 = A-heavy, "
                                    "0.8 = B-heavy. A side left with no coordinate stays at its init.")
    steepness: float = Field(10.0, gt=0.0, description="learned: C of the mask sigmoid(C (k_l - i - 1/2)); the "
                             "mask's edge is ~4/C coordinates wide, so the gates' gradient comes from the one or "
                             "two coordinates at the edge.")
    gate_init: float = Field(0.0, description="learned: initial gate logit theta_l (gamma_l = sigmoid(theta_l); "
                             "0 gives an even split).")
    gate_lr_scale: float = Field(10.0, ge=0.0, description="learned: learning rate of the gates = train.lr * this "
                                 "(gates are logits, O(1), while w's coordinates are small; 0 freezes them).")

    @model_validator(mode="after")
    def _check_fields(self) -> "StructuredConfig":
        if self.base.partition(":")[0].strip().lower() == "structured":
            raise ValueError("base: a structured projector cannot be its own base; pick e.g. 'rdkron:qr'")
        variant = self.variant or self.default_variant
        ignored = sorted((self.model_fields_set & set().union(*VARIANT_FIELDS.values())) - VARIANT_FIELDS[variant])
        if ignored:
            raise ValueError(f"{', '.join(ignored)} not used by variant {variant!r} "
                             f"(it reads: {', '.join(sorted(VARIANT_FIELDS[variant])) or 'base only'})")
        return self
