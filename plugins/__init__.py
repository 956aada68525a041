"""fleming's default plugins: the paper's components, registered exactly like third-party plugins."""
