"""SFU mode (`ACCORD_MODE=sfu`): the voice node process, its link to main, its sessions."""
