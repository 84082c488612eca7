"""The HTTP service: the ASGI app and its routes (``server``), upload limits and decoding
(``uploads``), Prometheus metrics (``metrics``), micro-batching of concurrent requests
(``batching``), the launcher that starts and supervises it (``process``) and the web page
(``web/index.html``).

Imports: anything in ``s2f.runtime``; nothing in ``s2f.runtime`` imports it back."""
