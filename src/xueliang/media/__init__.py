"""Media: sans-IO RTP/PS, the stream hub (one source, many readers), outputs and sources."""
