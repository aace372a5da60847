"""Cascade (级联), the platform side: the upper platforms xueliang registers to, kept in the
database (`uppers.UpperService`), what each is shown (`share`: the channels, the 215/216 tree,
the IDs in its numbering, control or not; the upper as a principal), the shared catalog read
from the registry (`catalog`), and the running links to them (`links.CascadeLinks`), which
drive the sans-IO `xueliang.gb28181.cascade.UpperLink` over asyncio sockets (UDP or TCP).

Our SIP ID toward an upper is part of the upper's record (``local_sip_id``), defaulting to the
platform's own (``sip.id``); the digest password toward it is always part of the record,
sealed at rest and never returned by the API.
"""
