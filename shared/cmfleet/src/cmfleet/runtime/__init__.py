"""The local Foundry runtime (`cmfleet dev`): protocol, scheduler, replicas, gateway, console."""
