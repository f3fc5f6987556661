"""Load benchmark of the clinic-record API: p50/p95/p99 latency at a fixed request rate (open loop).

Starts ``echosclero serve [--workers N]`` on a free loopback port with a fresh database (SQLite file;
PostgreSQL too when ``ECHOSCLERO_TEST_POSTGRES_URL`` is set), seeds users, patients and sessions, then
sends a realistic mix at ``--rate`` requests/s for ``--duration`` s from one asyncio client on the same
machine, so the client shares the CPU with the server. The client speaks HTTP/1.1 over keep-alive
connections itself (a few hundred microseconds of CPU per request; httpx cost 2-4 ms, as much as the server).
Records the CPU time of client and server, the load average before and after, and the machine. Writes
``benchmarks/results/api_load.json``.

Mix (weights): read a patient 30, read a session with its injections and totals 15, search patients 10,
list follow-ups 10, aftercare instructions 5, record an injection 15 (dose checks), register a patient 10,
book an appointment 5.

    .venv/bin/python benchmarks/bench_api_load.py [--rate 200] [--duration 60] [--backend sqlite|postgres|all]
                                                  [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopq"
MIX = [
    ("get_patient", 30),
    ("get_session", 15),
    ("search", 10),
    ("followups", 10),
    ("instructions", 5),
    ("post_injection", 15),
    ("post_patient", 10),
    ("post_appointment", 5),
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed_users(url: str) -> str:
    from sqlalchemy.orm import Session

    from echosclero.api.security import create_token, hash_password
    from echosclero.store.db import make_engine
    from echosclero.store.migrate import upgrade
    from echosclero.store.models import User

    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as db:
        u = User(username="bench", role="physician", password_hash=hash_password("bench-password"), active=True)
        db.add(u)
        db.commit()
        token = create_token(user_id=u.id, role="physician", secret=SECRET, minutes=120)
    engine.dispose()
    return token


async def _seed(c: httpx.AsyncClient, n_patients: int) -> tuple[list[int], list[int]]:
    pids, sids = [], []
    today = date.today().isoformat()
    for i in range(n_patients):
        r = await c.post(
            "/api/patients",
            json={
                "family_name": f"Bench{i:04d}",
                "given_name": "P",
                "birth_date": "1965-04-03",
                "sex": "female",
                "weight_kg": 75,
            },
        )
        pid = r.json()["id"]
        await c.post(f"/api/patients/{pid}/candidacy", json={"assessed_on": today, "present": []})
        s = await c.post(f"/api/patients/{pid}/sessions", json={"date": today, "limb": "left"})
        pids.append(pid)
        sids.append(s.json()["id"])
    return pids, sids


def _request(kind: str, pids: list[int], sids: list[int], rng: random.Random) -> tuple[str, str, dict | None]:
    """(method, path, JSON body) of one request of the mix."""
    pid, sid = rng.choice(pids), rng.choice(sids)
    if kind == "get_patient":
        return "GET", f"/api/patients/{pid}", None
    if kind == "get_session":
        return "GET", f"/api/sessions/{sid}", None
    if kind == "search":
        return "GET", f"/api/patients?q=bench{rng.randrange(100):02d}&limit=20", None
    if kind == "followups":
        return "GET", f"/api/patients/{pid}/followups", None
    if kind == "instructions":
        return "GET", f"/api/patients/{pid}/instructions?regimen=spider", None
    if kind == "post_injection":  # small doses: 0.1 mL of 0.5% liquid into spider veins (0.5 mg)
        body = {
            "segment": "TEL",
            "agent": "polidocanol",
            "concentration_pct": 0.5,
            "volume_ml": 0.1,
            "form": "liquid",
            "ultrasound_confirmed": True,
        }
        return "POST", f"/api/sessions/{sid}/injections", body
    if kind == "post_patient":
        body = {
            "family_name": f"New{rng.randrange(10**6)}",
            "given_name": "Q",
            "birth_date": "1980-01-01",
            "sex": "male",
            "weight_kg": 82,
        }
        return "POST", "/api/patients", body
    # one 31-minute slot per booking: a patient cannot be double-booked (409), whichever patient it draws
    start = (datetime.now(UTC) + timedelta(days=3, minutes=31 * next(_SLOTS))).isoformat()
    return "POST", "/api/appointments", {"patient_id": pid, "kind": "followup", "start": start}


_SLOTS = itertools.count()


class _Client:
    """Keep-alive HTTP/1.1 connections to one server, opened as needed, each carrying one request at a time.

    A connection idle for longer than ``IDLE_S`` is not reused: the server closes idle connections after 5 s
    (uvicorn's keep-alive timeout), and a request written into one it has just closed is lost unanswered."""

    IDLE_S = 3.0

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n".encode()
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since < self.IDLE_S:
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: dict | None) -> int:
        reader, writer = await self._conn()
        data = b"" if body is None else json.dumps(body).encode()
        extra = b"Content-Type: application/json\r\n" if body is not None else b""
        writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self.head
            + extra
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer, time.monotonic()))
        return status

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def _load(base: str, token: str, rate: float, duration: float, seed: int) -> dict:
    rng = random.Random(seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        pids, sids = await _seed(c, 200)
    host, port = base.removeprefix("http://").split(":")
    client = _Client(host, int(port), token)
    lat: dict[str, list[float]] = {k: [] for k, _ in MIX}
    codes: dict[str, int] = {}
    errors = 0

    async def fire(kind):
        nonlocal errors
        method, path, body = _request(kind, pids, sids, rng)
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(60):
                status = await client.request(method, path, body)
            codes[str(status)] = codes.get(str(status), 0) + 1
            if status >= 400:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
            errors += 1
            codes[type(exc).__name__] = codes.get(type(exc).__name__, 0) + 1
        lat[kind].append(time.perf_counter() - t0)

    tasks = []
    n = int(rate * duration)
    t_start = time.perf_counter()
    for i in range(n):  # open loop: request i is sent at t_start + i / rate, whatever the server does
        delay = t_start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(rng.choice(kinds))))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t_start
    client.close()
    every = sorted(x for v in lat.values() for x in v)

    def pct(xs, q):
        return round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 1) if xs else None

    return {
        "requests": len(every),
        "wall_s": round(wall, 1),
        "achieved_rps": round(len(every) / wall, 1),
        "p50_ms": pct(every, 0.50),
        "p95_ms": pct(every, 0.95),
        "p99_ms": pct(every, 0.99),
        "max_ms": round(1000 * every[-1], 1),
        "errors": errors,
        "status_codes": codes,
        "per_kind_p99_ms": {k: pct(sorted(v), 0.99) for k, v in lat.items()},
    }


