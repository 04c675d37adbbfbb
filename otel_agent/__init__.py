"""procsight host agent: captures process executions and TCP activity, sends them as OTLP logs."""
