"""Built-in plugin: the `scaffold` commands (registered through `cmfleet_register_commands`)."""
