"""Cascade (级联), the platform side: the upper platforms xueliang registers to, kept in the
database (`uppers.UpperService`), and the running links to them (`links.CascadeLinks`), which
drive the sans-IO `xueliang.gb28181.cascade.UpperLink` over asyncio sockets.

Our SIP ID toward an upper is part of the upper's record (``local_sip_id``), defaulting to the
platform's own (``sip.id``); the digest password toward it is always part of the record,
sealed at rest and never returned by the API.
"""
