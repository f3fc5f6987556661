"""Duplex vein mapping: the vein map data model, the leg diagram, diameters from vessel contours."""
