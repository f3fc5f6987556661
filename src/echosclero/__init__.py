"""EchoSclero: an open-source workstation for ultrasound-guided sclerotherapy of leg veins."""

__version__ = "0.1.0"
