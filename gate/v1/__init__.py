"""Generated gRPC stubs of the gate.v1 API (see proto/generate.py). Do not edit."""
