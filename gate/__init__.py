"""gate: a supply-chain security and policy gate.

Public API modules: :mod:`gate.model` (domain types), :mod:`gate.errors`
(error families), :mod:`gate.config` (configuration), :mod:`gate.store`
(evidence store port and adapters) and :mod:`gate.core` (the service core
shared by the gRPC servicers, the webhook and the CLI).
"""

__version__ = "0.1.0"
