"""Safety specs share the forms specs' trial and enrolled participant."""

from tests.spec.forms.conftest import pid, trial

__all__ = ["pid", "trial"]
