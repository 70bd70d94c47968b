"""The project's own fakes of the outside world, shared by tests, the demo and benchmarks.

Installed with the project (so `python -m bot demo` and `generate --mock` work from a fresh
clone) but never imported by the product package `bot/`: the CLI finds its offline tools here by
name (`bot.terminal.cli.offline_tool`), as discord.py finds cogs.
"""
