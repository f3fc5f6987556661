"""Peers of the guidance engine, for ``benchmarks/bench_peers.py``: pipelines a user would pick instead.

* :mod:`.train_unet` trains a small U-Net lumen segmenter on simulator frames (seeds 100-999) and exports
  ``unet_lumen.onnx`` with its provenance ``unet_lumen.json`` (needs PyTorch: ``make train-unet``);
* :mod:`.onnx_peer` runs it with onnxruntime alone (``UnetPeer``: frame -> labels -> vessels in mm);
* :mod:`.fast_peer` runs the same model inside FAST's ``SegmentationNetwork`` (optional ``peers`` group);
* :mod:`.masks` holds the shared truth-mask and input definitions.
"""
