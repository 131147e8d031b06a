"""The version of trialwright (one place: the package, the wheel's metadata and every report read it here)."""

__version__ = "0.2.0"
