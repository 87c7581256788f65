"""Voice control plane tests: REST and gateway voice, signals, LiveKit, moderation."""
