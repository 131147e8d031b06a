"""trialwright: run a randomized controlled trial from its protocol file to its shared data set.

The whole design of a trial lives in one protocol file (see ``trialwright.protocol``); the engine reads
it and holds nothing trial-specific of its own.
"""

__all__ = ["__version__"]

__version__ = "0.2.0"
