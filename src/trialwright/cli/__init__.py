"""The ``trialwright`` command: a thin Typer layer over the services, one group per capability."""
