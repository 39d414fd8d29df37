"""Chain access: JSON-RPC transport, ABI coding, batched reads, fees, nonces, sending."""
