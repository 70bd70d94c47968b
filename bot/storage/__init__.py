"""Persistence: one `Database` (SQLite file or PostgreSQL) and a repository per concern."""

from bot.storage.database import Backend, Database, DatabaseConfigError
from bot.storage.durations import DurationStore
from bot.storage.guild_settings import GuildConfig, GuildSettingsRepo, NsfwPolicy
from bot.storage.journal import JobJournal, JobState, JournalEntry
from bot.storage.ledger import (
    HistoryPage,
    LedgerEntry,
    LedgerStatus,
    NewJob,
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
    "JobState",
    "JournalEntry",
    "LedgerEntry",
    "LedgerStatus",
    "MemberRoles",
    "ModerationRepo",
    "ModerationRules",
    "NewJob",
    "NsfwPolicy",
    "RoleOverride",
    "RoleOverrideRepo",
    "SchemaTooNewError",
    "StateStore",
    "UsageLedger",
    "UsageSummary",
]
