"""Slow clients against gunicorn alone and behind deploy/nginx.conf: how long /healthz waits.

    python -m bench.slow_clients [--clients 12] [--part header|body] [--threads 8] [--wait 30]
        [--model FOLDER]

1. Starts `kb serve` (the memory backend, KB_THREADS=--threads) and nginx with deploy/nginx.conf
   in front of it (Debian's nginx, a temporary prefix: see bench/proxy.py).
2. Opens --clients connections straight to gunicorn that send a request line and then one header
   byte a second (--part header), or whole headers and then one byte a second of a JSON body
   (--part body), and times GET /healthz on gunicorn, giving up after --wait seconds.
3. Closes them, waits until /healthz answers again, then does the same through nginx: the slow
   connections and the /healthz both go to nginx's port.
4. Prints both times (or "no answer within N s") and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.proxy import NGINX, OPENINGS, Nginx, SlowClients, healthz, wait_until_healthy
from bench.service import BenchError, add_service_arguments, service_from_args


def timed_healthz(port: int, wait: float) -> float | None:
    """Seconds until /healthz answered 200, or None when it did not within `wait` seconds."""
    started = time.perf_counter()
    status = healthz(port, timeout=wait)
    return time.perf_counter() - started if status == 200 else None


def under_attack(port: int, clients: int, part: str, wait: float) -> float | None:
    with SlowClients(port, clients, seconds=wait + 10, part=part):
        time.sleep(1)  # every slow client has sent its first bytes
        return timed_healthz(port, wait)


def shown(seconds: float | None, wait: float) -> str:
    return f"no answer within {wait:g} s" if seconds is None else f"200 in {seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=12, help="slow connections (default 12)")
    parser.add_argument("--part", choices=sorted(OPENINGS), default="header", help="what is slow")
    parser.add_argument("--wait", type=float, default=30, help="give /healthz this long (s)")
    add_service_arguments(parser, threads=8)
    args = parser.parse_args()
    if NGINX is None:
        raise BenchError("nginx is not installed (apt-get install nginx)")
    with service_from_args(args) as service:
        port = int(service.url.rsplit(":", 1)[1])
        nginx = Nginx(port)
        try:
            nginx.start()
            direct = under_attack(port, args.clients, args.part, args.wait)
            wait_until_healthy(port)
            proxied = under_attack(nginx.port, args.clients, args.part, args.wait)
        finally:
            nginx.stop()
    print(f"{args.clients} clients with a slow {args.part}, KB_THREADS={args.threads}:")
    print(f"  /healthz on gunicorn:        {shown(direct, args.wait)}")
    print(f"  /healthz through nginx:      {shown(proxied, args.wait)}")
    line = {
        "clients": args.clients,
        "part": args.part,
        "threads": args.threads,
        "wait_s": args.wait,
    }
    line |= {"direct_s": direct, "proxied_s": proxied}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
