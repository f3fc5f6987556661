"""``echosclero dicom-receive``: the DICOM receiver for the scanner (C-STORE, C-ECHO), forwarding to a PACS."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Receive images from the scanner over DICOM (C-STORE and C-ECHO) until Ctrl-C.

Only the calling AE titles given with --allow may connect (others are rejected at association). Accepted:
US images and cines, secondary captures and structured reports; any other SOP class is refused at
negotiation. Each object is stored under --store (STUDY/SERIES/SOP.dcm), then

  - filed under the patient whose record number is its Patient ID, or put on the unmatched queue
    (GET /api/dicom/unmatched; file one with POST /api/dicom/instances/ID/file);
  - analysed (images and cines: vessels, needle, foam, alerts on the first --analyse-frames frames);
  - forwarded to --forward AE@HOST:PORT (a PACS), when given, through the forwarding queue: a failure is
    kept on the object and retried after a wait that doubles (--retry-after, 60 s ... at most 1 h) until
    --max-attempts (8) have failed; the receiver also retries every due forward of the record (SRs sent
    included); see `echosclero dicom-forward --list`.

Statuses answered: 0x0000 stored; 0xC210 the data set cannot be decoded; 0xA900 it does not match its SOP
class or lacks Patient ID / Study / Series UID; 0xA700 it could not be stored. Nothing refused is stored,
and a refused object never stops the receiver. One line per object is printed.
"""

EPILOG = """\
examples:
  echosclero dicom-receive --allow SCANNER1 --port 11112
  echosclero dicom-receive --allow SCANNER1 --allow STORESCU --forward PACS@10.0.0.7:104
  echoscu -aet SCANNER1 -aec ECHOSCLERO 127.0.0.1 11112       # check from the scanner's side (dcmtk)
  storescu -aet SCANNER1 -aec ECHOSCLERO 127.0.0.1 11112 cine.dcm
"""


def register(subparsers) -> None:
    from echosclero.commands._record import add_database_option

    p = subparsers.add_parser("dicom-receive", help="receive US images over DICOM, file, analyse, forward to a PACS",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ae-title", default="ECHOSCLERO", help="this receiver's AE title (default ECHOSCLERO)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)")
    p.add_argument("--port", type=int, default=11112, help="TCP port (default 11112)")
    p.add_argument("--allow", action="append", default=[], metavar="AE_TITLE", required=True,
                   help="a calling AE title allowed to send (repeat for each scanner)")
    p.add_argument("--store", metavar="DIR",
                   help="where received files go (default: ECHOSCLERO_DICOM_DIR, else DATA_DIR/dicom)")
    p.add_argument("--forward", metavar="AE@HOST:PORT", help="forward every stored object to this PACS")
    p.add_argument("--max-attempts", type=int, default=8, metavar="N",
                   help="forward attempts before an object is left 'failed' (default 8)")
    p.add_argument("--retry-after", type=float, default=60.0, metavar="S",
                   help="wait after a failed forward, doubled after each further failure (default 60)")
    p.add_argument("--analyse-frames", type=int, default=30, metavar="N",
                   help="analyse at most N frames of each image or cine (default 30)")
    p.add_argument("--no-analyse", dest="analyse", action="store_false", help="store and forward only")
    add_database_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading
    from pathlib import Path

    from echosclero.commands._record import sessionmaker_for
    from echosclero.interop.dicomnet import Receiver, ReceiverConfig, parse_peer
    from echosclero.interop.dicomqueue import default_dicom_dir

    config = ReceiverConfig(
        storage_dir=Path(args.store) if args.store else default_dicom_dir(),
        allowed_calling_aes=frozenset(args.allow),
        ae_title=args.ae_title,
        host=args.host,
        port=args.port,
        forward_to=parse_peer(args.forward) if args.forward else None,
        analyse_frames=args.analyse_frames,
        analyse=args.analyse,
        max_forward_attempts=args.max_attempts,
        retry_base_s=args.retry_after,
        retry_poll_s=min(15.0, args.retry_after),
    )
    receiver = Receiver(config, sessionmaker_for(args), on_event=lambda line: print(line, flush=True))
    receiver.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"listening as {config.ae_title} on {config.host}:{receiver.port}; allowed: "
          f"{', '.join(sorted(config.allowed_calling_aes))}; storing in {config.storage_dir}"
          + (f"; forwarding to {config.forward_to}" if config.forward_to else ""), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        receiver.stop()
        c = receiver.counts
        print(f"stopped: {c['stored']} stored, {c['refused']} refused, {c['analysed']} analysed, "
              f"{c['forwarded']} forwarded, {c['forward_failed']} forward failures", flush=True)
    return 0
