"""The viewer's core: the view state and its owner, the controller over the engine's session, settings and actions."""
