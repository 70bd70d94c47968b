"""The bot process: the Discord bot class, the composition root, its HTTP endpoints."""
