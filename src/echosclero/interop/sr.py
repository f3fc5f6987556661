"""DICOM Structured Report of a session: the duplex findings and the injections, after TID 5100.

Built with highdicom as a Comprehensive SR whose root is TID 5100 *Vascular Ultrasound Procedure Report*
(DCM 125100). The content tree::

    CONTAINER Vascular Ultrasound Procedure Report (DCM 125100), template 5100
      HAS CONCEPT MOD  Language of Content Item and Descendants = English
      HAS OBS CONTEXT  Person Observer Name (the operator)
      CONTAINS CONTAINER Patient Characteristics (DCM 121118)            TID 5101
                 NUM Subject Age (DCM 121033), a
      CONTAINS CONTAINER Summary (DCM 121111)                            TID 5102
                 TEXT Impression (DCM 121073): CEAP, incompetent segments
      CONTAINS CONTAINER Vein of lower extremity (SCT 122774002)         TID 5103, one per leg
                 HAS CONCEPT MOD Laterality (SCT 272741003) = Left / Right
                 CONTAINS CONTAINER Measurement Group (DCM 125007)       TID 5104, one per segment
                   HAS CONCEPT MOD Finding Site (SCT 363698007) = the vein (CID 12110 codes)
                   NUM Vessel lumen diameter (SCT 397413000), mm         (CID 12119)
                   NUM Duration (SCT 103335007), ms                      the reflux time
                     HAS CONCEPT MOD Direction of flow (SCT 260674002) = Retrograde Flow (SCT 312004007)
                     INFERRED FROM IMAGE the source Doppler image (by SOP Instance UID)
                   TEXT Finding (DCM 121071): competent / incompetent / occluded ...
      CONTAINS CONTAINER Procedure (SCT 71388002)                        the injections
                 CONTAINS CONTAINER Measurement Group, one per injection
                   HAS CONCEPT MOD Finding Site, Laterality
                   TEXT Drug administered (DCM 122083): agent, form
                   NUM Concentration (DCM 122093) %, Volume (SCT 118565006) ml, Mass (SCT 4147007) mg
                   INFERRED FROM IMAGE the confirming frame, when its reference is a UID

Segments without a SNOMED CT code of their own (accessory saphenous veins, tributaries, perforators by
location) are coded as *Vein of lower extremity* with the segment's name as a TEXT comment. The reflux time
has no dedicated DICOM concept in CID 12119; it is recorded as a *Duration* of *Retrograde Flow* (SNOMED CT
concepts that DICOM lists in CID 12221), which is what it is.
"""

from __future__ import annotations

from datetime import datetime

from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from echosclero import __version__
from echosclero.clinic.segments import get_segment
from echosclero.errors import InputError
from echosclero.interop.record import Pathway, age_on

__all__ = ["session_sr", "study_uid_for"]

#: Our UID root would be registered by a deploying clinic; until then pydicom's generated UIDs (2.25 / the
#: pydicom root) are used, made deterministic from the record's ids so that re-exports share the study.
_UID_NS = "echosclero"
_LEG_CODE = {"left": codes.SCT.Left, "right": codes.SCT.Right}


def _hd():
    import highdicom as hd

    return hd


def _person_name(name: str) -> str:
    """A user's name in DICOM PN form (family^given); a one-word user name becomes the family name."""
    parts = name.replace("^", " ").split()
    if not parts:
        return "EchoSclero^Operator"
    return (f"{parts[-1]}^{' '.join(parts[:-1])}" if len(parts) > 1 else f"{parts[0]}^")[:64]


def study_uid_for(patient_id: int, session_id: int) -> str:
    return generate_uid(entropy_srcs=[_UID_NS, "study", str(patient_id), str(session_id)])


def _concept(value: str, scheme: str, meaning: str):
    return _hd().sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _ucum(unit: str, meaning: str):
    return _concept(unit, "UCUM", meaning)


def _site(code: str):
    seg = get_segment(code)
    if seg.snomed:
        return _concept(seg.snomed, "SCT", seg.name[:64]), seg
    return codes.SCT.StructureOfVeinOfLowerExtremity, seg


def _image_ref(link: dict):
    hd = _hd()
    return hd.sr.ImageContentItem(
        name=codes.DCM.SourceOfMeasurement,
        referenced_sop_class_uid=link["sop_class_uid"],
        referenced_sop_instance_uid=link["sop_instance_uid"],
        relationship_type=hd.sr.RelationshipTypeValues.INFERRED_FROM,
    )


