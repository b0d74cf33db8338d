"""Finetuning a sequence classifier on a GPT-2 in a LoRA subspace (docs/finetune.md).

``tasks`` builds labelled examples, ``model`` the classifier (head inside the subspace), ``train``
fits w; ``sublora.bounds.classification`` compresses it and bounds its error over i.i.d. examples.
"""

from sublora.core.finetune.config import FinetuneConfig
from sublora.core.finetune.tasks import TaskData, TaskOptions, load_task

__all__ = ["FinetuneConfig", "TaskData", "TaskOptions", "load_task"]
