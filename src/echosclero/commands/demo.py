"""``echosclero demo``: the main job — a simulated ultrasound-guided injection a person can watch."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = """\
Run a simulated ultrasound-guided foam sclerotherapy of the great saphenous vein (thigh, transverse view:
in-plane needle, foam filling the lumen, vein spasm) and write what a person can look at:

  OUT/gsv_injection.mp4                 the cine (H.264), with a millimetre scale
  OUT/gsv_injection_contact_sheet.png   eight moments of it on one page
  OUT/gsv_injection.dcm, OUT/truth.json the US DICOM cine and its ground truth

Where the guidance engine is available its overlays (vessels, needle tip, foam, alerts) are drawn.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: a simulated guided injection -> MP4 + contact sheet",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.add_argument("--scenario", default="gsv_injection", help="scenario to run (default gsv_injection)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echosclero.commands.simulate import simulate_to_folder

    paths = simulate_to_folder(args.scenario, args.out, seed=args.seed, preview=True, progress=True)
    print("wrote:")
    for kind, path in paths.items():
        print(f"  {kind:14s} {path}")
    return 0
