"""Voice: voice states, SFU node selection and registry, LiveKit."""
