"""The web app: server-rendered pages for the trial team and the REST API, built by ``create_app``."""