def _num(name, value: float, unit, children=None):
    hd = _hd()
    item = hd.sr.NumContentItem(name=name, value=float(value), unit=unit,
                                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    if children:
        item.ContentSequence = hd.sr.ContentSequence(children)
    return item


def _text(name, value: str, rel=None):
    hd = _hd()
    return hd.sr.TextContentItem(name=name, value=value[:1024] or "-",
                                 relationship_type=rel or hd.sr.RelationshipTypeValues.CONTAINS)


def _mod(name, value):
    hd = _hd()
    return hd.sr.CodeContentItem(name=name, value=value, relationship_type=hd.sr.RelationshipTypeValues.HAS_CONCEPT_MOD)


def _container(name, items, *, template: str | None = None, root: bool = False):
    hd = _hd()
    c = hd.sr.ContainerContentItem(name=name, template_id=template,
                                   relationship_type=None if root else hd.sr.RelationshipTypeValues.CONTAINS)
    c.ContentSequence = hd.sr.ContentSequence(items)
    return c


def _links(pw: Pathway, rec) -> dict[tuple[str, str], dict]:
    """Source images of reflux results, by (leg, segment), for INFERRED FROM references."""
    out = {}
    results = [r for lst in pw.exam_results.values() for r in lst] + list(rec.results)
    for r in results:
        if r.sop_instance_uid and r.sop_class_uid and r.segment and r.leg:
            out[(r.leg, r.segment)] = {"sop_instance_uid": r.sop_instance_uid, "sop_class_uid": r.sop_class_uid,
                                       "series_instance_uid": r.series_instance_uid,
                                       "study_instance_uid": r.study_instance_uid}
    return out


def _evidence(pw: Pathway, study_uid: str, links: list[dict], session_id: int) -> tuple[list[Dataset], bool]:
    p = pw.patient

    def ds_for(link: dict | None) -> Dataset:
        ds = Dataset()
        ds.PatientID = str(p.id)
        ds.PatientName = f"{p.family_name}^{p.given_name}"
        ds.PatientBirthDate = p.birth_date.strftime("%Y%m%d")
        ds.PatientSex = {"female": "F", "male": "M"}.get(p.sex, "O")
        ds.AccessionNumber = ""
        ds.StudyID = f"S{session_id}"[:16]
        ds.StudyDate = ""
        ds.StudyTime = ""
        ds.ReferringPhysicianName = ""
        ds.StudyInstanceUID = (link or {}).get("study_instance_uid") or study_uid
        if link:
            ds.SeriesInstanceUID = link.get("series_instance_uid") or generate_uid()
            ds.SOPInstanceUID = link["sop_instance_uid"]
            ds.SOPClassUID = link["sop_class_uid"]
        return ds

    if links:
        return [ds_for(link) for link in links], True
    # no source image: highdicom still reads the study and patient from one evidence data set; it is given
    # placeholder instance UIDs and not recorded in the SR (record_evidence=False)
    study = ds_for(None)
    study.SeriesInstanceUID, study.SOPInstanceUID = generate_uid(), generate_uid()
    study.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    return [study], False


def session_sr(pw: Pathway, *, session_id: int, operator: str = "") -> Dataset:
    """The SR of one session as a pydicom Dataset (``.save_as(path)`` writes the file)."""
    hd = _hd()
    rec = pw.session(session_id)
    s = rec.session
    exam = rec.exam
    links = _links(pw, rec)
    image_links = list({v["sop_instance_uid"]: v for v in links.values()}.values())
    inj_links = []
    for i in rec.injections:
        ref = (i.frame_ref or "").split("#")[0].strip()
        uid_link = next((r for r in rec.results if r.sop_instance_uid == ref and r.sop_class_uid), None)
        if uid_link is not None:
            inj_links.append((i.id, {"sop_instance_uid": uid_link.sop_instance_uid,
                                     "sop_class_uid": uid_link.sop_class_uid,
                                     "series_instance_uid": uid_link.series_instance_uid,
                                     "study_instance_uid": uid_link.study_instance_uid}))
    for _, link in inj_links:
        if link["sop_instance_uid"] not in {x["sop_instance_uid"] for x in image_links}:
            image_links.append(link)
    study_uid = (image_links[0].get("study_instance_uid") if image_links else None) or study_uid_for(
        pw.patient.id, s.id)
    for link in image_links:
        link.setdefault("study_instance_uid", study_uid)
        link["study_instance_uid"] = link["study_instance_uid"] or study_uid
    evidence, record = _evidence(pw, study_uid, image_links, s.id)
    rel = hd.sr.RelationshipTypeValues
    root_items = [
        hd.sr.CodeContentItem(name=codes.DCM.LanguageOfContentItemAndDescendants,
                              value=_concept("en", "RFC5646", "English"), relationship_type=rel.HAS_CONCEPT_MOD),
        hd.sr.PnameContentItem(name=codes.DCM.PersonObserverName, value=_person_name(operator),
                               relationship_type=rel.HAS_OBS_CONTEXT),
        _container(codes.DCM.PatientCharacteristics,
                   [_num(codes.DCM.SubjectAge, age_on(pw.patient, s.session_date), _ucum("a", "year"))]),
    ]
    ceap = [a for a in pw.assessments if a.limb == s.limb and a.assessed_on <= s.session_date]
    impression = []
    if ceap and ceap[-1].ceap:
        impression.append(f"CEAP {ceap[-1].ceap} ({s.limb} leg)")
    findings = pw.vein_map(exam).findings if exam is not None else []
    bad = [f"{f.leg.value} {f.segment}" for f in findings if f.incompetent]
    impression.append("incompetent: " + (", ".join(bad) if bad else "none found"))
    root_items.append(_container(codes.DCM.Summary, [_text(codes.DCM.Impression, "; ".join(impression))]))
    for leg in ("left", "right"):
        groups = []
        for f in [f for f in findings if f.leg.value == leg]:
            site, seg = _site(f.segment)
            items = [_mod(codes.SCT.FindingSite, site)]
            if not seg.snomed or f.label:
                items.append(_text(codes.DCM.Comment, f"{seg.name}" + (f", {f.label}" if f.label else "")))
            if f.diameter_mm is not None:
                items.append(_num(codes.SCT.VesselLumenDiameter, f.diameter_mm, _ucum("mm", "millimeter")))
            if f.reflux_ms is not None:
                kids = [_mod(codes.SCT.DirectionOfFlow, codes.SCT.RetrogradeFlow)]
                link = links.get((leg, f.segment))
                if link:
                    kids.append(_image_ref(link))
                items.append(_num(codes.SCT.Duration, f.reflux_ms, _ucum("ms", "millisecond"), kids))
            items.append(_text(codes.DCM.Finding, f.status.value))
            groups.append(_container(codes.DCM.MeasurementGroup, items))
        if groups:
            root_items.append(_container(codes.SCT.StructureOfVeinOfLowerExtremity,
                                         [_mod(codes.SCT.Laterality, _LEG_CODE[leg]), *groups]))
    inj_items = [_mod(codes.SCT.Laterality, _LEG_CODE.get(s.limb, codes.SCT.Left))] if s.limb in _LEG_CODE else []
    ref_by_inj = dict(inj_links)
    for i in rec.injections:
        site, seg = _site(i.segment)
        items = [
            _mod(codes.SCT.FindingSite, site),
            _text(codes.DCM.DrugAdministered, f"{i.agent} {i.form}" + (f" {i.liquid_gas_ratio}" if i.liquid_gas_ratio
                                                                          else "")),
            _num(codes.DCM.Concentration, i.concentration_pct, _ucum("%", "percent")),
            _num(codes.SCT.Volume, i.volume_ml, _ucum("ml", "milliliter")),
            _num(codes.SCT.Mass, i.mass_mg, _ucum("mg", "milligram")),
            _text(codes.DCM.Comment, f"injected {i.injected_at:%Y-%m-%d %H:%M} UTC; "
                                     f"ultrasound confirmed: {i.ultrasound_confirmed}"),
        ]
        if i.id in ref_by_inj:
            items.append(_image_ref(ref_by_inj[i.id]))
        inj_items.append(_container(codes.DCM.MeasurementGroup, items))
    if rec.injections:
        root_items.append(_container(codes.SCT.Procedure, inj_items))
    root = _container(codes.DCM.VascularUltrasoundProcedureReport, root_items, template="5100", root=True)
    root.ContentTemplateSequence[0].MappingResource = "DCMR"
    try:
        sr = hd.sr.ComprehensiveSR(
            evidence=evidence,
            content=root,
            series_instance_uid=generate_uid(entropy_srcs=[_UID_NS, "srseries", str(s.id)]),
            series_number=900,
            sop_instance_uid=generate_uid(entropy_srcs=[_UID_NS, "sr", str(s.id), datetime.now().isoformat()]),
            instance_number=1,
            manufacturer="EchoSclero",
            institution_name=pw.clinic.name[:64],
            is_complete=s.status == "closed",
            record_evidence=record,
            series_description="Vascular ultrasound and sclerotherapy report",
        )
    except (ValueError, TypeError) as exc:
        raise InputError(f"the structured report of session {s.id} cannot be built: {exc}") from None
    sr.SoftwareVersions = __version__
    sr.ContentDate = s.session_date.strftime("%Y%m%d")
    sr.StudyDate = sr.ContentDate
    if not getattr(sr, "StudyTime", ""):
        sr.StudyTime = "000000"
    return sr

