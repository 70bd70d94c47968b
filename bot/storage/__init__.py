"""Persistence: one `Database` (SQLite file or PostgreSQL) and a repository per concern."""

from bot.jobs.model import JobOutcome, JobStage, JobStatus
from bot.storage.database import Backend, Database, DatabaseConfigError
from bot.storage.migrations import LATEST_VERSION, SchemaTooNewError
from bot.storage.repositories.guild_settings import GuildConfig, GuildSettingsRepo, NsfwPolicy
from bot.storage.repositories.journal import JobJournal, JournalEntry
from bot.storage.repositories.ledger import HistoryPage, LedgerEntry, UsageLedger, UsageSummary
from bot.storage.repositories.moderation import Ban, ModerationRepo, ModerationRules
from bot.storage.repositories.roles import MemberRoles, RoleOverride, RoleOverrideRepo
from bot.storage.repositories.state import DurationStore, StateStore

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
    "JobStage",
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
