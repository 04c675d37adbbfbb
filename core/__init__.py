"""procsight's base layer: config decoding, the OTLP wire encoder, the process event and its attribute names.

Imports only the standard library and third-party packages, never another procsight package, so every
part (scoring, the agent, the receiver, the command) can build on it.
"""

__version__ = "0.1.0"
