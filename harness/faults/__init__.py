"""Fault injection: one fault vocabulary for every place a fault can act.

- ``plan`` — ``FaultPlan``: frame faults (delay, drop, duplicate, corrupt, late response,
  unknown id, garbage), process faults (kill, freeze), toxics and LLM-API faults; YAML/JSON files
  or a scenario's ``faults:`` list.
- ``toxics`` / ``link`` / ``toxic_set`` — Toxiproxy's toxics as pure byte-stream transformers.
- ``proxy`` — the TCP proxy with a Toxiproxy-compatible HTTP API (``harness proxy serve``);
  ``client`` — ``ToxiproxyClient`` over ``toxiproxy-python`` (``TOXIPROXY_URL``).
- ``interposer`` — the stdio relay in front of any MCP server command (``harness interpose``),
  with its control API in ``interposer_api``.
- ``inprocess`` — the same frame faults and toxics on an in-process MCP client transport
  (sim mode, virtual time); ``frame_engine`` — the decisions shared by both.
- ``llm`` — plan entries injected into the fake Anthropic API.
- ``records`` — ``FaultRecorder``: every fault as a ``harness.fault`` span and a JSON line.
"""
