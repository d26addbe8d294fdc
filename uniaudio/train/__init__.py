"""Training: the codec trainer (codec.py) and, later, the UniAudio language models."""
