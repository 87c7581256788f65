"""SFU forwarder benchmark: output packets/s at <0.1% loss, against the machine's limit.

Owns the figures of issue #7 (MEDIA.md 5). Every process is separate and talks over loopback:
a paced sender and a counting sink (both C, compiled here at runtime with gcc), and the
forwarder under test in its own process: the Cython loop (with and without UDP GSO) or the
pure-Python reference (`accord.media.forward`), or a C forwarder with no crypto: plain
recvmmsg/sendmmsg (the machine's limit as issue 7 defines it) and one sending like the Cython
loop, per-receiver UDP GSO messages (the limit for that technique). For 1 sender to K
receivers, each rate step sends for a fixed time and passes if loss < 0.1% and the last
packet reaches the sinks within 50 ms after the sender stops; the rate steps up until a step
fails. Also: a 5-speaker room with variable (VBR) sizes, latency p99 at half the saturating
rate, and two forwarder threads (ACCORD_SFU_WORKERS=2). Every run is bounded in time.

    .venv/bin/python bench/sfu_bench.py            # full run (about 8 minutes)
    .venv/bin/python bench/sfu_bench.py --quick    # short run (about a minute)

Not collected by pytest; the server never imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROFILES = ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80")
KEY_BYTES = {"AEAD_AES_128_GCM": 28, "AES_CM_128_HMAC_SHA1_80": 30}
OPUS_PAYLOAD_BYTES = 160  # a 20 ms Opus frame at ~64 kbit/s
MAX_LOSS = 0.001
SPEAKERS = 5  # the multi-speaker (VBR) scenario
MAX_LATE_NS = 50_000_000
SENDER_SSRC = 0x1000
RECEIVER_SSRC = 0x2000
CHILD_TIMEOUT_S = 20.0
# The C forwarders built here (no crypto): the plain one is the machine's limit as issue 7
# defines it; the GSO one sends like the Cython loop does, the limit for that technique.
C_FORWARDERS = {"c-limit": "fwd", "c-gso": "fwd-gso"}

C_SOURCE = r"""
/* Helper tools for bench/sfu_bench.py: paced sender, counting sink, plain C forwarder.
   Generated and compiled at runtime by the bench script; not part of the server. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOT 2048
#define BATCH 64

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int udp_socket(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int size = 4 * 1024 * 1024;
    struct sockaddr_in a;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); exit(2); }
    return fd;
}

static int local_port(int fd) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    return a;
}

/* packets file: u32 count, then count x (u16 length, bytes) */
static unsigned char *load_packets(const char *path, uint32_t *count, uint16_t **lengths,
                                   unsigned char ***starts) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(size);
    if (fread(data, 1, size, f) != (size_t)size) { perror("read"); exit(2); }
    fclose(f);
    memcpy(count, data, 4);
    *lengths = malloc(sizeof(uint16_t) * (*count + 1));
    *starts = malloc(sizeof(unsigned char *) * (*count + 1));
    long off = 4;
    for (uint32_t i = 0; i < *count; i++) {
        memcpy(&(*lengths)[i], data + off, 2);
        (*starts)[i] = data + off + 2;
        off += 2 + (*lengths)[i];
    }
    return data;
}

/* send <port> <packets_file> <rate> <count> [<times_file>] */
static int cmd_send(int argc, char **argv) {
    int port = atoi(argv[2]);
    double rate = atof(argv[4]);
    uint32_t want = (uint32_t)atol(argv[5]);
    const char *times_path = argc > 6 ? argv[6] : NULL;
    uint32_t count; uint16_t *lengths; unsigned char **starts;
    load_packets(argv[3], &count, &lengths, &starts);
    if (want > count) { fprintf(stderr, "only %u packets in the file\n", count); return 2; }
    int fd = udp_socket(0);
    struct sockaddr_in dst = loopback(port);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) { perror("connect"); return 2; }
    uint64_t *times = times_path ? calloc(want, sizeof(uint64_t)) : NULL;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    uint64_t start = now_ns();
    uint32_t sent = 0;
    while (sent < want) {
        uint64_t now = now_ns();
        uint64_t due = (uint64_t)((double)(now - start) * rate / 1e9) + 1;
        if (due > want) due = want;
        if (due <= sent) {
            struct timespec pause = {0, 20000};
            nanosleep(&pause, NULL);
            continue;
        }
        uint32_t n = (uint32_t)(due - sent);
        if (n > BATCH) n = BATCH;
        for (uint32_t i = 0; i < n; i++) {
            iov[i].iov_base = starts[sent + i];
            iov[i].iov_len = lengths[sent + i];
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            if (times) times[sent + i] = wall_ns(); /* same clock as SO_TIMESTAMPNS */
        }
        int r = sendmmsg(fd, msgs, n, 0);
        if (r < 0) {
            if (errno == EINTR || errno == ECONNREFUSED) continue;
            perror("sendmmsg");
            return 2;
        }
        sent += (uint32_t)r;
    }
    uint64_t stop = now_ns();
    if (times) {
        FILE *f = fopen(times_path, "wb");
        fwrite(times, sizeof(uint64_t), want, f);
        fclose(f);
    }
    printf("sent %u %llu %llu\n", sent, (unsigned long long)start, (unsigned long long)stop);
    return 0;
}

