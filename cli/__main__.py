"""``python -m sterna.cli``: the same as the ``sterna`` command."""

from sterna.cli.main import main

main()
