"""Reliability suite: leaks, interrupts, hangs, bad input, security and data integrity."""
