"""``trialkit init`` and ``trialkit start``: create a trial database, and the main job."""

from __future__ import annotations
