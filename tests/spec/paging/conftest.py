"""The web specs' fixtures (a fresh trial, its app and a client), for the specs here that need no more."""

from tests.spec.web.conftest import app, client, trial

__all__ = ["app", "client", "trial"]
