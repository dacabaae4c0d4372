"""Built-in plugin: the `release` commands (registered through `cmfleet_register_commands`)."""
