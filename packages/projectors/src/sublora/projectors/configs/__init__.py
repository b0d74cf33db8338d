"""Configs of the built-in projectors, one module per family (entry points of ``sublora.projectors``).

Cheap to import: no torch here. Each config names its implementation, which
is imported only when the projector is built. Nothing is imported in this
``__init__`` so that loading one projector's config loads only that module.
"""
