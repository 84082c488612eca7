"""Scoring generated faces: the SF2F scorecard and its recall chart (``scorecard``), a bundle
scored on a corpus without torch (``score_bundle``), the corpus reader (``corpus``) and the
PNG grids of faces (``grid``). PyTorch evaluation (``s2f.train``) draws with the same chart.

Imports: ``s2f.core``, ``preprocess``, ``bundle``, ``engines`` and the pipeline."""
