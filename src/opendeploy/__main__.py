"""Allow ``python -m opendeploy``."""

from opendeploy.cli import main

main()
