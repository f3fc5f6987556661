"""``echosclero dicom-forward``: the queue of forwards to the PACS (received images, SRs sent): list, retry,
re-arm."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
The forwarding queue: every object the receiver stores (with --forward) and every SR sent to the PACS
(export --send, POST /api/sessions/ID/send-sr) is kept with its forward state:

  pending    not tried yet
  retrying   the last attempt failed (its error is kept); tried again after a wait that doubles after
             each failure (--retry-after, 60 s, then 2, 4, 8 ... minutes, at most 1 hour)
  forwarded  delivered
  failed     the last of --max-attempts attempts (default 8) failed: no retry touches it; --requeue it

A running `echosclero dicom-receive` retries the due ones by itself; this command does it by hand or
from cron. Every attempt is written to the audit log (user "cli"). Exit status 1 when an attempt failed.
"""

EPILOG = """\
examples:
  echosclero dicom-forward --list                    what is not delivered yet, with the last error
  echosclero dicom-forward --retry                   try the ones whose wait is over
  echosclero dicom-forward --retry --now             try every pending and retrying one now
  echosclero dicom-forward --requeue 17              re-arm a failed one and try it now
  echosclero dicom-forward --retry --to PACS@10.0.0.7:104   for objects queued without a PACS of their own
"""


def register(subparsers) -> None:
    from echosclero.commands._record import add_database_option

    p = subparsers.add_parser("dicom-forward", help="list, retry or re-arm the forwards to the PACS",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="list the forwards not delivered (or of --status)")
    what.add_argument("--retry", action="store_true", help="try the pending forwards and those whose wait is over")
    what.add_argument("--requeue", type=int, action="append", metavar="ID",
                      help="re-arm instance ID (a failed one included) and try it now; repeat for more")
    p.add_argument("--status", choices=("pending", "retrying", "failed", "forwarded"), action="append",
                   help="with --list: only these states (default: all but forwarded)")
    p.add_argument("--now", action="store_true", help="with --retry: do not wait for the retry time")
    p.add_argument("--to", metavar="AE@HOST:PORT", help="the PACS for objects queued without one")
    p.add_argument("--max-attempts", type=int, default=8, metavar="N",
                   help="attempts before an object is left 'failed' (default 8)")
    p.add_argument("--retry-after", type=float, default=60.0, metavar="S",
                   help="wait after the first failure, doubled after each further one (default 60)")
    add_database_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from echosclero.commands._record import sessionmaker_for
    from echosclero.errors import InputError
    from echosclero.interop.dicomnet import parse_peer
    from echosclero.interop.dicomqueue import RetryPolicy, audit_to, due, forward, requeue
    from echosclero.store.db import commit
    from echosclero.store.models import DicomInstance

    policy = RetryPolicy(max_attempts=args.max_attempts, base_s=args.retry_after,
                         max_wait_s=max(3600.0, args.retry_after))
    peer = parse_peer(args.to) if args.to else None
    with sessionmaker_for(args)() as db:
        if args.list:
            wanted = args.status or ["pending", "retrying", "failed"]
            rows = db.scalars(select(DicomInstance).where(DicomInstance.forward_status.in_(wanted))
                              .order_by(DicomInstance.id)).all()
            print("id\tstatus\tattempts\tnext (UTC)\tpeer\tpatient\tSOP Instance UID\tlast error")
            for r in rows:
                nxt = f"{r.next_forward_at:%Y-%m-%d %H:%M:%S}" if r.next_forward_at else "-"
                print(f"{r.id}\t{r.forward_status}\t{r.forward_attempts}\t{nxt}\t{r.forward_peer or '-'}\t"
                      f"{r.patient_id or '-'}\t{r.sop_instance_uid}\t{r.forward_error or '-'}")
            print(f"{len(rows)} forward(s)")
            return 0
        if args.requeue:
            insts = []
            for ident in args.requeue:
                inst = db.get(DicomInstance, ident)
                if inst is None:
                    raise InputError(f"no DICOM instance {ident} in the record (see --list)")
                if inst.forward_status == "forwarded" and peer is None:
                    raise InputError(f"instance {ident} was delivered to {inst.forward_peer} already; "
                                     "give --to to send it elsewhere")
                requeue(inst, peer)
                insts.append(inst)
            commit(db)
        else:
            insts = due(db, ignore_wait=args.now)
        who = audit_to(db, username="cli", method="C-STORE", path="echosclero dicom-forward")
        outcomes = forward(db, insts, policy=policy, commit=lambda: commit(db), audit=who, default_peer=peer,
                           ignore_wait=args.now or bool(args.requeue))
    for o in outcomes:
        print(o.line())
    failed = [o for o in outcomes if o.error is not None]
    print(f"{len(outcomes) - len(failed)} forwarded, {len(failed)} failed")
    return 1 if failed else 0
