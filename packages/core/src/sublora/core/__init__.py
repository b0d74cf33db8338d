"""sublora-core: interfaces, registry, configs, data, model and training.

Importing this package is cheap: nothing here pulls in torch, transformers or
peft until a function that needs them is called.
"""

__version__ = "0.1.0"
