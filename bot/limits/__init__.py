"""Who may generate: pure limit policy, blocked terms, the fair upstream queue, admission.

Import from the submodules (`bot.limits.policy`, `bot.limits.admission`, …); this package module
stays empty so the pure parts can be imported without pulling in storage.
"""
