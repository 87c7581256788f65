"""Domain events and the in-process bus that carries them to the gateway."""
