"""Built-in plugins of the image: the SDK's own functions and the innermost call, through the same hooks."""