def _cpu_s(pid: int) -> float:
    """CPU seconds of a process and its children (uvicorn workers), from /proc (Linux); 0 elsewhere."""
    total = 0.0
    try:
        kids = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        for p in [pid, *kids]:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return total


def run_backend(name: str, url: str, rate: float, duration: float, *, workers: int = 1) -> dict:
    token = _seed_users(url)
    port = _port()
    env = os.environ | {"ECHOSCLERO_DATABASE_URL": url, "ECHOSCLERO_SECRET_KEY": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "echosclero", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        load_before = os.getloadavg()
        client0 = resource.getrusage(resource.RUSAGE_SELF)
        server0 = _cpu_s(proc.pid)
        result = asyncio.run(_load(base, token, rate, duration, seed=7))
        client1 = resource.getrusage(resource.RUSAGE_SELF)
        server1 = _cpu_s(proc.pid)
        load_after = os.getloadavg()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    client_cpu = client1.ru_utime + client1.ru_stime - client0.ru_utime - client0.ru_stime
    return {
        "backend": name,
        "workers": workers,
        "rate_rps": rate,
        "duration_s": duration,
        **result,
        "client_cpu_s": round(client_cpu, 1),
        "server_cpu_s": round(server1 - server0, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }


def _machine() -> dict:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    ap.add_argument("--workers", type=int, default=1, help="server processes (echosclero serve --workers)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "api_load.json"))
    args = ap.parse_args(argv)
    if not (0 < args.rate <= 1000 and 0 < args.duration <= 600 and 1 <= args.workers <= 8):
        ap.error("--rate must be in (0, 1000], --duration in (0, 600] and --workers in [1, 8] (bounded load)")
    runs = []
    if args.backend in ("sqlite", "all"):
        folder = Path(tempfile.mkdtemp(prefix="echosclero-bench-"))
        url = f"sqlite:///{folder / 'clinic.db'}"
        runs.append(run_backend("sqlite", url, args.rate, args.duration, workers=args.workers))
        print(json.dumps(runs[-1]))
    pg = os.environ.get("ECHOSCLERO_TEST_POSTGRES_URL")
    if args.backend in ("postgres", "all"):
        if pg:
            from echosclero.store.db import make_engine
            from echosclero.store.migrate import upgrade
            from echosclero.store.testing import postgres_database, reset_postgres

            url = postgres_database(pg, "bench")
            e = make_engine(url)
            upgrade(e)
            reset_postgres(e)
            e.dispose()
            runs.append(run_backend("postgresql", url, args.rate, args.duration, workers=args.workers))
            print(json.dumps(runs[-1]))
        else:
            print("bench_api_load: ECHOSCLERO_TEST_POSTGRES_URL not set; PostgreSQL skipped", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"schema": "echosclero.bench.api_load/2", **_machine(), "runs": runs}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
