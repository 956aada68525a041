"""`python -m fleming` runs the CLI."""
from fleming.cli import main

main()
