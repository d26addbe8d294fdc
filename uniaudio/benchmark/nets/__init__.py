"""Architectures of pinned evaluation models that no installable package provides here
without torchvision (PANNs CNN14, VGGish). Widths are read from the checkpoint, so the same
code loads the published weights and tiny test checkpoints."""
