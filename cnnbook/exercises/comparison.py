"""Chapter 11 (comparing the networks): the checked exercises."""
from .core import Count  # noqa: F401 - the kinds chapter authors use here

EXERCISES: dict = {}
