"""sublora-lmgc: lossless compression of gradients and weights with a language-model prior (LM-GC).

Modules, one concept each: ``gradients`` (the gradient-file format), ``networks`` and ``collect``
(gradients of small networks on the bundled digits), ``serialize`` (bytes <-> text), ``baselines``
(the classical codecs), ``cli`` (the `sublora lmgc` commands). Importing this package imports
neither torch nor numpy.
"""
