"""Log specs share the forms specs' trial (the first protocol, with its conmeds and medical_history logs) and
enrolled participant, on both databases."""

from tests.spec.forms.conftest import pid, trial

__all__ = ["pid", "trial"]
