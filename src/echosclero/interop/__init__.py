"""Exchange with the clinical world: DICOM files and services, structured reports, FHIR, PDF.

Modules are imported on demand (``from echosclero.interop.usdicom import write_us_dicom``) so that
importing this package stays cheap.
"""
