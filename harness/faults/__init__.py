"""Fault injection: Toxiproxy's toxics, the TCP proxy with a Toxiproxy-compatible API, and the
records every injected fault leaves behind."""
