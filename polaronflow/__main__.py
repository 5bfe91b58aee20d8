"""``python -m polaronflow`` runs the command line."""

from polaronflow.cli import run

run()
