# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The SFU media hot loop (MEDIA.md section 4): one UDP socket, one OS thread, GIL released.

Owns the C side of forwarding: recvmmsg a batch, classify each datagram by its first bytes,
answer STUN Binding requests, find the sender by SSRC, unprotect with the sender's libsrtp
session, latch its address, then protect a copy per receiver in its room and sendmmsg the
batch. libsrtp is called through function pointers into pylibsrtp's bundled library
(`accord.media.srtp.c_handles`); the Python `Session` objects stay referenced here for as long
as C holds their `srtp_t`. Per packet the loop creates no Python objects and raises nothing:
every outcome is a counter. Control methods run on the caller's thread and take the same mutex
the loop holds for each batch, so they apply between batches and libsrtp sessions are never
used by two threads at once. `_forward_ref.py` is the oracle with the same behaviour and
counters; import either through `accord.media.forward` only.
"""

import socket
import threading

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset
from libc.errno cimport errno, EINTR
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from posix.unistd cimport close, pipe, read, write

from pylibsrtp import Error as _SrtpError

from accord.media import srtp as _srtp
from accord.media._forward_ref import MAX_DATAGRAM_BYTES as _REF_MAX_DATAGRAM
from accord.media._forward_ref import open_media_socket
from accord.media.counters import FORWARDER_COUNTERS, PARTICIPANT_COUNTERS
from accord.media import stun_limit as _stun_limit


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr_storage:
        unsigned short ss_family
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int recvmmsg(int fd, mmsghdr *vec, unsigned int vlen, int flags, timespec *timeout)
    int sendmmsg(int fd, mmsghdr *vec, unsigned int vlen, int flags)
    long sendmsg(int fd, const msghdr *msg, int flags)
    enum:
        MSG_DONTWAIT
        MSG_TRUNC
        AF_INET
        AF_INET6

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *fds, unsigned long nfds, int timeout)
    enum:
        POLLIN

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *mutex, void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *mutex)
    int pthread_mutex_lock(pthread_mutex_t *mutex)
    int pthread_mutex_unlock(pthread_mutex_t *mutex)

cdef extern from "<sched.h>" nogil:
    int sched_yield()

cdef extern from *:
    """
    static inline int accord_load(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void accord_store(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline void accord_add(int *p, int v) { __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL); }
    """
    int accord_load(int *p) noexcept nogil
    void accord_store(int *p, int v) noexcept nogil
    void accord_add(int *p, int v) noexcept nogil

cdef extern from *:
    """
    #include <netinet/in.h>
    #include <stdint.h>
    #include <string.h>
    #include <sys/socket.h>
    #ifndef SOL_UDP
    #define SOL_UDP 17
    #endif
    #ifndef UDP_SEGMENT
    #define UDP_SEGMENT 103
    #endif
    #define ACCORD_GSO_CMSG_SPACE CMSG_SPACE(sizeof(uint16_t))
    /* Fill one control buffer with a UDP_SEGMENT cmsg (Linux UDP GSO); return its size. */
    static inline size_t accord_gso_cmsg(void *buf, int segment) {
        struct cmsghdr *c = (struct cmsghdr *)buf;
        uint16_t size = (uint16_t)segment;
        memset(buf, 0, CMSG_SPACE(sizeof size));
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof size);
        memcpy(CMSG_DATA(c), &size, sizeof size);
        return CMSG_SPACE(sizeof size);
    }
    /* Whether this kernel knows UDP GSO on the socket (getsockopt answers UDP_SEGMENT). */
    static inline int accord_gso_supported(int fd) {
        int value = 0;
        socklen_t length = sizeof value;
        return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &length) == 0;
    }
    """
    enum:
        ACCORD_GSO_CMSG_SPACE
    size_t accord_gso_cmsg(void *buf, int segment) noexcept nogil
    int accord_gso_supported(int fd) noexcept nogil

cdef extern from "<errno.h>" nogil:
    enum:
        EIO
        EINVAL
        EOPNOTSUPP
        ENOPROTOOPT

ctypedef int (*srtp_fn)(void *ctx, void *packet, int *length) noexcept nogil

cdef enum:
    IN_BATCH = 64            # datagrams per recvmmsg
    OUT_SLOTS = 1024         # datagrams per send flush (a full batch to 50 receivers: 4 flushes)
    SLOT_BYTES = 2048        # one datagram buffer: 1500 + the 148-byte SRTCP trailer fits
    POLL_TIMEOUT_MS = 50     # MEDIA.md 4: notice commands and stop requests every 50 ms
    STUN_REQUEST = 0x0001
    STUN_SUCCESS = 0x0101
    RTCP_SR = 200
    RTCP_RR = 201
    ERR_REPLAY_FAIL = 9      # libsrtp 2.x srtp_err_status_replay_fail
    ERR_REPLAY_OLD = 10      # srtp_err_status_replay_old
    GSO_MAX_SEGMENTS = 64    # datagrams per UDP GSO message (the kernel's UDP_MAX_SEGMENTS)
    GSO_MAX_SEGMENT = 1200   # larger datagrams go alone: below any path MTU GSO could hit
    GSO_MAX_BYTES = 60000    # one GSO message stays below the 64 KiB IP datagram limit

# Forwarder counters, in the order of counters.FORWARDER_COUNTERS.
cdef enum:
    C_PACKETS_IN, C_BYTES_IN, C_PACKETS_OUT, C_BYTES_OUT, C_RTP_IN, C_RTCP_IN, C_RTP_OUT
    C_RTCP_OUT, C_RTCP_CONSUMED, C_STUN_ANSWERED, C_LATCH_MOVES, C_DROP_MALFORMED
    C_DROP_UNSUPPORTED, C_DROP_UNKNOWN_SSRC, C_DROP_AUTH_FAILED, C_DROP_REPLAY, C_DROP_MUTED
    C_DROP_UNLATCHED, C_DROP_DEAFENED, C_DROP_PROTECT_FAILED, C_DROP_SEND_FAILED
    C_DROP_RATE_LIMITED, N_COUNTERS

# Participant counters, in the order of counters.PARTICIPANT_COUNTERS.
cdef enum:
    P_PACKETS_IN, P_BYTES_IN, P_PACKETS_OUT, P_BYTES_OUT, P_RTCP_IN, P_RTCP_OUT
    P_DROP_AUTH_FAILED, P_DROP_REPLAY, P_DROP_MUTED, P_LATCH_MOVES, N_PCOUNTERS

cdef enum:
    MAX_DATAGRAM = 1500
    STUN_SLOTS = 1024                       # stun_limit.STUN_TABLE_SLOTS
    OUT_STUN = 0
    OUT_RTP = 1
    OUT_RTCP = 2

# stun_limit.py: 50 answers/s per source IP after a burst of 100 (GCRA, nanoseconds).
cdef uint64_t STUN_INTERVAL_NS = 20000000
cdef uint64_t STUN_TOLERANCE_NS = 99 * STUN_INTERVAL_NS

cdef struct StunBucket:
    uint8_t key[16]          # source IP as IPv6 (IPv4 as IPv4-mapped)
    uint64_t tat             # theoretical arrival time of the next conforming request

if len(FORWARDER_COUNTERS) != N_COUNTERS or len(PARTICIPANT_COUNTERS) != N_PCOUNTERS:
    raise ImportError("accord.media.counters and _forward.pyx disagree on the counters")
if (_stun_limit.STUN_TABLE_SLOTS != STUN_SLOTS or _stun_limit.INTERVAL_NS != STUN_INTERVAL_NS
        or _stun_limit.TOLERANCE_NS != STUN_TOLERANCE_NS):
    raise ImportError("_forward.pyx and stun_limit.py disagree on the STUN rate limit")
if _REF_MAX_DATAGRAM != MAX_DATAGRAM:
    raise ImportError("_forward.pyx and _forward_ref.py disagree on the datagram limit")

cdef struct Participant:
    int active
    int muted
    int deafened
    int latched
    uint32_t ssrc
    void *rx                 # srtp_t unprotecting what this participant sends
    void *tx                 # srtp_t protecting what is sent to it
    int room_start           # its room's member slots: members[room_start : room_start + room_count]
    int room_count
    socklen_t addrlen
    sockaddr_storage addr
    uint64_t counters[N_PCOUNTERS]

cdef srtp_fn _protect
cdef srtp_fn _unprotect
cdef srtp_fn _protect_rtcp
cdef srtp_fn _unprotect_rtcp


def _load_srtp_functions():
    global _protect, _unprotect, _protect_rtcp, _unprotect_rtcp
    handles = _srtp.c_handles()
    _protect = <srtp_fn><size_t>handles.protect
    _unprotect = <srtp_fn><size_t>handles.unprotect
    _protect_rtcp = <srtp_fn><size_t>handles.protect_rtcp
    _unprotect_rtcp = <srtp_fn><size_t>handles.unprotect_rtcp


_load_srtp_functions()


cdef inline uint64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


cdef inline uint32_t _be32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint16_t _be16(const uint8_t *p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[0] << 8) | p[1])


cdef inline int _rtp_header_length(const uint8_t *p, int n) noexcept nogil:
    """RFC 3550 5.1/5.3.1: header length with CSRCs and extension, or -1 if it overruns."""
    cdef int offset
    if n < 12:
        return -1
    offset = 12 + 4 * (p[0] & 0x0F)
    if offset > n:
        return -1
    if p[0] & 0x10:
        if offset + 4 > n:
            return -1
        offset += 4 + 4 * <int>_be16(p + offset + 2)
        if offset > n:
            return -1
    return offset


cdef inline bint _stun_is_valid(const uint8_t *p, int n) noexcept nogil:
    """RFC 5389 section 6 and 15, as stun.parse_stun_message checks it."""
    cdef int length, offset, end, attr_length
    if n < 20 or (p[0] & 0xC0):
        return False
    if _be32(p + 4) != 0x2112A442:
        return False
    length = _be16(p + 2)
    if length % 4 or 20 + length != n:
        return False
    offset = 20
    while offset < n:
        if offset + 4 > n:
            return False
        attr_length = _be16(p + offset + 2)
        end = offset + 4 + attr_length
        if end > n:
            return False
        offset = end + ((4 - attr_length % 4) % 4)
        if offset > n:
            return False
    return True


cdef inline int _stun_answer(const uint8_t *req, const sockaddr_storage *src, uint8_t *out) noexcept nogil:
    """Write a Binding success with XOR-MAPPED-ADDRESS; return its length or -1."""
    cdef const uint8_t *raw = <const uint8_t *>src
    cdef const uint8_t *address
    cdef int family, address_bytes, i
    cdef uint8_t mask[16]
    if src.ss_family == AF_INET:
        address = raw + 4
        address_bytes = 4
    elif src.ss_family == AF_INET6:
        address = raw + 8
        address_bytes = 16
        # An IPv4-mapped source (::ffff:a.b.c.d) is reported as IPv4, like stun.py does.
        if memcmp(address, b"\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0:
            address += 12
            address_bytes = 4
    else:
        return -1
    family = 1 if address_bytes == 4 else 2
    memcpy(mask, req + 4, 16)  # magic cookie ‖ transaction id
    out[0] = 0x01
    out[1] = 0x01
    out[2] = 0
    out[3] = <uint8_t>(4 + 4 + address_bytes)
    memcpy(out + 4, req + 4, 16)
    out[20] = 0x00
    out[21] = 0x20   # XOR-MAPPED-ADDRESS
    out[22] = 0
    out[23] = <uint8_t>(4 + address_bytes)
    out[24] = 0
    out[25] = <uint8_t>family
    out[26] = raw[2] ^ 0x21   # port XOR the top 16 bits of the cookie
    out[27] = raw[3] ^ 0x12
    for i in range(address_bytes):
        out[28 + i] = address[i] ^ mask[i]
    return 28 + address_bytes


cdef inline bint _rtcp_compound_ok(const uint8_t *p, int n) noexcept nogil:
    """RFC 3550 A.2, as rtcp.parse_rtcp_compound checks it."""
    cdef int offset = 0, length, pad
    if n < 8:
        return False
    while offset < n:
        if offset + 8 > n or (p[offset] >> 6) != 2:
            return False
        length = 4 * (<int>_be16(p + offset + 2) + 1)
        if offset + length > n:
            return False
        if p[offset] & 0x20:
            if offset + length != n:
                return False
            pad = p[n - 1]
            if pad == 0 or pad > length - 8:
                return False
        offset += length
    return p[1] == RTCP_SR or p[1] == RTCP_RR


cdef inline uint32_t _stun_slot_of(const uint8_t *key) noexcept nogil:
    """stun_limit.slot_of: FNV-1a (32-bit) of the 16-byte source key, masked to the table."""
    cdef uint32_t h = 0x811C9DC5
    cdef int i
    for i in range(16):
        h = (h ^ key[i]) * 0x01000193U
    return h & (STUN_SLOTS - 1)


def _stun_slot(bytes key):
    """The C table slot of a 16-byte key (tests compare it with stun_limit.slot_of)."""
    if len(key) != 16:
        raise ValueError("a source key is 16 bytes")
    return _stun_slot_of(<const uint8_t *><char *>key)


cdef class Forwarder:
    """Forward SRTP between the participants of each room on one UDP socket (Cython)."""

    cdef object _sock
    cdef object _thread
    cdef dict _slots            # participant_id -> slot in _parts
    cdef dict _sessions         # participant_id -> (rx Session, tx Session): keeps srtp_t alive
    cdef dict _rooms            # room_id -> [slot, ...] in join order
    cdef dict _room_of          # participant_id -> room_id
    cdef dict _id_of_slot       # slot -> participant_id
    cdef list _free
    cdef int _fd
    cdef int _wake[2]
    cdef int _stopping
    cdef int _waiters
    cdef int _closed
    cdef pthread_mutex_t _mutex
    cdef Participant *_parts
    cdef int _capacity
    cdef int *_members
    cdef uint32_t *_ht_keys     # SSRC -> slot, open addressing, rebuilt on membership changes
    cdef int *_ht_slots
    cdef uint32_t _ht_mask
    cdef uint64_t _counters[N_COUNTERS]
    cdef uint64_t _busy_ns
    cdef uint64_t _started_ns
    cdef uint8_t *_in_bufs
    cdef sockaddr_storage *_in_addrs
    cdef iovec *_in_iov
    cdef mmsghdr *_in_msgs
    cdef uint8_t *_out_bufs
    cdef iovec *_out_iov
    cdef mmsghdr *_out_msgs
    cdef int *_out_slot         # receiver slot of each queued datagram (-1: STUN answer)
    cdef uint8_t *_out_kind
    cdef int _nout
    # UDP GSO (Linux): the queued datagrams for one receiver leave as one message, cut by the
    # kernel into datagrams of `segment` bytes (the last may be shorter). Groups of a flush:
    cdef int _gso                # 1 while GSO is in use (off if the kernel or device refuses)
    cdef int *_open_group       # receiver slot -> its group still taking datagrams, or -1
    cdef int *_entry_group      # queued datagram -> its group
    cdef int *_entry_pos        # queued datagram -> its place in the group
    cdef int *_grp_first        # group -> its first iovec in _grp_iov
    cdef int *_grp_count
    cdef int *_grp_segment
    cdef int *_grp_target
    cdef uint8_t *_grp_closed
    cdef int *_grp_entry        # iovec of a group -> the queued datagram it carries
    cdef iovec *_grp_iov
    cdef mmsghdr *_grp_msgs
    cdef uint8_t *_grp_cmsg
    cdef StunBucket *_stun_buckets
    cdef uint64_t _send_messages    # messages handed to the kernel (a GSO message carries many)
    cdef uint64_t _gso_messages     # of which GSO messages carrying more than one datagram

    def __cinit__(self, *args, **kwargs):
        self._wake[0] = -1
        self._wake[1] = -1
        pthread_mutex_init(&self._mutex, NULL)
        self._in_bufs = <uint8_t *>malloc(IN_BATCH * SLOT_BYTES)
        self._in_addrs = <sockaddr_storage *>calloc(IN_BATCH, sizeof(sockaddr_storage))
        self._in_iov = <iovec *>calloc(IN_BATCH, sizeof(iovec))
        self._in_msgs = <mmsghdr *>calloc(IN_BATCH, sizeof(mmsghdr))
        self._out_bufs = <uint8_t *>malloc(OUT_SLOTS * SLOT_BYTES)
        self._out_iov = <iovec *>calloc(OUT_SLOTS, sizeof(iovec))
        self._out_msgs = <mmsghdr *>calloc(OUT_SLOTS, sizeof(mmsghdr))
        self._out_slot = <int *>calloc(OUT_SLOTS, sizeof(int))
        self._out_kind = <uint8_t *>calloc(OUT_SLOTS, sizeof(uint8_t))
        self._entry_group = <int *>calloc(OUT_SLOTS, sizeof(int))
        self._entry_pos = <int *>calloc(OUT_SLOTS, sizeof(int))
        self._grp_first = <int *>calloc(OUT_SLOTS, sizeof(int))
        self._grp_count = <int *>calloc(OUT_SLOTS, sizeof(int))
        self._grp_segment = <int *>calloc(OUT_SLOTS, sizeof(int))
        self._grp_target = <int *>calloc(OUT_SLOTS, sizeof(int))
        self._grp_closed = <uint8_t *>calloc(OUT_SLOTS, sizeof(uint8_t))
        self._grp_entry = <int *>calloc(OUT_SLOTS, sizeof(int))
        self._grp_iov = <iovec *>calloc(OUT_SLOTS, sizeof(iovec))
        self._grp_msgs = <mmsghdr *>calloc(OUT_SLOTS, sizeof(mmsghdr))
        self._grp_cmsg = <uint8_t *>calloc(OUT_SLOTS, ACCORD_GSO_CMSG_SPACE)
        self._stun_buckets = <StunBucket *>calloc(STUN_SLOTS, sizeof(StunBucket))
        if (self._entry_group == NULL or self._entry_pos == NULL or self._grp_first == NULL
                or self._grp_count == NULL or self._grp_segment == NULL
                or self._grp_target == NULL or self._grp_closed == NULL
                or self._grp_entry == NULL or self._grp_iov == NULL or self._grp_msgs == NULL
                or self._grp_cmsg == NULL or self._stun_buckets == NULL):
            raise MemoryError()
        if (self._in_bufs == NULL or self._in_addrs == NULL or self._in_iov == NULL
                or self._in_msgs == NULL or self._out_bufs == NULL or self._out_iov == NULL
                or self._out_msgs == NULL or self._out_slot == NULL or self._out_kind == NULL):
            raise MemoryError()
        cdef int i
        for i in range(IN_BATCH):
            self._in_iov[i].iov_base = self._in_bufs + i * SLOT_BYTES
            self._in_iov[i].iov_len = SLOT_BYTES
            self._in_msgs[i].msg_hdr.msg_iov = &self._in_iov[i]
            self._in_msgs[i].msg_hdr.msg_iovlen = 1
            self._in_msgs[i].msg_hdr.msg_name = &self._in_addrs[i]
        for i in range(OUT_SLOTS):
            self._out_iov[i].iov_base = self._out_bufs + i * SLOT_BYTES
            self._out_msgs[i].msg_hdr.msg_iov = &self._out_iov[i]
            self._out_msgs[i].msg_hdr.msg_iovlen = 1
        memset(self._counters, 0, sizeof(self._counters))

    def __init__(self, str bind_host, int port, *, bint gso=True):
        self._sock = open_media_socket(bind_host, port)
        self._fd = self._sock.fileno()
        self._gso = 1 if gso and accord_gso_supported(self._fd) else 0
        if pipe(self._wake) != 0:
            self._sock.close()
            raise OSError(errno, "pipe() failed")
        self._slots = {}
        self._sessions = {}
        self._rooms = {}
        self._room_of = {}
        self._id_of_slot = {}
        self._free = []
        self._thread = None
        self._rebuild_tables()

    def __dealloc__(self):
        if self._wake[0] >= 0:
            close(self._wake[0])
        if self._wake[1] >= 0:
            close(self._wake[1])
        pthread_mutex_destroy(&self._mutex)
        free(self._parts)
        free(self._members)
        free(self._ht_keys)
        free(self._ht_slots)
        free(self._in_bufs)
        free(self._in_addrs)
        free(self._in_iov)
        free(self._in_msgs)
        free(self._out_bufs)
        free(self._out_iov)
        free(self._out_msgs)
        free(self._out_slot)
        free(self._out_kind)
        free(self._open_group)
        free(self._entry_group)
        free(self._entry_pos)
        free(self._grp_first)
        free(self._grp_count)
        free(self._grp_segment)
        free(self._grp_target)
        free(self._grp_closed)
        free(self._grp_entry)
        free(self._grp_iov)
        free(self._grp_msgs)
        free(self._grp_cmsg)
        free(self._stun_buckets)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self):
        return self._sock.getsockname()[1]

    @property
    def is_running(self):
        return self._thread is not None and self._thread.is_alive()

    def _pause_loop(self):
        """Hold the loop between batches until `_resume_loop()` on this thread (tests only).

        Datagrams wait in the socket buffer meanwhile, so the next batch takes many at once.
        """
        self._lock()

    def _resume_loop(self):
        self._unlock()

    def _media_socket(self):
        """The UDP socket object (tests only: socket options that make the kernel refuse GSO)."""
        return self._sock

    @property
    def send_stats(self):
        """How datagrams left: {"gso": in use, "send_messages": n, "gso_messages": m}."""
        self._lock()
        try:
            return {"gso": bool(self._gso), "send_messages": self._send_messages,
                    "gso_messages": self._gso_messages}
        finally:
            self._unlock()

    def start(self):
        if self._thread is not None or self._closed:
            raise RuntimeError("a forwarder can only be started once")
        self._started_ns = _now_ns()
        self._thread = threading.Thread(target=self._thread_main, name="accord-forwarder",
                                        daemon=True)
        self._thread.start()

    def stop(self):
        cdef char byte = 1
        accord_store(&self._stopping, 1)
        if self._thread is not None:
            write(self._wake[1], &byte, 1)
            self._thread.join()
        if not self._closed:
            self._closed = 1
            self._sock.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()

    def _thread_main(self):
        with nogil:
            self._loop()

    # -- commands (caller's thread, under the loop's mutex) -----------------------------------

    cdef void _lock(self):
        accord_add(&self._waiters, 1)
        with nogil:
            pthread_mutex_lock(&self._mutex)
        accord_add(&self._waiters, -1)

    cdef void _unlock(self):
        pthread_mutex_unlock(&self._mutex)

    def add_participant(self, participant_id, room_id, ssrc, str srtp_profile, bytes rx_key,
                        bytes tx_key):
        if not 0 <= participant_id < 2**64:
            raise ValueError("participant_id must fit in 64 bits")
        if not 0 <= room_id < 2**64:
            raise ValueError("room_id must fit in 64 bits")
        if not 0 <= ssrc < 2**32:
            raise ValueError("ssrc must fit in 32 bits")
        rx = _srtp.make_rx_session(srtp_profile, rx_key, ssrc)
        tx = _srtp.make_tx_session(srtp_profile, tx_key)
        cdef size_t rx_ptr = _srtp.session_pointer(rx)
        cdef size_t tx_ptr = _srtp.session_pointer(tx)
        cdef int slot
        cdef Participant *p
        self._lock()
        try:
            if participant_id in self._slots:
                raise ValueError(f"participant {participant_id} is already on this forwarder")
            if self._find_slot(ssrc) >= 0:
                raise ValueError(f"SSRC {ssrc} is already in use on this forwarder")
            if self._free:
                slot = self._free.pop()
            else:
                slot = self._capacity
                self._grow(self._capacity * 2 if self._capacity else 16)
                self._free.extend(range(self._capacity - 1, slot, -1))
            p = &self._parts[slot]
            memset(p, 0, sizeof(Participant))
            p.active = 1
            p.ssrc = ssrc
            p.rx = <void *>rx_ptr
            p.tx = <void *>tx_ptr
            self._slots[participant_id] = slot
            self._id_of_slot[slot] = participant_id
            self._sessions[participant_id] = (rx, tx)
            self._room_of[participant_id] = room_id
            self._rooms.setdefault(room_id, []).append(slot)
            self._rebuild_tables()
        finally:
            self._unlock()

    def remove_participant(self, participant_id):
        cdef int slot, other
        cdef Participant *p
        self._lock()
        try:
            if participant_id not in self._slots:
                return False
            slot = self._slots.pop(participant_id)
            room_id = self._room_of.pop(participant_id)
            p = &self._parts[slot]
            room = self._rooms[room_id]
            room.remove(slot)
            if not room:
                del self._rooms[room_id]
            del self._id_of_slot[slot]
            for other in room:
                # Forget the outbound stream for its SSRC in the room mates' sessions.
                try:
                    self._sessions[self._id_of_slot[other]][1].remove_stream(p.ssrc)
                except _SrtpError:
                    pass  # nothing was ever forwarded from it to this receiver
            p.active = 0
            p.rx = NULL
            p.tx = NULL
            self._free.append(slot)
            self._rebuild_tables()
            # Only now, with C holding no pointer to them, may the sessions be freed.
            del self._sessions[participant_id]
            return True
        finally:
            self._unlock()

    def set_state(self, participant_id, muted, deafened):
        cdef int slot
        self._lock()
        try:
            slot = self._slots[participant_id]
            self._parts[slot].muted = 1 if muted else 0
            self._parts[slot].deafened = 1 if deafened else 0
        finally:
            self._unlock()

    cdef void _grow(self, int capacity) except *:
        cdef Participant *parts = <Participant *>realloc(self._parts, capacity * sizeof(Participant))
        if parts == NULL:
            raise MemoryError()
        memset(parts + self._capacity, 0, (capacity - self._capacity) * sizeof(Participant))
        self._parts = parts
        cdef int *open_group = <int *>realloc(self._open_group, capacity * sizeof(int))
        if open_group == NULL:
            raise MemoryError()
        memset(open_group + self._capacity, 0xFF, (capacity - self._capacity) * sizeof(int))
        self._open_group = open_group
        self._capacity = capacity

    cdef int _find_slot(self, uint32_t ssrc) noexcept nogil:
        cdef uint32_t h = (ssrc * 2654435761U) & self._ht_mask
        while self._ht_slots[h] >= 0:
            if self._ht_keys[h] == ssrc:
                return self._ht_slots[h]
            h = (h + 1) & self._ht_mask
        return -1

    cdef void _rebuild_tables(self) except *:
        """Rebuild the room member lists and the SSRC table (under the mutex)."""
        cdef int count = len(self._slots)
        cdef int size = 16, i = 0, start, slot
        cdef uint32_t h
        while size < 2 * count:
            size *= 2
        free(self._ht_keys)
        free(self._ht_slots)
        free(self._members)
        self._ht_keys = <uint32_t *>calloc(size, sizeof(uint32_t))
        self._ht_slots = <int *>malloc(size * sizeof(int))
        self._members = <int *>malloc((count + 1) * sizeof(int))
        if self._ht_keys == NULL or self._ht_slots == NULL or self._members == NULL:
            raise MemoryError()
        self._ht_mask = size - 1
        memset(self._ht_slots, 0xFF, size * sizeof(int))
        for slots in self._rooms.values():
            start = i
            for slot in slots:
                self._members[i] = slot
                i += 1
            for slot in slots:
                self._parts[slot].room_start = start
                self._parts[slot].room_count = len(slots)
        for slot in self._slots.values():
            h = (self._parts[slot].ssrc * 2654435761U) & self._ht_mask
            while self._ht_slots[h] >= 0:
                h = (h + 1) & self._ht_mask
            self._ht_keys[h] = self._parts[slot].ssrc
            self._ht_slots[h] = slot

    # -- counters ----------------------------------------------------------------------------

    def stats(self):
        cdef uint64_t busy, started, now
        self._lock()
        try:
            result = {name: self._counters[i] for i, name in enumerate(FORWARDER_COUNTERS)}
            result["participants"] = len(self._slots)
            result["rooms"] = len(self._rooms)
            busy = self._busy_ns
            started = self._started_ns
        finally:
            self._unlock()
        now = _now_ns()
        result["busy_ratio"] = min(1.0, busy / <double>(now - started)) if started and now > started else 0.0
        return result

    def participant_stats(self, participant_id):
        cdef int slot
        cdef Participant *p
        self._lock()
        try:
            slot = self._slots[participant_id]
            p = &self._parts[slot]
            result = {name: p.counters[i] for i, name in enumerate(PARTICIPANT_COUNTERS)}
            result["room_id"] = self._room_of[participant_id]
            result["ssrc"] = p.ssrc
            result["muted"] = bool(p.muted)
            result["deafened"] = bool(p.deafened)
            raw = (<char *>&p.addr)[:p.addrlen] if p.latched else None
        finally:
            self._unlock()
        result["address"] = None if raw is None else _decode_sockaddr(raw)
        return result

    # -- the loop (no GIL) -------------------------------------------------------------------

    cdef void _loop(self) noexcept nogil:
        cdef pollfd fds[2]
        cdef int n, i, ready
        cdef char drain[64]
        cdef uint64_t started
        fds[0].fd = self._fd
        fds[0].events = POLLIN
        fds[1].fd = self._wake[0]
        fds[1].events = POLLIN
        while not accord_load(&self._stopping):
            ready = poll(fds, 2, POLL_TIMEOUT_MS)
            if ready <= 0:
                continue
            if fds[1].revents:
                read(self._wake[0], drain, sizeof(drain))
                continue
            while not accord_load(&self._stopping):
                pthread_mutex_lock(&self._mutex)
                started = _now_ns()
                for i in range(IN_BATCH):
                    self._in_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
                    self._in_msgs[i].msg_hdr.msg_flags = 0
                n = recvmmsg(self._fd, self._in_msgs, IN_BATCH, MSG_DONTWAIT, NULL)
                if n <= 0:
                    pthread_mutex_unlock(&self._mutex)
                    break
                for i in range(n):
                    self._handle(i)
                self._flush()
                self._busy_ns += _now_ns() - started
                pthread_mutex_unlock(&self._mutex)
                # Let a waiting command in before the next batch (pthread mutexes are unfair).
                while accord_load(&self._waiters) > 0 and not accord_load(&self._stopping):
                    sched_yield()
                if n < IN_BATCH:
                    break

    cdef inline void _handle(self, int i) noexcept nogil:
        cdef uint8_t *buf = self._in_bufs + i * SLOT_BYTES
        cdef int n = self._in_msgs[i].msg_len
        cdef uint8_t first
        self._counters[C_PACKETS_IN] += 1
        self._counters[C_BYTES_IN] += n
        if (self._in_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) or n > MAX_DATAGRAM:
            self._counters[C_DROP_MALFORMED] += 1
            return
        if n == 0:
            self._counters[C_DROP_UNSUPPORTED] += 1
            return
        first = buf[0]
        if first <= 3:
            self._handle_stun(i, buf, n)
        elif 128 <= first <= 191 and n >= 2:
            if 192 <= buf[1] <= 223:  # RFC 5761 4: RTCP packet types
                self._handle_rtcp(i, buf, n)
            else:
                self._handle_rtp(i, buf, n)
        else:
            self._counters[C_DROP_UNSUPPORTED] += 1  # DTLS (20-63) and anything else

    cdef inline void _handle_stun(self, int i, uint8_t *buf, int n) noexcept nogil:
        cdef int length
        if not _stun_is_valid(buf, n):
            self._counters[C_DROP_MALFORMED] += 1
            return
        if _be16(buf) != STUN_REQUEST:
            self._counters[C_DROP_UNSUPPORTED] += 1
            return
        if not self._stun_allow(&self._in_addrs[i]):
            self._counters[C_DROP_RATE_LIMITED] += 1
            return
        if self._nout == OUT_SLOTS:
            self._flush()
        length = _stun_answer(buf, &self._in_addrs[i], self._out_bufs + self._nout * SLOT_BYTES)
        if length < 0:
            self._counters[C_DROP_UNSUPPORTED] += 1
            return
        self._queue(length, &self._in_addrs[i], self._in_msgs[i].msg_hdr.msg_namelen, -1,
                    OUT_STUN)

    cdef inline bint _stun_allow(self, const sockaddr_storage *src) noexcept nogil:
        """stun_limit.StunLimiter.allow for this source IP, at C speed."""
        cdef const uint8_t *raw = <const uint8_t *>src
        cdef uint8_t key[16]
        cdef uint64_t now = _now_ns(), tat
        cdef StunBucket *bucket
        if src.ss_family == AF_INET:
            memset(key, 0, 10)
            key[10] = 0xFF
            key[11] = 0xFF
            memcpy(key + 12, raw + 4, 4)
        else:
            memcpy(key, raw + 8, 16)
        bucket = &self._stun_buckets[_stun_slot_of(key)]
        if memcmp(bucket.key, key, 16) != 0 or bucket.tat == 0:
            memcpy(bucket.key, key, 16)
            bucket.tat = now
        tat = bucket.tat if bucket.tat > now else now
        if tat - now > STUN_TOLERANCE_NS:
            return False
        bucket.tat = tat + STUN_INTERVAL_NS
        return True

    cdef inline int _authenticate(self, int i, uint8_t *buf, int *n, uint32_t ssrc,
                                  bint rtcp) noexcept nogil:
        """Find the sender, unprotect in place and latch; return its slot or -1."""
        cdef int slot = self._find_slot(ssrc)
        cdef int rc, wire = n[0]
        cdef Participant *p
        cdef socklen_t addrlen = self._in_msgs[i].msg_hdr.msg_namelen
        if slot < 0:
            self._counters[C_DROP_UNKNOWN_SSRC] += 1
            return -1
        p = &self._parts[slot]
        if rtcp:
            rc = _unprotect_rtcp(p.rx, buf, n)
        else:
            rc = _unprotect(p.rx, buf, n)
        if rc != 0:
            if rc == ERR_REPLAY_FAIL or rc == ERR_REPLAY_OLD:
                self._counters[C_DROP_REPLAY] += 1
                p.counters[P_DROP_REPLAY] += 1
            else:
                self._counters[C_DROP_AUTH_FAILED] += 1
                p.counters[P_DROP_AUTH_FAILED] += 1
            return -1
        if not p.latched or p.addrlen != addrlen or memcmp(&p.addr, &self._in_addrs[i], addrlen) != 0:
            if p.latched:
                self._counters[C_LATCH_MOVES] += 1
                p.counters[P_LATCH_MOVES] += 1
            memcpy(&p.addr, &self._in_addrs[i], addrlen)
            p.addrlen = addrlen
            p.latched = 1
        p.counters[P_PACKETS_IN] += 1
        p.counters[P_BYTES_IN] += wire
        if rtcp:
            p.counters[P_RTCP_IN] += 1
            self._counters[C_RTCP_IN] += 1
        else:
            self._counters[C_RTP_IN] += 1
        return slot

    cdef inline void _handle_rtp(self, int i, uint8_t *buf, int n) noexcept nogil:
        cdef int header = _rtp_header_length(buf, n)
        cdef int slot, pad
        if header < 0:
            self._counters[C_DROP_MALFORMED] += 1
            return
        slot = self._authenticate(i, buf, &n, _be32(buf + 8), False)
        if slot < 0:
            return
        if buf[0] & 0x20:  # RFC 3550 5.1: padding count in the last (now decrypted) octet
            pad = buf[n - 1] if n > header else 0
            if pad == 0 or header + pad > n:
                self._counters[C_DROP_MALFORMED] += 1
                return
        if self._parts[slot].muted:
            self._counters[C_DROP_MUTED] += 1
            self._parts[slot].counters[P_DROP_MUTED] += 1
            return
        self._fan_out(slot, buf, n, False)

    cdef inline void _handle_rtcp(self, int i, uint8_t *buf, int n) noexcept nogil:
        cdef int slot
        if n < 8:
            self._counters[C_DROP_MALFORMED] += 1
            return
        slot = self._authenticate(i, buf, &n, _be32(buf + 4), True)
        if slot < 0:
            return
        if not _rtcp_compound_ok(buf, n):
            self._counters[C_DROP_MALFORMED] += 1
            return
        if buf[1] != RTCP_SR:
            self._counters[C_RTCP_CONSUMED] += 1
            return
        if self._parts[slot].muted:
            self._counters[C_DROP_MUTED] += 1
            self._parts[slot].counters[P_DROP_MUTED] += 1
            return
        self._fan_out(slot, buf, n, True)

    cdef inline void _fan_out(self, int slot, const uint8_t *plain, int n, bint rtcp) noexcept nogil:
        cdef Participant *sender = &self._parts[slot]
        cdef Participant *r
        cdef int k, target, length, rc
        cdef uint8_t *out
        for k in range(sender.room_start, sender.room_start + sender.room_count):
            target = self._members[k]
            if target == slot:
                continue
            r = &self._parts[target]
            if r.deafened:
                self._counters[C_DROP_DEAFENED] += 1
                continue
            if not r.latched:
                self._counters[C_DROP_UNLATCHED] += 1
                continue
            if self._nout == OUT_SLOTS:
                self._flush()
            out = self._out_bufs + self._nout * SLOT_BYTES
            memcpy(out, plain, n)
            length = n
            if rtcp:
                rc = _protect_rtcp(r.tx, out, &length)
            else:
                rc = _protect(r.tx, out, &length)
            if rc != 0:
                self._counters[C_DROP_PROTECT_FAILED] += 1
                continue
            self._queue(length, &r.addr, r.addrlen, target, OUT_RTCP if rtcp else OUT_RTP)

    cdef inline void _queue(self, int length, sockaddr_storage *addr, socklen_t addrlen,
                            int target, uint8_t kind) noexcept nogil:
        cdef int j = self._nout
        self._out_iov[j].iov_len = length
        self._out_msgs[j].msg_hdr.msg_name = addr
        self._out_msgs[j].msg_hdr.msg_namelen = addrlen
        self._out_slot[j] = target
        self._out_kind[j] = kind
        self._nout += 1

    cdef void _flush(self) noexcept nogil:
        if self._nout == 0:
            return
        if self._gso:
            self._flush_gso()
        else:
            self._flush_plain()
        self._nout = 0

    cdef void _flush_plain(self) noexcept nogil:
        """One message per datagram, sendmmsg batches."""
        cdef int sent = 0, r, j
        while sent < self._nout:
            r = sendmmsg(self._fd, self._out_msgs + sent, self._nout - sent, 0)
            if r < 0:
                if errno == EINTR:
                    continue
                self._send_messages += 1
                self._counters[C_DROP_SEND_FAILED] += 1  # the first queued datagram failed
                sent += 1
                continue
            self._send_messages += r
            for j in range(sent, sent + r):
                self._count_sent(j)
            sent += r

    cdef void _flush_gso(self) noexcept nogil:
        """Group each receiver's datagrams of this flush into UDP GSO messages, in order.

        A group takes a receiver's next datagram while it has the group's segment size (or is
        shorter, which closes the group: only the last segment may be short), stays within
        GSO_MAX_SEGMENTS and GSO_MAX_BYTES, and is at most GSO_MAX_SEGMENT bytes. STUN answers
        and large datagrams go alone, and a STUN answer closes every open group. Groups leave in
        the order they were opened, so every address gets its datagrams in queue order.
        """
        cdef int ngroups = 0, j, g, t, length, total = 0, sent, r, e
        for j in range(self._nout):
            t = self._out_slot[j]
            length = self._out_iov[j].iov_len
            g = -1
            if t >= 0 and length <= GSO_MAX_SEGMENT:
                g = self._open_group[t]
                if g >= 0 and (length > self._grp_segment[g]
                               or self._grp_count[g] >= GSO_MAX_SEGMENTS
                               or (self._grp_count[g] + 1) * self._grp_segment[g] > GSO_MAX_BYTES):
                    g = -1
            if t < 0:
                # A STUN answer may go to a receiver's own address: close every open group so
                # nothing queued after the answer leaves before it.
                for e in range(ngroups):
                    if self._grp_target[e] >= 0:
                        self._open_group[self._grp_target[e]] = -1
            if g < 0:
                g = ngroups
                ngroups += 1
                self._grp_count[g] = 0
                self._grp_segment[g] = length
                self._grp_target[g] = t
                self._grp_closed[g] = 0 if (t >= 0 and length <= GSO_MAX_SEGMENT) else 1
                if t >= 0:
                    self._open_group[t] = -1 if self._grp_closed[g] else g
            self._entry_group[j] = g
            self._entry_pos[j] = self._grp_count[g]
            self._grp_count[g] += 1
            if length < self._grp_segment[g]:
                self._grp_closed[g] = 1
                self._open_group[t] = -1
        for g in range(ngroups):
            self._grp_first[g] = total
            total += self._grp_count[g]
            if self._grp_target[g] >= 0:
                self._open_group[self._grp_target[g]] = -1
        for j in range(self._nout):
            e = self._grp_first[self._entry_group[j]] + self._entry_pos[j]
            self._grp_iov[e] = self._out_iov[j]
            self._grp_entry[e] = j
        for g in range(ngroups):
            j = self._grp_entry[self._grp_first[g]]
            self._grp_msgs[g].msg_hdr.msg_name = self._out_msgs[j].msg_hdr.msg_name
            self._grp_msgs[g].msg_hdr.msg_namelen = self._out_msgs[j].msg_hdr.msg_namelen
            self._grp_msgs[g].msg_hdr.msg_iov = &self._grp_iov[self._grp_first[g]]
            self._grp_msgs[g].msg_hdr.msg_iovlen = self._grp_count[g]
            self._grp_msgs[g].msg_hdr.msg_flags = 0
            if self._grp_count[g] > 1:
                self._grp_msgs[g].msg_hdr.msg_control = self._grp_cmsg + g * ACCORD_GSO_CMSG_SPACE
                self._grp_msgs[g].msg_hdr.msg_controllen = accord_gso_cmsg(
                    self._grp_msgs[g].msg_hdr.msg_control, self._grp_segment[g])
            else:
                self._grp_msgs[g].msg_hdr.msg_control = NULL
                self._grp_msgs[g].msg_hdr.msg_controllen = 0
        sent = 0
        while sent < ngroups:
            r = sendmmsg(self._fd, self._grp_msgs + sent, ngroups - sent, 0)
            if r < 0:
                if errno == EINTR:
                    continue
                g = sent
                if self._grp_count[g] > 1 and (errno == EIO or errno == EINVAL
                                               or errno == EOPNOTSUPP or errno == ENOPROTOOPT):
                    # The kernel or the route's device refuses GSO (EIO: no checksum
                    # offload): send the rest one datagram per message, now and from now on.
                    self._gso = 0
                    for g in range(sent, ngroups):
                        for e in range(self._grp_first[g], self._grp_first[g] + self._grp_count[g]):
                            self._send_one(self._grp_entry[e])
                    return
                self._send_messages += 1
                self._counters[C_DROP_SEND_FAILED] += self._grp_count[g]
                sent += 1
                continue
            self._send_messages += r
            for g in range(sent, sent + r):
                if self._grp_count[g] > 1:
                    self._gso_messages += 1
                for e in range(self._grp_first[g], self._grp_first[g] + self._grp_count[g]):
                    self._count_sent(self._grp_entry[e])
            sent += r

    cdef void _send_one(self, int j) noexcept nogil:
        cdef long r = sendmsg(self._fd, &self._out_msgs[j].msg_hdr, 0)
        while r < 0 and errno == EINTR:
            r = sendmsg(self._fd, &self._out_msgs[j].msg_hdr, 0)
        self._send_messages += 1
        if r < 0:
            self._counters[C_DROP_SEND_FAILED] += 1
        else:
            self._count_sent(j)

    cdef inline void _count_sent(self, int j) noexcept nogil:
        cdef int length = self._out_iov[j].iov_len
        cdef int target = self._out_slot[j]
        self._counters[C_PACKETS_OUT] += 1
        self._counters[C_BYTES_OUT] += length
        if self._out_kind[j] == OUT_STUN:
            self._counters[C_STUN_ANSWERED] += 1
            return
        self._parts[target].counters[P_PACKETS_OUT] += 1
        self._parts[target].counters[P_BYTES_OUT] += length
        if self._out_kind[j] == OUT_RTCP:
            self._counters[C_RTCP_OUT] += 1
            self._parts[target].counters[P_RTCP_OUT] += 1
        else:
            self._counters[C_RTP_OUT] += 1


def _decode_sockaddr(bytes raw):
    """(host, port) of a sockaddr_in / sockaddr_in6 as the kernel filled it."""
    family = int.from_bytes(raw[0:2], "little")
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
