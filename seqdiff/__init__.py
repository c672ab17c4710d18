"""seqdiff: discrete diffusion over sequences."""
__version__ = "0.1.0"
