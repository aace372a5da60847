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
    #: Evidence exports (证据导出) of a channel's recordings: MP4s, a signed manifest, a hold.
    EXPORT = "media.export"
    #: See and fetch everyone's evidence exports (not only one's own).
    EXPORTS_MANAGE = "exports.manage"
    #: Place evidence holds (证据锁定) on channels' recordings, and list them.
    EVIDENCE_HOLD = "evidence.hold"
    #: Release an evidence hold: retention may delete those recordings again.
    EVIDENCE_RELEASE = "evidence.release"
    #: Set a channel's recording plan (录像计划): continuous, scheduled, on event or off.
    RECORDING_MANAGE = "recording.manage"
    #: Start a channel's event recording by hand (an operator who sees something happen).
    RECORDING_TRIGGER = "recording.trigger"
    #: The incident centre (事件中心): see cases — the centre every case of its area, a
    #: department the cases dispatched to it; their statistics and the cameras near them.
    INCIDENTS_READ = "incidents.read"
    #: Take cases in (受理): hotline entry, one click from an alarm.
    INCIDENTS_CREATE = "incidents.create"
    #: The centre's steps: dispatch (分流), reassign, send back, merge, supervise (督办), review
    #: and close (结案), the reporter's rating, the rules that open cases from alarms.
    INCIDENTS_MANAGE = "incidents.manage"
    #: A department's steps on the cases dispatched to it: acknowledge, handle, feed back (反馈), return.
    INCIDENTS_HANDLE = "incidents.handle"
    #: Links to the emergency systems (110/119/120/122): their keys and webhooks.
    INCIDENTS_LINKS = "incidents.links"
    #: A linked agency's joint-handling view (联合处置): its own cases and the cameras near them.
    INCIDENTS_JOINT = "incidents.joint"
    #: Report from the phone app (grid members and residents): a case with a photo and a place,
    #: and the status of one's own reports.
    INCIDENTS_REPORT = "incidents.report"
    #: A grid member's own position (for dispatch): sent from the phone app.
    GRID_POSITION = "incidents.position"
    #: Residents' invitation codes (村/小区 邀请码): make, list and revoke them for places in scope.
    RESIDENTS_MANAGE = "residents.manage"



A = Action
#: Actions on a channel (what grants and approvals may give).
CHANNEL_ACTIONS = frozenset({A.LIVE_VIEW, A.PLAYBACK, A.DOWNLOAD, A.PTZ, A.EXPORT})
