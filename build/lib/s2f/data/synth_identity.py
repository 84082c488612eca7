"""The hidden traits of a synthetic person, and how voice and face both follow from them.

Four latent traits per identity, standard normal, drawn from (seed, identity index) so an
identity is the same whatever the corpus size:

* ``register``: low register -> lower pitch, longer vocal tract, wider jaw, shorter hair;
* ``size``: larger -> lower formants, wider face, wider-set eyes;
* ``tone``: darker skin <-> breathier voice with a steeper spectral tilt;
* ``tempo``: syllable rate <-> hair colour.

Voice -> face is therefore learnable (what a voice encoder must find), but not trivially:
per-clip pitch, vowels, timing and noise and per-image pose, light and background vary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

LATENTS = ("register", "size", "tone", "tempo")


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@dataclass(frozen=True)
class Identity:
    name: str
    register: float
    size: float
    tone: float
    tempo: float

    @classmethod
    def draw(cls, seed: int, index: int) -> Identity:
        z = np.clip(np.random.default_rng([seed, index, 0]).standard_normal(len(LATENTS)), -2.5, 2.5)
        return cls(f"id{index:05d}", *map(float, z))

    # voice
    @property
    def pitch_hz(self) -> float:
        return 165.0 * float(np.exp(0.30 * self.register - 0.06 * self.size))

    @property
    def formant_scale(self) -> float:
        """Shorter vocal tract -> all formants higher."""
        return float(np.exp(0.07 * self.register - 0.08 * self.size))

    @property
    def breathiness(self) -> float:
        return 0.03 * float(np.exp(0.6 * self.tone))

    @property
    def tilt(self) -> float:
        """Spectral slope of the glottal source, in powers of frequency."""
        return -1.2 - 0.35 * self.tone

    @property
    def syllable_rate(self) -> float:
        return 4.0 * float(np.exp(0.18 * self.tempo))

    # face (fractions of the image size, colours in 0..255)
    @property
    def face_width(self) -> float:
        return 0.27 + 0.025 * self.size - 0.008 * self.register

    @property
    def jaw(self) -> float:
        return float(np.clip(0.80 - 0.07 * self.register + 0.02 * self.size, 0.55, 0.97))

    @property
    def eye_spacing(self) -> float:
        return 0.40 + 0.04 * self.size

    @property
    def skin_rgb(self) -> np.ndarray:
        light, dark = np.array([236, 200, 178]), np.array([96, 62, 44])
        return light + (dark - light) * _sigmoid(1.3 * self.tone)

    @property
    def hair_rgb(self) -> np.ndarray:
        blond, black = np.array([214, 176, 96]), np.array([30, 22, 18])
        return blond + (black - blond) * _sigmoid(1.3 * self.tempo)

    @property
    def hair_length(self) -> float:
        return float(np.clip(0.25 + 0.22 * self.register, 0.0, 0.8))

    def attributes(self) -> dict[str, float]:
        """Everything a model could be asked to recover, for identities.csv."""
        skin, hair = self.skin_rgb, self.hair_rgb
        return {**{k: round(v, 6) for k, v in asdict(self).items() if k != "name"},
                "pitch_hz": round(self.pitch_hz, 3), "formant_scale": round(self.formant_scale, 5),
                "face_width": round(self.face_width, 5), "jaw": round(self.jaw, 5),
                "eye_spacing": round(self.eye_spacing, 5), "hair_length": round(self.hair_length, 5),
                "skin_r": round(float(skin[0]), 2), "skin_g": round(float(skin[1]), 2),
                "skin_b": round(float(skin[2]), 2), "hair_r": round(float(hair[0]), 2),
                "hair_g": round(float(hair[1]), 2), "hair_b": round(float(hair[2]), 2),
                "register_group": "low" if self.register < 0 else "high"}
