"""Persistence: one `Database` (SQLite file or PostgreSQL) and a repository per concern."""

from bot.storage.database import Backend, Database, DatabaseConfigError
from bot.storage.durations import DurationStore
from bot.storage.guild_settings import GuildConfig, GuildSettingsRepo, NsfwPolicy
from bot.storage.journal import JobJournal, JobState, JournalEntry
from bot.storage.ledger import (
    HistoryPage,
    JobOutcome,
    JobStatus,
    LedgerEntry,
    UsageLedger,
    UsageSummary,
)
from bot.storage.migrations import LATEST_VERSION, SchemaTooNewError
from bot.storage.moderation import Ban, ModerationRepo, ModerationRules
from bot.storage.roles import MemberRoles, RoleOverride, RoleOverrideRepo
from bot.storage.state import StateStore

__all__ = [
    "LATEST_VERSION",
    "Backend",
    "Ban",
    "Database",
    "DatabaseConfigError",
    "DurationStore",
    "GuildConfig",
    "GuildSettingsRepo",
    "HistoryPage",
    "JobJournal",
    "JobOutcome",
    "JobState",
    "JobStatus",
    "JournalEntry",
    "LedgerEntry",
    "MemberRoles",
    "ModerationRepo",
    "ModerationRules",
    "NsfwPolicy",
    "RoleOverride",
    "RoleOverrideRepo",
    "SchemaTooNewError",
    "StateStore",
    "UsageLedger",
    "UsageSummary",
]
