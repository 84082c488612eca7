"""Engines: where a graph runs. onnxruntime (``onnxruntime``: sessions, execution providers,
its errors, ``run_graph``) and OpenVINO (``backends``), the choice between them per graph
(``choice``: backend, precision, device) and the probe that decides whether a faster engine
may serve a graph (``probe``: its outputs against the bundle's float64 reference).

Imports: ``s2f.core`` and ``s2f.runtime.bundle`` (the probe reads the bundle's reference)."""
