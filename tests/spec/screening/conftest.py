"""The web fixtures (a trial, its app and a client) for the screening chapter."""

from tests.spec.web.conftest import app, client, trial  # noqa: F401 - re-exported fixtures
