"""The torch-free runtime of speech2face, in rooms with one job each:

* ``preprocess``: files -> model inputs in numpy (shared with training);
* ``bundle``: the exported bundle's format, verification and signatures;
* ``engines``: onnxruntime and OpenVINO, the choice between them and the probe;
* ``pipeline`` (speech->face, face->face), ``directory`` (a folder in batches) and ``cli``
  (``s2f-runtime``): running a bundle;
* ``serve``: the HTTP service and its page;
* ``evaluate``: the SF2F scorecard, bundle scoring, grids.

Everything here runs on numpy (and, for inference, onnxruntime or OpenVINO) alone, so it can
ship in a lean serving environment; it never imports torch (a test enforces it), and training
imports its preprocessing from here, never the other way round.
"""
