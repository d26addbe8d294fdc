"""Shared click settings."""

CONTEXT = {"help_option_names": ["-h", "--help"]}
