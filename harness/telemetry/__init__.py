"""Telemetry: semantic-convention names (``semconv``) and the one place the OTel SDK is wired
(``providers``). Code elsewhere uses only the OpenTelemetry API."""
