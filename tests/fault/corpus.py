"""A deterministic stream of realistic labflow JSON messages for fault tests and benchmarks."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta


def messages(count: int, *, patients: int = 200, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    bodies = []
    for i in range(count):
        mrn = f"FT{(i % patients):05d}"
        when = start + timedelta(hours=i)
        kind = i // patients % 4
        if kind == 0:
            facts = [
                {
                    "kind": "therapy",
                    "effective": when.isoformat(),
                    "agent": rng.choice(["daratumumab", "isatuximab"]),
                    "route": "IV",
                    "record": "administered",
                    "first_dose": "2026-01-05",
                    "last_dose": when.date().isoformat(),
                }
            ]
        elif kind == 1:
            grade = rng.choice(["w+", "1+", "2+"])
            facts = [
                {
                    "kind": "antibody_screen",
                    "effective": when.isoformat(),
                    "interpretation": "positive",
                    "cells": {"I": grade, "II": grade, "III": grade},
                }
            ]
        elif kind == 2:
            facts = [
                {
                    "kind": "antibody_screen",
                    "effective": when.isoformat(),
                    "interpretation": rng.choice(["negative", "positive"]),
                    "method": "DTT",
                    "cells": {"I": "0", "II": "0", "III": "0"},
                },
                {
                    "kind": "antigen_typing",
                    "effective": when.isoformat(),
                    "antigen": "K",
                    "positive": False,
                    "method": "genotype",
                },
            ]
        else:
            facts = [
                {
                    "kind": "order",
                    "effective": when.isoformat(),
                    "code": rng.choice(["RBC", "CROSSMATCH", "TYPE_AND_SCREEN"]),
                }
            ]
        bodies.append(json.dumps({"patient": {"mrn": mrn}, "facts": facts}).encode())
    return bodies