static uint64_t kernel_time(struct mmsghdr *m) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg_hdr); c; c = CMSG_NXTHDR(&m->msg_hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        }
    }
    return wall_ns();
}

/* sink <K>: K sockets; stdin commands:
   latch <port> <file> <first> <count> | reset | report | latency <path> | quit */
static int cmd_sink(int argc, char **argv) {
    (void)argc;
    int k = atoi(argv[2]);
    int *fds = malloc(sizeof(int) * k);
    int ep = epoll_create1(0);
    struct epoll_event ev;
    printf("ports");
    for (int i = 0; i < k; i++) {
        fds[i] = udp_socket(0);
        if (i == 0) { /* kernel receive times: the sink's own scheduling does not count */
            int on = 1;
            setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
        }
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        printf(" %d", local_port(fds[i]));
    }
    printf("\n");
    fflush(stdout);
    ev.events = EPOLLIN;
    ev.data.u32 = 0xFFFFFFFFu;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    uint64_t received = 0, last = 0;
    uint64_t *arrival = calloc(65536, sizeof(uint64_t));
    static unsigned char bufs[BATCH][SLOT];
    static unsigned char control[BATCH][64];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = SLOT;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    char line[4096];
    size_t have = 0;
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, 50);
        for (int e = 0; e < n; e++) {
            uint32_t which = events[e].data.u32;
            if (which != 0xFFFFFFFFu) {
                for (;;) {
                    for (int i = 0; i < BATCH; i++) {
                        msgs[i].msg_hdr.msg_control = control[i];
                        msgs[i].msg_hdr.msg_controllen = sizeof control[i];
                    }
                    int r = recvmmsg(fds[which], msgs, BATCH, MSG_DONTWAIT, NULL);
                    if (r <= 0) break;
                    uint64_t t = now_ns();
                    received += (uint64_t)r;
                    last = t;
                    if (which == 0)
                        for (int i = 0; i < r; i++)
                            if (msgs[i].msg_len >= 4)
                                arrival[(bufs[i][2] << 8) | bufs[i][3]] = kernel_time(&msgs[i]);
                    if (r < BATCH) break;
                }
                continue;
            }
            ssize_t got = read(0, line + have, sizeof line - 1 - have);
            if (got <= 0) return 0;
            have += (size_t)got;
            line[have] = 0;
            char *nl;
            while ((nl = strchr(line, '\n')) != NULL) {
                *nl = 0;
                char path[1024];
                int port, first, several;
                if (strcmp(line, "quit") == 0) return 0;
                if (strcmp(line, "reset") == 0) {
                    received = 0; last = 0;
                    memset(arrival, 0, 65536 * sizeof(uint64_t));
                    printf("ok\n");
                } else if (strcmp(line, "report") == 0) {
                    printf("received %llu %llu\n", (unsigned long long)received,
                           (unsigned long long)last);
                } else if (sscanf(line, "latency %1000s", path) == 1) {
                    FILE *f = fopen(path, "wb");
                    fwrite(arrival, sizeof(uint64_t), 65536, f);
                    fclose(f);
                    printf("ok\n");
                } else if (sscanf(line, "latch %d %1000s %d %d", &port, path, &first,
                                  &several) == 4) {
                    /* socket i sends packet i of the file, for i in [first, first + several) */
                    uint32_t count;
                    uint16_t *lengths;
                    unsigned char **starts;
                    load_packets(path, &count, &lengths, &starts);
                    struct sockaddr_in dst = loopback(port);
                    for (int i = first; i < first + several && i < k && i < (int)count; i++)
                        sendto(fds[i], starts[i], lengths[i], 0, (struct sockaddr *)&dst,
                               sizeof dst);
                    printf("ok\n");
                } else {
                    printf("error %s\n", line);
                }
                fflush(stdout);
                size_t used = (size_t)(nl - line) + 1;
                memmove(line, nl + 1, have - used + 1);
                have -= used;
            }
        }
    }
}

