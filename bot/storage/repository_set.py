"""Every repository over one database, each built once: what the composition root injects.

Services take the repositories they use from here instead of building their own, so one process
holds one `UsageLedger`, one `JobJournal`, … and tests build the same set over a test database.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import WallClock, utc_now
from bot.storage.database import Database
from bot.storage.repositories.guild_settings import GuildSettingsRepo
from bot.storage.repositories.journal import JobJournal, ShardOwners
from bot.storage.repositories.kept_results import KeptResults
from bot.storage.repositories.ledger import UsageLedger
from bot.storage.repositories.member_history import MemberHistory
from bot.storage.repositories.moderation import ModerationRepo
from bot.storage.repositories.roles import RoleOverrideRepo
from bot.storage.repositories.state import DurationStore, StateStore


@dataclass(frozen=True)
class Repositories:
    database: Database
    ledger: UsageLedger
    journal: JobJournal
    shard_owners: ShardOwners
    guild_settings: GuildSettingsRepo
    moderation: ModerationRepo
    roles: RoleOverrideRepo
    kept_results: KeptResults
    member_history: MemberHistory
    state: StateStore
    durations: DurationStore

    @classmethod
    def over(cls, database: Database, clock: WallClock = utc_now) -> Repositories:
        ledger = UsageLedger(database, clock)
        return cls(
            database=database,
            ledger=ledger,
            journal=JobJournal(database, ledger, clock),
            shard_owners=ShardOwners(database, clock),
            guild_settings=GuildSettingsRepo(database, clock),
            moderation=ModerationRepo(database, clock),
            roles=RoleOverrideRepo(database, clock),
            kept_results=KeptResults(database, clock),
            member_history=MemberHistory(ledger),
            state=StateStore(database, clock),
            durations=DurationStore(database, clock),
        )
