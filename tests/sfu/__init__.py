"""SFU control-plane tests: node registry, reaper, allocation, the SFU-mode process."""
