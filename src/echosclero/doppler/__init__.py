"""Spectral Doppler analysis: velocity envelopes from a calibrated display or from IQ, and reflux timing.

Pure functions on arrays plus :class:`~echosclero.frames.SpectralCalibration`; no file I/O here.
"""
