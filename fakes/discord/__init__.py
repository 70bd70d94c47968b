"""A strict fake Discord (REST + gateway) that the real discord.py logs into; `server.FakeDiscord`
is the entry point."""
