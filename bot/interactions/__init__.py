"""The Discord edge: from an interaction to a call into the core, and the job as Discord shows it.

The Discord-free core (`bot.novita`, `bot.jobs`, `bot.limits`, `bot.storage`) never imports
this package; cogs (`cogs/`) are thin adapters over it.
"""
