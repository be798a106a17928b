"""Long-connection mode: supervisor, reader, heartbeat, correlator, transport."""
