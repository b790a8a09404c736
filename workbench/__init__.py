"""The workbench: measure a speech cascade against audio-LLM calls on your own recordings."""

__version__ = "0.1.0"
