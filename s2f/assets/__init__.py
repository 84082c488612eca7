"""Files that ship inside the package, so demos and checks work from any install.

``SAMPLE_FACE``: a NASA public-domain portrait (astronaut Eileen Collins), the real face the
demo's parity check and the export verification run on.
"""

from pathlib import Path

SAMPLE_FACE = Path(__file__).with_name("sample_face.jpg")
