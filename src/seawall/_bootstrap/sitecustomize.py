"""Run by `seawall run` at interpreter start-up (its directory leads PYTHONPATH): seawall is
applied before the program's first line, then the next `sitecustomize` on the path runs as it
would have without us (OpenTelemetry's, under `seawall run opentelemetry-instrument ...`)."""

from seawall._startup import chain_next_sitecustomize, start

start()
chain_next_sitecustomize(__file__)
