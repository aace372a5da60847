"""A virtual GB/T 28181 device (虚拟设备): an IPC with one channel or an NVR with M channels.

Plain logic driven by a shared :class:`~xueliang.gb28181.endpoint.SipEndpoint`: thousands of
devices share one endpoint (one UDP port), and the simulator routes each incoming request to
its device by the Request-URI user (device or channel ID) or, inside a dialog, by Call-ID.

What a device does (and what a platform must expect from it):

* **REGISTER** to ``sip:<serverId>@<host:port>``; From = To = ``sip:<deviceId>@<domain>``,
  Contact ``sip:<deviceId>@<ip:port>``, Expires (3600), ``X-GB-Ver`` (2.0 or 3.0). A 401 is
  answered with MD5 digest (qop=auth when offered); re-registers at 80 % of the granted
  expiry with the same Call-ID; unregisters (Expires 0) on stop; after a failure it retries
  every ``retry_interval`` seconds. The ``Date`` of the 200 sets the device clock.
* **Keepalive** MESSAGE every ``keepalive_interval`` seconds (``Application/MANSCDP+xml``,
  Notify/Keepalive/Status OK). Three unanswered keepalives, or a non-2xx answer, make it
  register again.
* **MESSAGE Query / Control** from the platform: a bare 200 at once, then the Response as its
  own MESSAGE to the server: Catalog (split over several MESSAGEs, same SN, SumNum, DeviceList
  Num), DeviceInfo, DeviceStatus, RecordInfo (split like Catalog), PresetQuery;
  DeviceControl (PTZCmd, RecordCmd, GuardCmd, AlarmCmd, IFameCmd/IFrameCmd, DragZoom,
  HomePosition) and DeviceConfig answered with Response Result OK. TeleBoot restarts the
  device: no Response, a new registration with a new Call-ID.
* **SUBSCRIBE** (Catalog, Alarm, MobilePosition): 200 with Result OK; then NOTIFY in the
  subscription dialog on changes (``set_channel_status``, ``add_channel``, ``remove_channel``,
  alarms and positions when subscribed). Unsubscribed alarms and positions go as MESSAGE.
* **INVITE** (Play / Playback / Download) for a channel: 200 with SDP (a=sendonly, the
  offer's ``y=``, ``f=``); after the ACK, PS over RTP to the offered address over UDP, or TCP
  (RFC 4571): the device connects when the offer says ``a=setup:passive``, listens on its
  answered port when it says ``active``. BYE stops it. INFO (MANSRTSP) pauses, resumes, seeks
  and changes speed; at the end of a Playback/Download range, a MESSAGE Notify MediaStatus
  121 inside the dialog, then it waits for the BYE.

Faults (per device, :class:`Faults`): wrong password, dropped keepalives, slow answers,
no answers (200 but no Response), ignored requests (no 200 either), INVITE rejection, and
:meth:`VirtualDevice.restart` (new Call-ID) / :meth:`VirtualDevice.power_off`.

One concern a module:

* :mod:`.virtual`: :class:`VirtualDevice`, the concerns together, its life and the routing of
  each request by method;
* :mod:`.signalling`: REGISTER, keepalives, queries and controls answered, subscriptions and
  their NOTIFYs, alarms and positions;
* :mod:`.media`: INVITE, ACK, BYE and the media sessions they drive;
* :mod:`.playback`: the device's recordings as asked for: RecordInfo, playback and download
  control (INFO), the end of a range;
* :mod:`.core`: what they stand on: :class:`DeviceContext`, the device's state, its
  channels and tasks, sending to the server, ending calls; :class:`Faults`;
* :mod:`.channel`: :class:`ChannelSpec`, :class:`VirtualChannel` and its PTZ head.

This package re-exports the names other code uses.
"""

from __future__ import annotations

from xueliang.sim.device.channel import ChannelSpec, PtzRecord, PtzState, VirtualChannel
from xueliang.sim.device.core import MANSCDP_CONTENT_TYPE, DeviceContext, Faults, Subscription
from xueliang.sim.device.virtual import VirtualDevice

__all__ = [
    "MANSCDP_CONTENT_TYPE",
    "ChannelSpec",
    "DeviceContext",
    "Faults",
    "PtzRecord",
    "PtzState",
    "Subscription",
    "VirtualChannel",
    "VirtualDevice",
]
