"""``python -m trialwright``: the ``trialwright`` command, for an environment whose scripts are not on PATH."""

from trialwright.cli.main import main

main()
