"""The bundle format and trust: the manifest schema (``manifest``), opening and verifying a
bundle's files by their sha256 (``reader``, with ``verify_cache`` so a warm start does not hash
gigabytes again), refusing external weights outside it (``onnx_refs``) and checking a
publisher's signature (``signature``).

Imports: ``s2f.core`` only; nothing here runs a graph."""
