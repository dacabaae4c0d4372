"""Built-in plugins: the features of cmfleet itself, registered through its own hooks."""
