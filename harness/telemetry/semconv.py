"""Telemetry names: OpenTelemetry GenAI + MCP semantic conventions (semconv 1.41.1 text) and
the harness's own ``harness.*`` names. Kept here as constants so no string is spelled twice and
``opentelemetry.semconv._incubating`` is never imported."""

from __future__ import annotations

from typing import Final

# -- GenAI ---------------------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
ERROR_TYPE: Final = "error.type"

GEN_AI_OPERATION_CHAT: Final = "chat"
GEN_AI_PROVIDER_ANTHROPIC: Final = "anthropic"

METRIC_GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"

# -- MCP -----------------------------------------------------------------------------------
MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_SESSION_ID: Final = "mcp.session.id"
MCP_PROTOCOL_VERSION: Final = "mcp.protocol.version"
JSONRPC_REQUEST_ID: Final = "jsonrpc.request.id"
NETWORK_TRANSPORT: Final = "network.transport"
RPC_RESPONSE_STATUS_CODE: Final = "rpc.response.status_code"

METRIC_MCP_CLIENT_OPERATION_DURATION: Final = "mcp.client.operation.duration"
METRIC_MCP_SERVER_OPERATION_DURATION: Final = "mcp.server.operation.duration"
METRIC_MCP_CLIENT_SESSION_DURATION: Final = "mcp.client.session.duration"

# -- HTTP server spans (fake API) ----------------------------------------------------------
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_ROUTE: Final = "http.route"
URL_PATH: Final = "url.path"
URL_SCHEME: Final = "url.scheme"

# -- Resource ------------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_RUNTIME: Final = "harness-runtime"
SERVICE_FAKE_ANTHROPIC: Final = "fake-anthropic"
SERVICE_PROXY: Final = "harness-proxy"
SERVICE_FAKE_MCP_PREFIX: Final = "fake-mcp-"

# -- OTLP exporter environment (the SDK's variable names) -----------------------------------
ENV_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_TRACES_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"

# -- Harness-specific ----------------------------------------------------------------------
HARNESS_MCP_RECONNECT: Final = "harness.mcp.reconnect"
HARNESS_COMPACTION: Final = "harness.compaction"
HARNESS_FAULT: Final = "harness.fault"
HARNESS_MCP_IN_FLIGHT: Final = "harness.mcp.in_flight"
HARNESS_MCP_RECONNECTS: Final = "harness.mcp.reconnects"
HARNESS_MCP_SERVER: Final = "harness.mcp.server"
HARNESS_COMPACTIONS: Final = "harness.compactions"
HARNESS_SCENARIO: Final = "harness.scenario"
HARNESS_POLICY: Final = "harness.policy"
HARNESS_SEED: Final = "harness.seed"
# Resource attributes a run stamps on its trace, beside scenario, policy and seed: its mode and
# scheduling strategy, the span time of the run's time 0 and (live) the real length of one
# scenario second, so a bare trace can be judged on the run's clock.
HARNESS_MODE: Final = "harness.mode"
HARNESS_STRATEGY: Final = "harness.strategy"
HARNESS_RUN_ORIGIN: Final = "harness.run.origin_unix_nano"
HARNESS_TIME_SCALE: Final = "harness.time_scale"
# A chat query's scope: stated by the call site (explicit) or inherited; and whether the agent
# runs for scheduled automation (a scheduled task or a subagent of one).
HARNESS_SCOPE_EXPLICIT: Final = "harness.scope.explicit"
HARNESS_AGENT_AUTOMATED: Final = "harness.agent.automated"
# On export with timestamps shifted to now: the span's start on the run's own clock.
HARNESS_VIRTUAL_START: Final = "harness.virtual.start_unix_nano"
HARNESS_CONTEXT_ID: Final = "harness.context_id"
HARNESS_AGENT_PARENT: Final = "harness.agent.parent"
HARNESS_RECONNECT_DECISION: Final = "harness.reconnect.decision"
HARNESS_RECONNECT_REASON: Final = "harness.reconnect.reason"
HARNESS_MCP_GENERATION: Final = "harness.mcp.generation"
HARNESS_COMPACTION_OUTCOME: Final = "harness.compaction.outcome"
HARNESS_FAULT_ACTION: Final = "harness.fault.action"
HARNESS_FAULT_TYPE: Final = "harness.fault.type"
HARNESS_FAULT_TARGET: Final = "harness.fault.target"
HARNESS_FAULT_NAME: Final = "harness.fault.name"
HARNESS_FAULT_STREAM: Final = "harness.fault.stream"
HARNESS_FAULT_TRIGGER: Final = "harness.fault.trigger"
HARNESS_FAULT_DRAW: Final = "harness.fault.draw"
HARNESS_FAULT_CONNECTION: Final = "harness.fault.connection"
HARNESS_FAKE_AGENT: Final = "harness.fake.agent"
HARNESS_FAKE_TURN: Final = "harness.fake.turn"
# An API request retried by the runtime: a span event on the `chat` span, its attributes, and the
# number of retries the request took (span attribute).
HARNESS_LLM_RETRY: Final = "harness.llm.retry"
HARNESS_LLM_RETRY_ATTEMPT: Final = "harness.llm.retry.attempt"
HARNESS_LLM_RETRY_DELAY: Final = "harness.llm.retry.delay"
HARNESS_LLM_RETRY_AFTER: Final = "harness.llm.retry.retry_after"
HARNESS_LLM_RETRIES: Final = "harness.llm.retries"

# Key under which a caller sends its chat context in MCP ``params._meta``.
META_CONTEXT_ID: Final = "harness/context_id"
