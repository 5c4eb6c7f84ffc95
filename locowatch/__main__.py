"""``python -m locowatch`` is the ``locowatch`` command."""

from locowatch.cli import main

main()
