"""Clinical domain rules with no I/O: vein segments, classification, dosing, aftercare, follow-up.

Every number enforced here carries its published source next to it (see ``docs/clinical.md``).
"""
