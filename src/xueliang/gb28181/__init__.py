"""GB/T 28181 signalling: sans-IO SIP core, MANSCDP, PTZ, identifiers, and the services on top."""
