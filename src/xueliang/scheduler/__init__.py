"""The one scheduler of periodic jobs (rollups, ticket checks, reports, notifications)."""

from xueliang.scheduler.jobs import Job, Scheduler

__all__ = ["Job", "Scheduler"]
