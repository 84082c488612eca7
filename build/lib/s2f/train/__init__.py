"""Training: the Speech2Face losses, trainers for the face decoder and the voice encoders,
checkpoints that resume bit for bit, and retrieval evaluation."""
