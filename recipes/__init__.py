"""Example recipes shipped with the package (quickstart and the paper settings)."""
