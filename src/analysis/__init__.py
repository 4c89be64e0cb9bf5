"""Helpers of the Kazakhstan civil-society compendium."""

__version__ = "0.1.0"
