"""The incident centre (事件中心, issue 16): 受理 · 分流 · 督办 · 反馈.

Cases come in from the duty operator's hotline entry, from a device alarm (one click, or a
rule), from emergency systems (110/119/120/122, signed requests) and, later, from grid members
and residents; the centre dispatches each to the departments that own it with a deadline,
supervises it to closure, and reports back. Modules, one idea each:

    workflow   the steps of a case and of a dispatch, and which state each leads to (sans-IO)
    place      a point's division: the division boundaries, else the nearest camera's (geometry sans-IO)
    signature  the signed requests of emergency systems: header, string to sign, check (sans-IO)
    inbound    the schema of a case pushed by an emergency system
    links      the linked emergency systems: keys sealed at rest, verifying their requests,
               signed webhooks of dispatch and status through the notification outbox
    nearby     cameras near a case, within what the caller may see, nearest first
    stats      intake, closure rate (结案率), on-time rate, time to close, satisfaction
    service    the component: intake, steps, visibility, attachments, deadlines (督办), rules

What a case never holds: who is in a picture. It keeps what a reporter said and where.
"""
