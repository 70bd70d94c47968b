"""The Discord edge: everything that talks to Discord or words what a member sees.

The Discord-free core (`bot.novita`, `bot.jobs`, `bot.limits`, `bot.storage`) never imports
this package; cogs (`cogs/`) are thin adapters over it.
"""