static void flush(int fd, struct mmsghdr *out, int nout) {
    for (int s = 0; s < nout;) {
        int w = sendmmsg(fd, out + s, (unsigned)(nout - s), 0);
        s += w > 0 ? w : 1; /* skip a datagram the kernel refused */
    }
}

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* fwd <K> <port>... : plain recvmmsg/sendmmsg forwarder, copies each packet to K ports.
   fwd-gso <K> <port>... : the same, but each destination's copies of a batch leave as UDP GSO
   messages (a run of equal sizes, a shorter one ends it), as the Cython loop sends them. */
static int cmd_fwd(int argc, char **argv, int gso) {
    int k = atoi(argv[2]);
    if (argc < 3 + k) { fprintf(stderr, "need %d ports\n", k); return 2; }
    struct sockaddr_in *dst = malloc(sizeof(struct sockaddr_in) * k);
    for (int i = 0; i < k; i++) dst[i] = loopback(atoi(argv[3 + i]));
    int fd = udp_socket(0);
    printf("port %d\n", local_port(fd));
    fflush(stdout);
    enum { IN = 64, OUT = 1024 };  /* the batch sizes of _forward.pyx */
    static unsigned char inbuf[IN][SLOT], outbuf[OUT][SLOT];
    static unsigned char control[OUT][CMSG_SPACE(sizeof(uint16_t))];
    struct mmsghdr in[IN], out[OUT];
    struct iovec iniov[IN], outiov[OUT];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    for (int i = 0; i < IN; i++) {
        iniov[i].iov_base = inbuf[i]; iniov[i].iov_len = SLOT;
        in[i].msg_hdr.msg_iov = &iniov[i]; in[i].msg_hdr.msg_iovlen = 1;
    }
    for (int i = 0; i < OUT; i++) {
        outiov[i].iov_base = outbuf[i];
        out[i].msg_hdr.msg_iov = &outiov[i]; out[i].msg_hdr.msg_iovlen = 1;
    }
    struct pollfd pfd[2] = {{fd, POLLIN, 0}, {0, POLLIN, 0}};
    for (;;) {
        if (poll(pfd, 2, 50) <= 0) continue;
        if (pfd[1].revents) return 0;  /* stdin closed or a line: stop */
        for (;;) {
            int r = recvmmsg(fd, in, IN, MSG_DONTWAIT, NULL);
            if (r <= 0) break;
            if (!gso) {
                int nout = 0;
                for (int i = 0; i < r; i++) {
                    for (int j = 0; j < k; j++) {
                        if (nout == OUT) {
                            flush(fd, out, nout);
                            nout = 0;
                        }
                        memcpy(outbuf[nout], inbuf[i], in[i].msg_len);
                        outiov[nout].iov_len = in[i].msg_len;
                        out[nout].msg_hdr.msg_name = &dst[j];
                        out[nout].msg_hdr.msg_namelen = sizeof dst[j];
                        nout++;
                    }
                }
                flush(fd, out, nout);
            } else {
                /* destination-major: copies for destination j are contiguous iovecs */
                int nmsg = 0, slot = 0;
                for (int j = 0; j < k; j++) {
                    int i = 0;
                    while (i < r) {
                        if (slot + IN > OUT) { flush(fd, out, nmsg); nmsg = 0; slot = 0; }
                        int first = slot, seg = (int)in[i].msg_len;
                        while (i < r && (int)in[i].msg_len <= seg) {
                            memcpy(outbuf[slot], inbuf[i], in[i].msg_len);
                            outiov[slot].iov_base = outbuf[slot];
                            outiov[slot].iov_len = in[i].msg_len;
                            slot++;
                            if ((int)in[i++].msg_len < seg) break;
                        }
                        struct msghdr *h = &out[nmsg].msg_hdr;
                        memset(h, 0, sizeof *h);
                        h->msg_name = &dst[j];
                        h->msg_namelen = sizeof dst[j];
                        h->msg_iov = &outiov[first];
                        h->msg_iovlen = (size_t)(slot - first);
                        if (slot - first > 1) {
                            h->msg_control = control[nmsg];
                            h->msg_controllen = sizeof control[nmsg];
                            struct cmsghdr *c = CMSG_FIRSTHDR(h);
                            uint16_t size = (uint16_t)seg;
                            c->cmsg_level = IPPROTO_UDP;
                            c->cmsg_type = UDP_SEGMENT;
                            c->cmsg_len = CMSG_LEN(sizeof size);
                            memcpy(CMSG_DATA(c), &size, sizeof size);
                        }
                        nmsg++;
                    }
                }
                flush(fd, out, nmsg);
            }
            if (r < IN) break;
        }
    }
}

