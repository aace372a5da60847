"""xueliang: open public-safety video networking platform."""

from xueliang import _native

__version__ = "0.1.0"

# Before anything imports the SIP modules: compiled only when built from these very sources.
_native.guard()
