"""Knowledge-graph question synthesis (`kg`) and the `kg-path` teacher that explains an item from its own graph path."""
