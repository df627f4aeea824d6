"""opendeploy: a self-hosted deployment service that speaks AWS CodeDeploy's API and agent protocol."""

__version__ = "0.1.0"
