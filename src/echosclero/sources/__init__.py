"""Ultrasound sources: each yields calibrated Frames (DICOM, video, OpenIGTLink, simulator)."""
