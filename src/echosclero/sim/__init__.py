"""The leg ultrasound simulator: phantoms with ground truth, imaged by a fast convolution model.

``open_simulated_source("gsv_injection", seed=3)`` gives a :class:`~echosclero.sources.base.Source` whose
frames carry their ground truth in ``frame.meta["truth"]``.
"""

from __future__ import annotations


def open_simulated_source(name: str, *, seed: int = 0, **options):
    from echosclero.sim.scenarios import SimulatedSource

    return SimulatedSource(name, seed=seed, **options)


def list_scenarios() -> list[tuple[str, str]]:
    from echosclero.sim.scenarios import SCENARIOS

    return [(s.name, s.description) for s in SCENARIOS.values()]
