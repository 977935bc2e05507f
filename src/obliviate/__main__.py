"""``python -m obliviate`` is the same as the ``obliviate`` command."""

from obliviate.cli import main

main()