int main(int argc, char **argv) {
    if (argc >= 6 && strcmp(argv[1], "send") == 0) return cmd_send(argc, argv);
    if (argc >= 3 && strcmp(argv[1], "sink") == 0) return cmd_sink(argc, argv);
    if (argc >= 3 && strcmp(argv[1], "fwd") == 0) return cmd_fwd(argc, argv, 0);
    if (argc >= 3 && strcmp(argv[1], "fwd-gso") == 0) return cmd_fwd(argc, argv, 1);
    fprintf(stderr, "usage: send|sink|fwd|fwd-gso ...\n");
    return 2;
}
"""


def key_for(role: str, index: int, profile: str) -> bytes:
    """Deterministic keys so the forwarder process and the packet generator agree."""
    return hashlib.sha256(f"{role}-{index}-{profile}".encode()).digest()[: KEY_BYTES[profile]]


# -- the forwarder process ----------------------------------------------------------------------


def serve_forwarder(
    impl: str, profile: str, receivers: int, workers: int, speakers: int = 1
) -> None:
    """Run `workers` forwarders with one room each: `speakers` senders (all sending from the
    sender's one socket, deafened so nothing flows back to it) and `receivers` receivers.

    Line commands on stdin: `reset` (re-add the senders: fresh replay state for a new step),
    `latched` (how many receivers have an address), `stats`, `quit`.
    """
    from accord.media.forward import IMPLEMENTATIONS, ForwarderApi

    if impl == "cython-nogso":  # the Cython loop with one message per datagram (no UDP GSO)
        from accord.media._forward import Forwarder

        forwarders: list[ForwarderApi] = [
            Forwarder("127.0.0.1", 0, gso=False) for _ in range(workers)
        ]
    else:
        forwarders = [IMPLEMENTATIONS[impl]("127.0.0.1", 0) for _ in range(workers)]

    def add_sender(w: int) -> None:
        for s in range(speakers):
            index = _speaker_index(w, s)
            forwarders[w].add_participant(
                10_000 + index,
                w,
                SENDER_SSRC + index,
                profile,
                key_for("send", index, profile),
                key_for("recv", index, profile),
            )
            if speakers > 1:
                forwarders[w].set_state(10_000 + index, muted=False, deafened=True)

    for w, fwd in enumerate(forwarders):
        add_sender(w)
        for i in range(receivers):
            index = w * 1000 + i
            fwd.add_participant(
                index,
                w,
                RECEIVER_SSRC + index,
                profile,
                key_for("send-r", index, profile),
                key_for("recv-r", index, profile),
            )
        fwd.start()
    print(json.dumps({"ports": [fwd.port for fwd in forwarders]}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "reset":
            for w, fwd in enumerate(forwarders):
                for s in range(speakers):
                    fwd.remove_participant(10_000 + _speaker_index(w, s))
                add_sender(w)
            print("ok", flush=True)
        elif command == "latched":
            latched = sum(
                fwd.participant_stats(w * 1000 + i)["address"] is not None
                for w, fwd in enumerate(forwarders)
                for i in range(receivers)
            )
            print(latched, flush=True)
        elif command == "stats":
            print(json.dumps([dict(fwd.stats()) for fwd in forwarders]), flush=True)
        elif command == "quit":
            break
    for fwd in forwarders:
        fwd.stop()


# -- packet files -------------------------------------------------------------------------------


def write_packets(path: Path, packets: list[bytes]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<I", len(packets)))
        for packet in packets:
            f.write(struct.pack("<H", len(packet)) + packet)


def _speaker_index(worker: int, speaker: int) -> int:
    """Room `worker`'s speaker number `speaker` (speaker 0 of room w is w, as with one)."""
    return worker + 100 * speaker


def sender_packets(profile: str, worker: int, count: int, speakers: int = 1) -> list[bytes]:
    """SRTP packets from room `worker`'s speakers in turn, sequence numbers from 0 each.

    One speaker sends constant Opus-sized payloads; several send variable sizes (40-200
    bytes, as Opus VBR does), which is what breaks UDP GSO runs in real rooms.
    """
    import random

    import pylibsrtp

    from accord.media.srtp import PROFILES as SRTP_PROFILES

    sessions = [
        pylibsrtp.Session(
            pylibsrtp.Policy(
                key=key_for("send", _speaker_index(worker, s), profile),
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=SRTP_PROFILES[profile].libsrtp_profile,
            )
        )
        for s in range(speakers)
    ]
    sizes = random.Random(worker)
    packets = []
    for i in range(count):
        s, seq = i % speakers, i // speakers
        size = OPUS_PAYLOAD_BYTES if speakers == 1 else sizes.randrange(40, 201)
        ssrc = SENDER_SSRC + _speaker_index(worker, s)
        header = struct.pack("!BBHII", 0x80, 111, seq & 0xFFFF, (seq * 960) & 0xFFFFFFFF, ssrc)
        packets.append(sessions[s].protect(header + bytes(range(size))))
    return packets


def latch_packets(profile: str, workers: int, receivers: int) -> list[bytes]:
    """One SRTCP receiver report per receiver, in sink socket order, to latch their addresses."""
    import pylibsrtp

    from accord.media.rtcp import build_receiver_report
    from accord.media.srtp import PROFILES as SRTP_PROFILES

    packets = []
    for w in range(workers):
        for i in range(receivers):
            index = w * 1000 + i
            session = pylibsrtp.Session(
                pylibsrtp.Policy(
                    key=key_for("send-r", index, profile),
                    ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                    srtp_profile=SRTP_PROFILES[profile].libsrtp_profile,
                )
            )
            packets.append(session.protect_rtcp(build_receiver_report(RECEIVER_SSRC + index)))
    return packets


# -- child processes ----------------------------------------------------------------------------


class Child:
    """A child process spoken to in lines, every read bounded by a timeout."""

    def __init__(self, argv: list[str], *, cpu_list: str | None = None) -> None:
        if cpu_list and shutil.which("taskset"):
            argv = ["taskset", "-c", cpu_list, *argv]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buffer = b""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def read_line(self, timeout_s: float = CHILD_TIMEOUT_S) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"{self.proc.args!r} said nothing for {timeout_s} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError(f"{self.proc.args!r} exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def ask(self, line: str) -> str:
        self.send(line)
        return self.read_line()

    def cpu_s(self) -> float:
        """User + system CPU seconds of the child so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                # A child that already exited leaves "quit" unflushed in stdin's buffer.
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


# -- one configuration --------------------------------------------------------------------------


@dataclass
class Step:
    output_rate: float  # target output packets/s (input rate x K x workers)
    passed: bool
    loss: float
    late_ms: float
    cpu_us_per_output: float
    sender_limited: bool


@dataclass
class Result:
    name: str
    profile: str
    receivers: int
    workers: int
    steps: list[Step] = field(default_factory=list)

    @property
    def best(self) -> Step | None:
        passing = [s for s in self.steps if s.passed]
        return max(passing, key=lambda s: s.output_rate) if passing else None


class Bench:
    def __init__(self, tools: Path, workdir: Path, step_s: float) -> None:
        self.tools = tools
        self.workdir = workdir
        self.step_s = step_s
        self.speakers = 1  # senders per room (several: variable sizes, see sender_packets)
        self._packet_files: dict[tuple[str, int, int], tuple[Path, int]] = {}

    def packet_file(self, profile: str, worker: int, count: int) -> Path:
        cached = self._packet_files.get((profile, worker, self.speakers))
        if cached is not None and cached[1] >= count:
            return cached[0]
        count = max(count, 2 * (cached[1] if cached else 0))
        path = self.workdir / f"packets-{profile}-{worker}-{self.speakers}.bin"
        write_packets(path, sender_packets(profile, worker, count, self.speakers))
        self._packet_files[(profile, worker, self.speakers)] = (path, count)
        return path

    def start(
        self, impl: str, profile: str, receivers: int, workers: int
    ) -> tuple[Child, Child, list[int]]:
        """Start sink and forwarder processes; return them and the forwarder ports."""
        sink = Child([str(self.tools), "sink", str(receivers * workers)])
        sink_ports = [int(p) for p in sink.read_line().split()[1:]]
        if impl in C_FORWARDERS:
            command = C_FORWARDERS[impl]
            fwd = Child([str(self.tools), command, str(receivers), *map(str, sink_ports)])
            ports = [int(fwd.read_line().split()[1])]
            return sink, fwd, ports
        fwd = Child(
            [
                *(sys.executable, __file__, "_serve", impl, profile),
                *(str(receivers), str(workers), str(self.speakers)),
            ]
        )
        ports = json.loads(fwd.read_line())["ports"]
        latch = self.workdir / "latch.bin"
        write_packets(latch, latch_packets(profile, workers, receivers))
        # Sink sockets [w*K, (w+1)*K) are room w's receivers, latched on forwarder w.
        for w, port in enumerate(ports):
            sink.ask(f"latch {port} {latch} {w * receivers} {receivers}")
        deadline = time.monotonic() + 5
        while int(fwd.ask("latched")) < receivers * workers:
            if time.monotonic() > deadline:
                raise RuntimeError("receivers did not latch")
            time.sleep(0.01)
        return sink, fwd, ports

    def run_step(
        self,
        impl: str,
        profile: str,
        receivers: int,
        workers: int,
        sink: Child,
        fwd: Child,
        ports: list[int],
        output_rate: float,
        *,
        times_file: Path | None = None,
        arrival_file: Path | None = None,
    ) -> Step:
        input_rate = output_rate / receivers / workers
        count = max(10, int(input_rate * self.step_s))
        if times_file is not None:
            count = min(count, 65_000)
        if impl not in C_FORWARDERS:
            fwd.ask("reset")
        sink.ask("reset")
        cpu_before = fwd.cpu_s()
        senders = []
        for w, port in enumerate(ports):
            argv = [str(self.tools), "send", str(port), str(self.packet_file(profile, w, count))]
            argv += [str(input_rate), str(count)]
            if times_file is not None:
                argv.append(str(times_file))
            senders.append(Child(argv))
        results = [s.read_line(timeout_s=self.step_s * 4 + 10).split() for s in senders]
        for s in senders:
            s.close()
        stopped = max(int(r[3]) for r in results)
        sent = sum(int(r[1]) for r in results)
        time.sleep(0.2)
        _, received, last = sink.ask("report").split()
        cpu = fwd.cpu_s() - cpu_before
        if arrival_file is not None:
            sink.ask(f"latency {arrival_file}")
        expected = sent * receivers
        loss = 1 - int(received) / expected
        late_ms = max(0.0, (int(last) - stopped) / 1e6)
        # Each sender must have kept its pace; otherwise the sender is the bottleneck.
        slowest = min(int(r[1]) / max(1e-9, (int(r[3]) - int(r[2])) / 1e9) for r in results)
        step = Step(
            output_rate=output_rate,
            passed=loss < MAX_LOSS and late_ms * 1e6 <= MAX_LATE_NS,
            loss=max(0.0, loss),
            late_ms=late_ms,
            cpu_us_per_output=cpu * 1e6 / max(1, int(received)),
            sender_limited=slowest < 0.95 * input_rate,
        )
        time.sleep(0.1 if step.passed else 0.5)  # let a backlog drain before the next step
        return step

    def search(
        self, impl: str, profile: str, receivers: int, workers: int, start_rate: float
    ) -> Result:
        result = Result(impl, profile, receivers, workers)
        sink, fwd, ports = self.start(impl, profile, receivers, workers)
        try:
            rate = start_rate
            low, high = 0.0, 0.0
            for _ in range(14):
                step = self.run_step(impl, profile, receivers, workers, sink, fwd, ports, rate)
                if not step.passed:  # one retry: this shared VM has multi-ms hiccups
                    step = self.run_step(impl, profile, receivers, workers, sink, fwd, ports, rate)
                result.steps.append(step)
                if step.passed and step.sender_limited:
                    break  # the sender, not the forwarder, is the limit
                if step.passed:
                    low = rate
                    if high:
                        rate = (low + high) / 2
                    else:
                        rate *= 1.5
                else:
                    high = rate
                    if not low:
                        rate /= 2
                    else:
                        rate = (low + high) / 2
                if low and high and high / low < 1.08:
                    break
        finally:
            fwd.close()
            sink.close()
        return result

    def latency(
        self, impl: str, profile: str, receivers: int, output_rate: float
    ) -> tuple[float, float]:
        """p50 and p99 sender-to-sink latency in ms at `output_rate` (receiver 0's copies)."""
        sink, fwd, ports = self.start(impl, profile, receivers, 1)
        times_file = self.workdir / "send-times.bin"
        arrival_file = self.workdir / "arrivals.bin"
        try:
            self.run_step(
                impl,
                profile,
                receivers,
                1,
                sink,
                fwd,
                ports,
                output_rate,
                times_file=times_file,
                arrival_file=arrival_file,
            )
        finally:
            fwd.close()
            sink.close()
        sent = times_file.read_bytes()
        sent_ns = struct.unpack(f"<{len(sent) // 8}Q", sent)
        arrivals = struct.unpack("<65536Q", arrival_file.read_bytes())
        delays = sorted(
            (arrivals[i] - t) / 1e6
            for i, t in enumerate(sent_ns)
            if arrivals[i] and arrivals[i] > t
        )
        if not delays:
            return float("nan"), float("nan")
        return delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]


# -- reporting ----------------------------------------------------------------------------------


def _fmt(step: Step | None) -> str:
    if step is None:
        return "no passing step"
    note = " (sender-limited)" if step.sender_limited else ""
    per_core = 1e6 / step.cpu_us_per_output if step.cpu_us_per_output else float("inf")
    return (
        f"{step.output_rate:>9,.0f} out/s  loss {step.loss:.4%}  late {step.late_ms:5.1f} ms  "
        f"cpu {step.cpu_us_per_output:5.2f} us/out (~{per_core:,.0f}/s per core){note}"
    )


def build_tools(workdir: Path) -> Path:
    source = workdir / "bench_tools.c"
    source.write_text(C_SOURCE)
    binary = workdir / "bench_tools"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(source)], check=True, timeout=120)
    return binary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short steps, fewer cases")
    args = parser.parse_args()
    started = time.monotonic()
    step_s = 0.4 if args.quick else 1.0
    fan_outs = (10,) if args.quick else (1, 10, 50)
    profiles = PROFILES[:1] if args.quick else PROFILES
    from accord.media.forward import IMPLEMENTATIONS

    if "cython" not in IMPLEMENTATIONS:
        sys.exit("build the extension first: python setup.py build_ext --inplace")
    with tempfile.TemporaryDirectory(prefix="sfu-bench-") as tmp:
        bench = Bench(build_tools(Path(tmp)), Path(tmp), step_s)
        print(
            f"# sfu_bench: {os.cpu_count()} CPUs, {step_s:.1f} s per rate step, pass = loss "
            f"< {MAX_LOSS:.1%} and last packet <= {MAX_LATE_NS / 1e6:.0f} ms after the sender stops"
        )
        results: dict[tuple[str, str, int, int], Result] = {}
        for k in fan_outs:
            for impl in C_FORWARDERS:
                r = bench.search(impl, PROFILES[0], k, 1, 100_000)
                results[(impl, "-", k, 1)] = r
                print(f"{impl:<12} K={k:<3}              {_fmt(r.best)}", flush=True)
            for profile in profiles:
                cases = [("cython", 100_000.0), ("reference", 10_000.0)]
                if profile == PROFILES[0]:
                    cases.insert(1, ("cython-nogso", 100_000.0))
                for impl, start_rate in cases:
                    r = bench.search(impl, profile, k, 1, start_rate)
                    results[(impl, profile, k, 1)] = r
                    print(f"{impl:<12} K={k:<3} {profile:<24} {_fmt(r.best)}", flush=True)
        print("\n# ratios at the best passing step (rate) and per forwarder core (CPU per output)")
        for k in fan_outs:
            limit = results[("c-limit", "-", k, 1)].best
            gso_limit = results[("c-gso", "-", k, 1)].best
            for profile in profiles:
                ref = results[("reference", profile, k, 1)].best
                for impl in ("cython", "cython-nogso"):
                    ours = results.get((impl, profile, k, 1), Result(impl, profile, k, 1)).best
                    if not (ours and limit and gso_limit and ref):
                        continue
                    print(
                        f"K={k:<3} {profile:<24} {impl:<12} rate: "
                        f"{ours.output_rate / limit.output_rate:4.0%} of c-limit, "
                        f"{ours.output_rate / gso_limit.output_rate:4.0%} of c-gso, "
                        f"{ours.output_rate / ref.output_rate:4.1f}x reference | per core: "
                        f"{limit.cpu_us_per_output / ours.cpu_us_per_output:4.0%} of c-limit, "
                        f"{gso_limit.cpu_us_per_output / ours.cpu_us_per_output:4.0%} of c-gso, "
                        f"{ref.cpu_us_per_output / ours.cpu_us_per_output:4.1f}x reference"
                    )
        if not args.quick:
            # Real rooms: several speakers with variable (VBR) sizes, so runs of equal sizes
            # per receiver are short and UDP GSO groups less than with one constant stream.
            bench.speakers = SPEAKERS
            print(
                f"\n# {SPEAKERS} speakers, VBR payloads 40-200 bytes, K=10, {PROFILES[0]}",
                flush=True,
            )
            vbr: dict[str, Step | None] = {}
            for impl in ("c-limit", "c-gso", "cython", "cython-nogso"):
                vbr[impl] = bench.search(impl, PROFILES[0], 10, 1, 100_000).best
                print(f"{impl:<12} K=10  VBR x{SPEAKERS}                  {_fmt(vbr[impl])}")
            gso, plain = vbr["cython"], vbr["cython-nogso"]
            if gso and plain:
                print(
                    f"UDP GSO gain with {SPEAKERS} VBR speakers: "
                    f"{plain.cpu_us_per_output / gso.cpu_us_per_output:.2f}x per core, "
                    f"{gso.output_rate / plain.output_rate:.2f}x rate"
                )
            bench.speakers = 1
        k = 10
        profile = PROFILES[0]
        ours = results[("cython", profile, k, 1)].best
        if ours is not None:
            half = ours.output_rate / 2
            print(
                f"\n# latency, sender's send call -> kernel receive at the sink, at {half:,.0f} "
                f"out/s (half of cython's best), K={k}; median of 3 interleaved runs"
            )
            # The C forwarder sending like ours (GSO): the plain one saturates below this rate.
            runs: dict[str, list[tuple[float, float]]] = {"c-gso": [], "cython": []}
            for _ in range(3):
                for impl, samples in runs.items():
                    samples.append(bench.latency(impl, profile, k, half))
            for impl, samples in runs.items():
                p50 = sorted(s[0] for s in samples)[1]
                p99 = sorted(s[1] for s in samples)[1]
                print(f"{impl:<12} p50 {p50:6.3f} ms   p99 {p99:6.3f} ms", flush=True)
            print(f"\n# ACCORD_SFU_WORKERS=2: two forwarder threads, two rooms, K={k}, {profile}")
            two = bench.search("cython", profile, k, 2, ours.output_rate)
            best = two.best
            print(f"cython x2    K={k:<3} {profile:<24} {_fmt(best)}")
            if best is not None:
                print(
                    f"scaling vs one worker: {best.output_rate / ours.output_rate:.2f}x "
                    f"(sender, sink and both workers share {os.cpu_count()} CPUs); CPU per "
                    f"output {best.cpu_us_per_output:.2f} us vs {ours.cpu_us_per_output:.2f} us "
                    f"with one worker: the two threads keep "
                    f"{ours.cpu_us_per_output / best.cpu_us_per_output:.0%} of one's efficiency"
                )
        print(f"\n# total bench time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "_serve":
        serve_forwarder(
            sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        )
    else:
        main()
