"""What seawall costs per request against the bare clients, measured in the same run."""
