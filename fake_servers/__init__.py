"""Fake servers the harness runs against: a Messages API and scripted MCP servers."""
