"""`accord voice-client`: join a voice channel and send a generated test stream.

    accord voice-client --url http://127.0.0.1:39099 --username ana --password ... \\
        --channel 1234 [--duration 10] [--mute] [--deaf]

Signs in over REST (or uses --token "Bearer x" / "Bot x"), identifies on the gateway, joins
the channel with op 9, connects to the node from `voice.server_update`, sends Opus-sized
synthetic frames at 50 packets/s and prints what it receives from each peer every second.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import httpx
import trio

if TYPE_CHECKING:
    from accord.client.voice import VoiceConnection

FRAME_INTERVAL_S = 0.02


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("voice-client", help="join a voice channel and send a test stream")
    parser.add_argument("--url", required=True, help="main server base URL, e.g. http://host:39099")
    parser.add_argument("--channel", required=True, help="voice channel id")
    parser.add_argument("--token", help='"Bearer <token>" or "Bot <token>"')
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to stay (0: forever)")
    parser.add_argument("--mute", action="store_true", help="join self-muted (send nothing)")
    parser.add_argument("--deaf", action="store_true", help="join self-deafened")
    parser.add_argument("--mode", help="SRTP mode to select (default: the node's first)")
    parser.set_defaults(handler=_run_cli)


def _run_cli(_settings: Any, args: argparse.Namespace) -> int:
    try:
        trio.run(run_voice_client, args)
    except (httpx.HTTPError, OSError) as exc:
        print(f"accord voice-client: {exc}", file=sys.stderr)
        return 1
    except _ClientError as exc:
        print(f"accord voice-client: {exc}", file=sys.stderr)
        return 1
    return 0


class _ClientError(Exception):
    pass


async def _token(http: httpx.AsyncClient, args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    if not (args.username and args.password):
        raise _ClientError("give --token, or --username and --password")
    r = await http.post(
        "/api/v1/auth/login", json={"username": args.username, "password": args.password}
    )
    body = r.json()
    if "error" in body:
        raise _ClientError(f"login failed: {body['error'].get('message')}")
    return f"Bearer {body['data']['token']}"


async def run_voice_client(args: argparse.Namespace) -> None:
    # Imported here: the server imports this module for its command line, and the voice
    # stack (SRTP) has no business in a server process's memory.
    from accord.client.gateway import open_gateway
    from accord.client.voice import VoiceServer, open_voice

    base = args.url.rstrip("/")
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        token = await _token(http, args)
        r = await http.get(f"/api/v1/channels/{args.channel}", headers={"Authorization": token})
        body = r.json()
        if "error" in body:
            raise _ClientError(f"channel {args.channel}: {body['error'].get('message')}")
        space_id = body["data"]["space_id"]
    ws_url = base.replace("https://", "wss://").replace("http://", "ws://") + "/ws"
    async with open_gateway(ws_url, token) as gateway:
        await gateway.update_voice_state(
            space_id, args.channel, self_mute=args.mute, self_deaf=args.deaf
        )
        update = await gateway.wait_for(
            "voice.server_update", lambda d: d.get("channel_id") == args.channel
        )
        if update.get("backend") != "custom":
            raise _ClientError(f"this channel uses the {update.get('backend')} backend")
        server = VoiceServer.from_update(update)
        async with open_voice(server, mode=args.mode) as voice:
            voice.keep_sequences = False
            print(f"joined channel {args.channel} as ssrc {voice.ssrc} ({voice.mode})", flush=True)
            if args.mute or args.deaf:
                await voice.set_state(self_mute=args.mute, self_deaf=args.deaf)
            with trio.move_on_after(args.duration if args.duration > 0 else float("inf")):
                async with trio.open_nursery() as nursery:
                    if not args.mute:
                        nursery.start_soon(_send_stream, voice)
                    nursery.start_soon(_print_stats, voice)
                    await voice.closed.wait()
                    print(f"node closed the session (code {voice.close_code})", flush=True)
                    nursery.cancel_scope.cancel()
            _print_once(voice)
        await gateway.update_voice_state(space_id, None)


async def _send_stream(voice: VoiceConnection) -> None:
    next_at = trio.current_time()
    while True:
        await voice.send_frame()
        next_at += FRAME_INTERVAL_S
        await trio.sleep_until(next_at)


async def _print_stats(voice: VoiceConnection) -> None:
    while True:
        await trio.sleep(1)
        _print_once(voice)


def _print_once(voice: VoiceConnection) -> None:
    if not voice.stats:
        print("  (nothing received yet)", flush=True)
    for peer, stats in sorted(voice.stats_by_user().items()):
        print(
            f"  from {peer}: {stats.packets} packets, {stats.octets} bytes, lost {stats.lost},"
            f" out of order {stats.out_of_order}, corrupted {stats.corrupted}",
            flush=True,
        )
