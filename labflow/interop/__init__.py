"""Wire formats: FHIR R4, HL7 v2 and labflow JSON in; FHIR, HL7 v2 and JSON out."""
