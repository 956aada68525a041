"""The `openrlhf` trainer: exports the data and reward file and launches OpenRLHF on a Ray cluster."""
