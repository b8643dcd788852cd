"""Drivers that speak other vendors' streaming TTS protocols over the same session core (docs/compat.md)."""
