"""``echosclero demo``: the main job — a simulated ultrasound-guided injection a person can watch."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = """\
Run a simulated ultrasound-guided foam sclerotherapy of the great saphenous vein (thigh, transverse view:
in-plane needle, foam filling the lumen, vein spasm) and write what a person can look at:

  OUT/gsv_injection_guided.mp4                the cine (H.264) with the guidance engine's findings:
                                              vessel contours (blue vein, red artery, yellow unknown),
                                              needle tip, foam, alert banner, millimetre scale
  OUT/gsv_injection_guided_contact_sheet.png  eight moments of it on one page
  OUT/analysis.json                           the findings per frame (the `echosclero analyze` schema)
  OUT/gsv_injection.dcm, OUT/truth.json       the US DICOM cine and its ground truth
  OUT/gsv_injection.mp4, ..._contact_sheet.png  the same cine without overlays
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: a simulated guided injection -> MP4 + contact sheet",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.add_argument("--scenario", default="gsv_injection", help="scenario to run (default gsv_injection)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from tqdm import tqdm

    from echosclero.batch.analysis import analysis_document
    from echosclero.commands.simulate import simulate_to_folder, write_preview
    from echosclero.guidance import Engine
    from echosclero.render import draw_overlay
    from echosclero.sim import open_simulated_source

    paths = simulate_to_folder(args.scenario, args.out, seed=args.seed, preview=True, progress=True)
    # The guidance engine sees only the pixels and the calibration, as it would from a scanner.
    source = open_simulated_source(args.scenario, seed=args.seed)
    engine = Engine()
    frames, screens, results = [], [], []
    for frame in tqdm(source.frames(), total=source.n_frames, desc="guidance", unit="frame",
                      disable=not sys.stderr.isatty(), file=sys.stderr):
        result = engine.process(frame.with_(meta={}))
        frames.append(frame)
        screens.append(frame.pixels)
        results.append(result)
    by_index = {f.index: r for f, r in zip(frames, results, strict=True)}
    paths.update({f"guided {k}": v for k, v in write_preview(
        args.out, args.scenario, screens, frames, source.frame_time_s, suffix="_guided",
        annotate=lambda frame, _rgb: draw_overlay(frame, by_index[frame.index])).items()})
    analysis = args.out / "analysis.json"
    analysis.write_text(json.dumps(analysis_document(source.source_id, source.scene.calibration.to_json(),
                                                     [r.to_json() for r in results]), indent=1))
    paths["analysis"] = analysis
    print("wrote:")
    for kind, path in paths.items():
        print(f"  {kind:22s} {path}")
    return 0
