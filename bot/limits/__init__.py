"""Who may generate: pure limit policy, blocked terms, admission, and what moderators change.

Import from the submodules (`bot.limits.policy`, `bot.limits.admission`, …); this package module
stays empty so the pure parts can be imported without pulling in storage.
"""
