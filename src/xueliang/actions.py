"""The actions a principal may be allowed (one vocabulary for the configuration, the access
policy and the API); which roles hold which is the access policy's (access/policy.py)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CHANNEL_ACTIONS", "Action"]


class Action(StrEnum):
    REGISTRY_READ = "registry.read"
    REGISTRY_MANAGE = "registry.manage"
    USERS_MANAGE = "users.manage"
    STATS_READ = "stats.read"
    LIVE_VIEW = "media.live"
    PLAYBACK = "media.playback"
    DOWNLOAD = "media.download"
    PTZ = "device.ptz"
    DEVICE_CONTROL = "device.control"
    DEVICE_QUERY = "device.query"
    SIGNALLING_MANAGE = "signalling.manage"
    AUDIT_READ = "audit.read"
    METRICS_READ = "metrics.read"
    #: Read grants, API tokens and rules (administrators, auditors).
    ACCESS_READ = "access.read"
    #: Share channels (grants), issue and revoke API tokens.
    ACCESS_MANAGE = "access.manage"
    #: Decide approval requests of others (安全使用审核).
    APPROVE = "access.approve"
    #: Read and stop anyone's stream (playback, download, RTP receivers belong to who opened
    #: them): administration rights.
    MEDIA_MANAGE = "media.manage"
    #: Availability, intact and picture rates and state timelines of the points in scope (全时可用).
    HEALTH_READ = "health.read"
    #: Work the fault tickets of one's own maintenance team: acknowledge, repair, resolve.
    TICKETS_WORK = "tickets.work"
    #: Duty operators: open tickets by hand, close, reassign, reopen; see every team's tickets.
    TICKETS_MANAGE = "tickets.manage"
    #: Maintenance teams (运维单位), their contacts, duties and members.
    MAINTENANCE_MANAGE = "maintenance.manage"
    #: The city's daily, weekly and monthly reports (日统计、周通报、月分析).
    REPORTS_READ = "reports.read"



A = Action
#: Actions on a channel (what grants and approvals may give).
CHANNEL_ACTIONS = frozenset({A.LIVE_VIEW, A.PLAYBACK, A.DOWNLOAD, A.PTZ})
