"""CEAP 2020 classification of chronic venous disorders, as a validated data type with a calculator.

Source: [guideline] Lurie F, Passman M, Meisner M, et al. The 2020 update of the CEAP classification
system and reporting standards. J Vasc Surg Venous Lymphat Disord 2020;8:342-52.

* C (clinical): C0 no visible signs; C1 telangiectasias or reticular veins; C2 varicose veins; C2r
  recurrent varicose veins; C3 oedema; C4a pigmentation or eczema; C4b lipodermatosclerosis or atrophie
  blanche; C4c corona phlebectatica; C5 healed venous ulcer; C6 active venous ulcer; C6r recurrent active
  venous ulcer; with the suffix S (symptomatic) or A (asymptomatic).
* E (etiology): Ep primary; Es secondary, split in 2020 into Esi (intravenous) and Ese (extravenous);
  Ec congenital; En no cause identified.
* A (anatomy): As superficial, Ad deep, Ap perforator, An none identified; the advanced form names the
  segments (Tel, Ret, GSVa, GSVb, SSV, AASV, NSV; IVC, CIV, IIV, EIV, PELV, CFV, DFV, FV, POPV, TIBV, PRV,
  ATV, PTV, MUSV, GAV, SOV; TPV, CPV).
* P (pathophysiology): Pr reflux, Po obstruction, Pr,o both, Pn none identified.

Combinations refused (each with its reason): C0 with another clinical class; C2 with C2r, C6 with C6r
(the ``r`` class replaces the plain one); En with another etiology; Ep with Esi/Ese (primary *or*
secondary); An with As/Ad/Ap, Pn with Pr/Po; reflux or obstruction without an anatomic location, and a
location without a pathophysiology; an advanced segment whose system does not match the A letters;
a reflux or obstruction segment not listed in the anatomy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from echosclero.errors import InputError

__all__ = [
    "ANATOMIC_SEGMENTS",
    "CLINICAL_CLASSES",
    "CEAP",
    "CeapError",
    "ClinicalSigns",
    "ceap_from_findings",
    "parse_ceap",
    "parse_clinical",
]


class CeapError(InputError):
    """An impossible or malformed CEAP classification."""


#: Clinical classes in order of severity (Lurie 2020, Table I).
CLINICAL_CLASSES: tuple[str, ...] = ("C0", "C1", "C2", "C2r", "C3", "C4a", "C4b", "C4c", "C5", "C6", "C6r")
_C_RANK = {c: i for i, c in enumerate(CLINICAL_CLASSES)}
_C_NUMBER = {c: int(c[1]) for c in CLINICAL_CLASSES}

ETIOLOGIES: tuple[str, ...] = ("Ep", "Esi", "Ese", "Ec", "En")

#: Advanced anatomic segments and their system (Lurie 2020, Table II): s superficial, d deep, p perforator.
ANATOMIC_SEGMENTS: dict[str, str] = {
    "Tel": "s", "Ret": "s", "GSVa": "s", "GSVb": "s", "SSV": "s", "AASV": "s", "NSV": "s",
    "IVC": "d", "CIV": "d", "IIV": "d", "EIV": "d", "PELV": "d", "CFV": "d", "DFV": "d", "FV": "d",
    "POPV": "d", "TIBV": "d", "PRV": "d", "ATV": "d", "PTV": "d", "MUSV": "d", "GAV": "d", "SOV": "d",
    "TPV": "p", "CPV": "p",
}
_SEG_UPPER = {k.upper(): k for k in ANATOMIC_SEGMENTS}


def _norm_clinical(token: str) -> str:
    t = token.strip()
    t = t if t[:1] in ("C", "c") else "C" + t
    t = "C" + t[1:].lower()
    if t not in _C_RANK:
        raise CeapError(f"unknown CEAP clinical class {token!r}; valid: {', '.join(CLINICAL_CLASSES)}")
    return t


def _norm_segment(token: str) -> str:
    key = _SEG_UPPER.get(token.strip().upper())
    if key is None:
        raise CeapError(f"unknown CEAP anatomic segment {token!r}; valid: {', '.join(ANATOMIC_SEGMENTS)}")
    return key


@dataclass(frozen=True, slots=True)
class CEAP:
    """A CEAP 2020 classification of one leg, validated on construction.

    Parameters
    ----------
    clinical
        Clinical classes present (e.g. ``{"C2", "C4a"}``); all are recorded, the highest leads.
    symptomatic
        Suffix S (``True``) or A (``False``).
    etiology
        Subset of ``Ep, Esi, Ese, Ec, En``.
    anatomy
        Subset of ``As, Ad, Ap, An``.
    reflux_segments, obstruction_segments
        Advanced-form segments with reflux (Pr) and obstruction (Po); empty for the basic form.
    pathophysiology
        Subset of ``Pr, Po, Pn``; derived from the segment lists when they are given.
    """

    clinical: frozenset[str]
    symptomatic: bool
    etiology: frozenset[str] = frozenset({"En"})
    anatomy: frozenset[str] = frozenset({"An"})
    pathophysiology: frozenset[str] = frozenset({"Pn"})
    reflux_segments: frozenset[str] = field(default_factory=frozenset)
    obstruction_segments: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        c = frozenset(_norm_clinical(x) for x in self.clinical)
        if not c:
            raise CeapError("a CEAP classification needs at least one clinical class (C0 for no signs)")
        object.__setattr__(self, "clinical", c)
        if "C0" in c and len(c) > 1:
            raise CeapError(f"C0 (no visible signs) cannot be combined with {', '.join(sorted(c - {'C0'}))}")
        for plain, recurrent in (("C2", "C2r"), ("C6", "C6r")):
            if plain in c and recurrent in c:
                raise CeapError(f"{plain} and {recurrent} together: {recurrent} replaces {plain} for "
                                "recurrent disease; record one")
        e = frozenset(self.etiology)
        if "Es" in e:
            raise CeapError("'Es' was split in CEAP 2020: use Esi (secondary intravenous) or Ese (extravenous)")
        unknown = e - set(ETIOLOGIES)
        if unknown or not e:
            raise CeapError(f"etiology {sorted(e)} must be a non-empty subset of {', '.join(ETIOLOGIES)}")
        if "En" in e and len(e) > 1:
            raise CeapError("En (no etiology identified) cannot be combined with another etiology")
        if "Ep" in e and e & {"Esi", "Ese"}:
            raise CeapError("Ep (primary) and Esi/Ese (secondary) exclude each other")
        rs = frozenset(_norm_segment(s) for s in self.reflux_segments)
        os_ = frozenset(_norm_segment(s) for s in self.obstruction_segments)
        object.__setattr__(self, "reflux_segments", rs)
        object.__setattr__(self, "obstruction_segments", os_)
        p = frozenset(self.pathophysiology)
        if rs or os_:
            derived = frozenset({"Pr"} if rs else set()) | frozenset({"Po"} if os_ else set())
            if p not in (derived, frozenset({"Pn"})) and p != derived:
                raise CeapError(f"pathophysiology {sorted(p)} contradicts the segments given "
                                f"(reflux: {sorted(rs)}, obstruction: {sorted(os_)})")
            p = derived
        if not p or p - {"Pr", "Po", "Pn"}:
            raise CeapError(f"pathophysiology {sorted(p)} must be a non-empty subset of Pr, Po, Pn")
        if "Pn" in p and len(p) > 1:
            raise CeapError("Pn (no pathophysiology identified) cannot be combined with Pr or Po")
        object.__setattr__(self, "pathophysiology", p)
        a = frozenset(self.anatomy)
        segs = rs | os_
        if segs:
            derived_a = frozenset({"A" + ANATOMIC_SEGMENTS[s] for s in segs})
            if a != frozenset({"An"}) and not derived_a <= a:
                raise CeapError(f"anatomy {sorted(a)} does not include the systems of the segments "
                                f"{sorted(segs)} ({', '.join(sorted(derived_a))})")
            a = (a - {"An"}) | derived_a
        if not a or a - {"As", "Ad", "Ap", "An"}:
            raise CeapError(f"anatomy {sorted(a)} must be a non-empty subset of As, Ad, Ap, An")
        if "An" in a and len(a) > 1:
            raise CeapError("An (no venous location identified) cannot be combined with As, Ad or Ap")
        if "An" in a and p != frozenset({"Pn"}):
            raise CeapError(f"{'/'.join(sorted(p))} needs an anatomic location: An (none identified) "
                            "cannot go with reflux or obstruction")
        if "Pn" in p and "An" not in a:
            raise CeapError(f"anatomy {'/'.join(sorted(a))} names a location but the pathophysiology is Pn; "
                            "give Pr and/or Po, or An")
        object.__setattr__(self, "anatomy", a)

    # ------------------------------------------------------------------ views
    @property
    def highest_clinical(self) -> str:
        return max(self.clinical, key=_C_RANK.__getitem__)

    @property
    def clinical_number(self) -> int:
        """The numeric clinical class 0-6 of the highest class (C4b -> 4)."""
        return _C_NUMBER[self.highest_clinical]

    def _c_text(self, classes: Iterable[str]) -> str:
        ordered = sorted(classes, key=_C_RANK.__getitem__)
        return "C" + ",".join(c[1:] for c in ordered) + ("S" if self.symptomatic else "A")

    def _e_text(self) -> str:
        order = [e for e in ETIOLOGIES if e in self.etiology]
        return "E" + ",".join(x[1:] for x in order)

    def _a_text(self) -> str:
        order = [x for x in ("As", "Ad", "Ap", "An") if x in self.anatomy]
        return "A" + ",".join(x[1:] for x in order)

    def _p_text(self, advanced: bool) -> str:
        if "Pn" in self.pathophysiology:
            return "Pn"
        parts = [x[1:] for x in ("Pr", "Po") if x in self.pathophysiology]
        text = "P" + ",".join(parts)
        if advanced:
            segs = []
            if self.reflux_segments:
                segs.append("r:" + ",".join(sorted(self.reflux_segments, key=list(ANATOMIC_SEGMENTS).index)))
            if self.obstruction_segments:
                segs.append("o:" + ",".join(sorted(self.obstruction_segments,
                                                   key=list(ANATOMIC_SEGMENTS).index)))
            if segs:
                text += "(" + "; ".join(segs) + ")"
        return text

    def basic(self) -> str:
        """Basic CEAP: the highest clinical class only, e.g. ``C4a,S Ep As,p Pr``."""
        c = self.highest_clinical
        return f"{c}{'S' if self.symptomatic else 'A'} {self._e_text()} {self._a_text()} {self._p_text(False)}"

    def advanced(self) -> str:
        """Advanced CEAP: every clinical class and the segments, e.g. ``C2,4aS Ep As,p Pr(r:GSVa,CPV)``."""
        return (f"{self._c_text(self.clinical)} {self._e_text()} {self._a_text()} "
                f"{self._p_text(True)}")

    def __str__(self) -> str:
        return self.advanced()

    def to_json(self) -> dict:
        return {
            "clinical": sorted(self.clinical, key=_C_RANK.__getitem__),
            "symptomatic": self.symptomatic,
            "etiology": sorted(self.etiology, key=ETIOLOGIES.index),
            "anatomy": sorted(self.anatomy),
            "pathophysiology": sorted(self.pathophysiology),
            "reflux_segments": sorted(self.reflux_segments),
            "obstruction_segments": sorted(self.obstruction_segments),
            "basic": self.basic(),
            "advanced": self.advanced(),
        }

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, text: str) -> CEAP:
        """Parse ``"C2,4a,S Ep As,p Pr"`` / ``"C2,4aS Ep As,p Pr(r:GSVa,CPV)"`` (case-insensitive letters).

        The S/A suffix may be attached or comma-separated. Unknown tokens are refused with a message.
        """
        s = str(text).strip()
        m = re.fullmatch(
            r"(?i)C\s*(?P<c>[0-6][a-cr]?(?:\s*,\s*[0-6][a-cr]?)*)\s*,?\s*(?P<s>[SA])\s+"
            r"E\s*(?P<e>(?:p|si|se|c|n)(?:\s*,\s*(?:p|si|se|c|n))*)\s+"
            r"A\s*(?P<a>[sdpn](?:\s*,\s*[sdpn])*)\s+"
            r"P\s*(?P<p>[ron](?:\s*,\s*[ron])*)\s*(?:\((?P<segs>[^)]*)\))?",
            s,
        )
        if m is None:
            raise CeapError(
                f"cannot read CEAP {text!r}; write it like 'C2,4a,S Ep As,p Pr' or "
                "'C2,4aS Ep As,p Pr(r:GSVa,CPV)'"
            )
        clinical = {"C" + x.strip().lower() for x in m["c"].split(",")}
        e = {"E" + x.strip().lower() for x in m["e"].split(",")}
        a = {"A" + x.strip().lower() for x in m["a"].split(",")}
        p = {"P" + x.strip().lower() for x in m["p"].split(",")}
        reflux, obstruction = set(), set()
        if m["segs"]:
            for part in m["segs"].split(";"):
                if ":" not in part:
                    raise CeapError(f"segment list {part!r} must start with 'r:' or 'o:'")
                kind, names = part.split(":", 1)
                target = reflux if kind.strip().lower() == "r" else obstruction
                target.update(n.strip() for n in names.split(",") if n.strip())
        return cls(
            clinical=frozenset(clinical), symptomatic=m["s"].upper() == "S", etiology=frozenset(e),
            anatomy=frozenset(a), pathophysiology=frozenset(p), reflux_segments=frozenset(reflux),
            obstruction_segments=frozenset(obstruction),
        )


@dataclass(frozen=True, slots=True)
class ClinicalSigns:
    """What the examination shows on one leg (CEAP 2020 clinical definitions, Lurie 2020 Table I)."""

    telangiectasia_or_reticular: bool = False
    varicose_veins: bool = False  # >= 3 mm diameter, standing
    recurrent_varicose_veins: bool = False
    oedema: bool = False
    pigmentation_or_eczema: bool = False
    lipodermatosclerosis_or_atrophie_blanche: bool = False
    corona_phlebectatica: bool = False
    healed_ulcer: bool = False
    active_ulcer: bool = False
    recurrent_active_ulcer: bool = False
    symptomatic: bool = False


def ceap_from_findings(
    signs: ClinicalSigns,
    *,
    etiology: Iterable[str] = ("En",),
    reflux_segments: Iterable[str] = (),
    obstruction_segments: Iterable[str] = (),
) -> CEAP:
    """Calculate CEAP from the clinical signs and the duplex findings (segments in CEAP anatomic codes).

    The A and P letters follow from the segments: none -> An Pn; reflux -> Pr; obstruction -> Po.
    """
    c = set()
    if signs.telangiectasia_or_reticular:
        c.add("C1")
    if signs.varicose_veins and signs.recurrent_varicose_veins:
        raise CeapError("varicose veins are either primary (C2) or recurrent (C2r): set one")
    if signs.varicose_veins:
        c.add("C2")
    if signs.recurrent_varicose_veins:
        c.add("C2r")
    if signs.oedema:
        c.add("C3")
    if signs.pigmentation_or_eczema:
        c.add("C4a")
    if signs.lipodermatosclerosis_or_atrophie_blanche:
        c.add("C4b")
    if signs.corona_phlebectatica:
        c.add("C4c")
    if signs.healed_ulcer:
        c.add("C5")
    if signs.active_ulcer and signs.recurrent_active_ulcer:
        raise CeapError("an active ulcer is either first (C6) or recurrent (C6r): set one")
    if signs.active_ulcer:
        c.add("C6")
    if signs.recurrent_active_ulcer:
        c.add("C6r")
    if not c:
        c.add("C0")
    rs, os_ = frozenset(reflux_segments), frozenset(obstruction_segments)
    return CEAP(
        clinical=frozenset(c), symptomatic=signs.symptomatic, etiology=frozenset(etiology),
        anatomy=frozenset({"An"}), pathophysiology=frozenset({"Pn"}),
        reflux_segments=rs, obstruction_segments=os_,
    )


# The clinical part alone: classes with a lowercase sub-letter (C4a, C2r), then the suffix S/A in capitals
# (or in either case after a comma or a space), so that "C4A" reads as C4 asymptomatic and "C4a" as C4a.
_CLINICAL_ONLY = re.compile(
    r"(?P<c>[Cc]\s*[0-9]+[a-z]?(?:\s*,\s*[Cc]?\s*[0-9]+[a-z]?)*?)(?:\s*,?\s*(?P<s>[SA])|[\s,]+(?P<s2>[sa]))?"
)


def parse_clinical(text: str) -> tuple[frozenset[str], bool | None]:
    """The clinical part alone (``"C2"``, ``"C2,4aS"``, ``"C4b,A"``): the classes and the S/A suffix (``None``
    when not written). The classes are checked as in a full classification (C0 alone, C2 or C2r, C6 or C6r)."""
    m = _CLINICAL_ONLY.fullmatch(str(text).strip())
    if m is None:
        raise CeapError(
            f"cannot read the CEAP clinical class {text!r}; write it like 'C2', 'C2,4aS' or a full "
            "classification 'C2,4a,S Ep As,p Pr'"
        )
    classes = frozenset(_norm_clinical("C" + x.strip().lstrip("Cc").strip()) for x in m["c"].split(","))
    suffix = m["s"] or m["s2"]
    symptomatic = None if suffix is None else suffix.upper() == "S"
    CEAP(clinical=classes, symptomatic=bool(symptomatic))  # the combination rules of the clinical classes
    return classes, symptomatic


def parse_ceap(text: str) -> str:
    """Validate a CEAP 2020 classification as a clinic writes it and return it in canonical form.

    Two forms are accepted: the full classification (``"C2,4a,S Ep As,p Pr"``, advanced with segments
    ``"C2,4aS Ep As,p Pr(r:GSVa,CPV)"``), read by :meth:`CEAP.parse` and returned as :meth:`CEAP.advanced`;
    or the clinical part alone (``"C2"``, ``"C2,4aS"``), which many records hold, returned as
    ``C<classes><S|A>``. Anything else raises :class:`CeapError` naming the problem.
    """
    s = str(text).strip()
    if not s:
        raise CeapError("CEAP is empty; write e.g. 'C2' or 'C2,4a,S Ep As,p Pr'")
    if re.search(r"(?i)\s+E", s):
        return CEAP.parse(s).advanced()
    classes, symptomatic = parse_clinical(s)
    ordered = sorted(classes, key=_C_RANK.__getitem__)
    suffix = "" if symptomatic is None else ("S" if symptomatic else "A")
    return "C" + ",".join(c[1:] for c in ordered) + suffix
