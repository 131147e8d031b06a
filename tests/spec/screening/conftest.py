"""The web fixtures (a trial, its app and a client) and the assent trial (``kids``: ``assent_fixtures``) for the
screening chapter."""

from tests.spec.screening.assent_fixtures import kids  # noqa: F401 - re-exported fixture
from tests.spec.web.conftest import app, client, trial  # noqa: F401 - re-exported fixtures
