"""One session's outbound frames: sequence numbers, the bounded send queue and the replay
buffer for RESUME (GATEWAY.md 5.3, 10.2; D12, D12b). Pure: no trio, time comes in as `now`.

Sequenced dispatches live in one deque of `(seq, prefix, t)` entries; `prefix` is the event
encoded once for every recipient (`protocol.dispatch_prefix`) and the frame is stamped with the
seq only when written. Entries above `sent_seq` are waiting to be written (bounded by count and
characters: overflow means the client is too slow, D12b), the rest are the replay buffer
(bounded by count and age). Frames without seq (HELLO, op 4, op 7, session-targeted
dispatches) wait in a small separate queue and are written first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from accord.gateway.protocol import HEARTBEAT_ACK, stamp

READY_SEQ = 1


class Outbox:
    __slots__ = (
        "_direct",
        "_entries",
        "_pending_chars",
        "attached",
        "max_direct",
        "max_pending",
        "max_pending_chars",
        "on_ready",
        "replay_age_s",
        "replay_frames",
        "sent_seq",
        "seq",
    )

    def __init__(
        self,
        *,
        max_pending: int,
        max_pending_chars: int,
        replay_frames: int,
        replay_age_s: float,
        max_direct: int = 256,
    ) -> None:
        self.seq = READY_SEQ  # READY carries seq 1; the first event gets 2
        self.sent_seq = READY_SEQ
        self._entries: deque[tuple[int, str, float]] = deque()
        self._direct: deque[str] = deque()
        self._pending_chars = 0
        self.max_pending = max_pending
        self.max_pending_chars = max_pending_chars
        self.max_direct = max_direct
        self.replay_frames = replay_frames
        self.replay_age_s = replay_age_s
        # False while no socket writes this session (parked): nothing is pending, every new
        # entry goes straight to the replay buffer.
        self.attached = True
        self.on_ready: Callable[[], None] | None = None

    # -- producers ----------------------------------------------------------------------------

    def push_event(self, prefix: str, now: float) -> bool:
        """Give the next seq to an encoded event. False when the send queue overflowed."""
        self.seq += 1
        self._entries.append((self.seq, prefix, now))
        if not self.attached:
            self.sent_seq = self.seq
            self._trim(now)
            return True
        self._pending_chars += len(prefix)
        if (
            self.seq - self.sent_seq > self.max_pending
            or self._pending_chars > self.max_pending_chars
        ):
            return False
        if self.on_ready is not None:
            self.on_ready()
        return True

    def push_direct(self, frame: str) -> bool:
        """Queue a frame without seq. False when that queue overflowed."""
        if frame == HEARTBEAT_ACK and HEARTBEAT_ACK in self._direct:
            return True  # one pending ack answers any number of beats
        if len(self._direct) >= self.max_direct:
            return False
        self._direct.append(frame)
        if self.on_ready is not None:
            self.on_ready()
        return True

    # -- the writer ---------------------------------------------------------------------------

    def pop(self, now: float) -> str | None:
        """The next frame to write (frames without seq first), or None."""
        if self._direct:
            return self._direct.popleft()
        if self.sent_seq >= self.seq:
            return None
        index = self.sent_seq - self.seq  # negative index of the first pending entry
        seq, prefix, _ = self._entries[index]
        self.sent_seq = seq
        self._pending_chars -= len(prefix)
        if len(self._entries) > self.replay_frames + 64:
            self._trim(now)
        return stamp(prefix, seq)

    @property
    def pending(self) -> int:
        return self.seq - self.sent_seq + len(self._direct)

    # -- parking and resuming -------------------------------------------------------------------

    def detach(self, now: float) -> None:
        """No socket any more (parked): drop unsent frames without seq, keep the rest for
        replay; what the client actually received is decided by the seq it resumes with."""
        self.attached = False
        self._direct.clear()
        self.sent_seq = self.seq
        self._pending_chars = 0
        self._trim(now)

    def replay_after(self, client_seq: int, now: float) -> list[str] | None:
        """Frames after `client_seq`, or None if the buffer no longer covers them all."""
        self._trim(now)
        client_seq = max(client_seq, READY_SEQ)
        if client_seq > self.seq:
            return None
        if client_seq == self.seq:
            return []
        if not self._entries or self._entries[0][0] > client_seq + 1:
            return None
        return [stamp(prefix, seq) for seq, prefix, _ in self._entries if seq > client_seq]

    def attach(self) -> None:
        """A socket writes this session again, from the current seq on."""
        self.attached = True
        self.sent_seq = self.seq
        self._pending_chars = 0
        self._direct.clear()

    def trim(self, now: float) -> None:
        self._trim(now)

    def _trim(self, now: float) -> None:
        entries = self._entries
        oldest_kept = now - self.replay_age_s
        while (
            entries
            and entries[0][0] <= self.sent_seq
            and (
                len(entries) - (self.seq - self.sent_seq) > self.replay_frames
                or entries[0][2] < oldest_kept
            )
        ):
            entries.popleft()

    @property
    def buffered(self) -> int:
        return len(self._entries)
