"""`python -m pilothouse` runs the command line."""

from pilothouse.cli import main

main()
