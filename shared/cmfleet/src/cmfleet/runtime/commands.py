"""Built-in plugin: the `runtime` commands (registered through `cmfleet_register_commands`)."""
