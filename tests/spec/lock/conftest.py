"""A trial with one enrolled participant, on both databases (the forms chapter's fixtures)."""

from tests.spec.forms.conftest import pid, trial  # noqa: F401 - re-exported fixtures
