"""From files to model inputs, in numpy: audio decoding and loudness (``audio``), the voice
encoders' features (``features``), the settings that tie them together (``voice_input``), face
images (``images``) and the face encoder's and decoder's input conventions (``faces``).

Training imports these too, so the inputs a model learns from and the inputs it is served are
one computation. Imports: ``s2f.core`` only."""
