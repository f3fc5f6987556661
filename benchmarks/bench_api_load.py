"""Load benchmark of the clinic-record API: p50/p95/p99 latency at a fixed request rate (open loop).

Starts ``echosclero serve`` on a free loopback port with a fresh database (SQLite file; PostgreSQL too
when ``ECHOSCLERO_TEST_POSTGRES_URL`` is set), seeds users, patients and sessions, then sends a realistic
mix at ``--rate`` requests/s for ``--duration`` s from one asyncio client on the same machine (so the
client shares the CPU with the server: the figures are conservative). Writes
``benchmarks/results/api_load.json``.

Mix (weights): read a patient 30, read a session with its injections and totals 15, search patients 10,
list follow-ups 10, aftercare instructions 5, record an injection 15 (dose checks), register a patient 10,
book an appointment 5.

    .venv/bin/python benchmarks/bench_api_load.py [--rate 200] [--duration 60] [--backend sqlite|postgres|all]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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


async def _one(c, kind, pids, sids, rng):
    pid, sid = rng.choice(pids), rng.choice(sids)
    if kind == "get_patient":
        return await c.get(f"/api/patients/{pid}")
    if kind == "get_session":
        return await c.get(f"/api/sessions/{sid}")
    if kind == "search":
        return await c.get("/api/patients", params={"q": f"bench{rng.randrange(100):02d}", "limit": 20})
    if kind == "followups":
        return await c.get(f"/api/patients/{pid}/followups")
    if kind == "instructions":
        return await c.get(f"/api/patients/{pid}/instructions", params={"regimen": "spider"})
    if kind == "post_injection":  # small doses: 0.1 mL of 0.5% liquid into spider veins (0.5 mg)
        return await c.post(
            f"/api/sessions/{sid}/injections",
            json={
                "segment": "TEL",
                "agent": "polidocanol",
                "concentration_pct": 0.5,
                "volume_ml": 0.1,
                "form": "liquid",
                "ultrasound_confirmed": True,
            },
        )
    if kind == "post_patient":
        return await c.post(
            "/api/patients",
            json={
                "family_name": f"New{rng.randrange(10**6)}",
                "given_name": "Q",
                "birth_date": "1980-01-01",
                "sex": "male",
                "weight_kg": 82,
            },
        )
    start = (datetime.now(UTC) + timedelta(days=rng.randrange(3, 60), minutes=rng.randrange(600))).isoformat()
    return await c.post("/api/appointments", json={"patient_id": pid, "kind": "followup", "start": start})


async def _load(base: str, token: str, rate: float, duration: float, seed: int) -> dict:
    rng = random.Random(seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    # several small connection pools: one large httpx pool becomes CPU-bound on its own queue under backlog
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    auth = {"Authorization": f"Bearer {token}"}
    clients = [httpx.AsyncClient(base_url=base, headers=auth, timeout=30, limits=limits) for _ in range(8)]
    try:
        pids, sids = await _seed(clients[0], 200)
        lat: dict[str, list[float]] = {k: [] for k, _ in MIX}
        codes: dict[str, int] = {}
        errors = 0

        async def fire(kind):
            nonlocal errors
            t0 = time.perf_counter()
            try:
                r = await _one(rng.choice(clients), kind, pids, sids, rng)
                codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
                if r.status_code >= 400:
                    errors += 1
            except httpx.HTTPError as exc:
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
    finally:
        for cl in clients:
            await cl.aclose()
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


def run_backend(name: str, url: str, rate: float, duration: float) -> dict:
    token = _seed_users(url)
    port = _port()
    env = os.environ | {"ECHOSCLERO_DATABASE_URL": url, "ECHOSCLERO_SECRET_KEY": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "echosclero", "serve", "--port", str(port)],
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
        result = asyncio.run(_load(base, token, rate, duration, seed=7))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return {"backend": name, "rate_rps": rate, "duration_s": duration, **result}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "api_load.json"))
    args = ap.parse_args(argv)
    if not (0 < args.rate <= 1000 and 0 < args.duration <= 600):
        ap.error("--rate must be in (0, 1000] and --duration in (0, 600] (bounded load, loopback only)")
    runs = []
    if args.backend in ("sqlite", "all"):
        folder = Path(tempfile.mkdtemp(prefix="echosclero-bench-"))
        runs.append(run_backend("sqlite", f"sqlite:///{folder / 'clinic.db'}", args.rate, args.duration))
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
            runs.append(run_backend("postgresql", url, args.rate, args.duration))
            print(json.dumps(runs[-1]))
        else:
            print("bench_api_load: ECHOSCLERO_TEST_POSTGRES_URL not set; PostgreSQL skipped", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "schema": "echosclero.bench.api_load/1",
                "cpu_count": os.cpu_count(),
                "python": sys.version.split()[0],
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
