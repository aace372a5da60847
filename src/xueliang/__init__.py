"""xueliang: open public-safety video networking platform."""

__version__ = "0.1.0"
