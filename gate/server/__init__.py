"""gate's network transports: the gRPC API, the admission webhook and metrics.

Public entry points: :func:`serve` (blocking, for ``gate serve``) and
:class:`GateServer` (embeddable, with a ready callback and a stop request).
"""

from gate.server._run import BoundAddresses, GateServer, serve

__all__ = ["BoundAddresses", "GateServer", "serve"]
