"""HL7 v2 framing, the MSH header and ER7 escaping.

`hl7_header` reads MSH by hand rather than through a full parse so it still works on a
message whose body is broken: the inbound endpoint needs app+facility+MSH-10 for dedupe and
the ACK even when mapping fails.
"""

from __future__ import annotations

from dataclasses import dataclass

_MLLP_START, _MLLP_END = "\x0b", "\x1c"


@dataclass(frozen=True)
class Hl7Header:
    sending_app: str
    sending_facility: str
    receiving_app: str
    receiving_facility: str
    control_id: str
    message_type: str  # "ORU^R01" (message code ^ trigger event)
    version: str
    field_separator: str = "|"
    encoding_chars: str = "^~\\&"
    processing_id: str = "P"

    @property
    def trigger(self) -> str:
        return self.message_type.partition("^")[2]

    @property
    def dedupe_key(self) -> tuple[str, str, str]:
        return (self.sending_app, self.sending_facility, self.control_id)


def normalise(body: bytes | str) -> str:
    """Text with MLLP framing stripped and segments separated by `\\r` only."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:  # older feeds send Latin-1 without declaring it in MSH-18
            text = body.decode("latin-1")
    else:
        text = body
    text = text.strip().lstrip(_MLLP_START).rstrip("\r\n" + _MLLP_END).strip()
    # Feeds and fixture files use \r\n or \n; HL7 itself only knows \r.
    return text.replace("\r\n", "\r").replace("\n", "\r")


def hl7_header(body: bytes | str) -> Hl7Header | None:
    """The MSH header of an HL7 v2 message, or None when there is no usable MSH."""
    text = normalise(body)
    if not text.startswith("MSH") or len(text) < 8:
        return None
    sep = text[3]
    msh = text.split("\r", 1)[0]
    fields = msh.split(sep)
    enc = fields[1] if len(fields) > 1 else ""
    if len(enc) < 4 or sep.isalnum() or sep in enc:
        return None
    comp = enc[0]

    def get(n: int) -> str:  # MSH-n: fields[n-1] because MSH-1 is the separator itself
        return fields[n - 1] if len(fields) >= n else ""

    def first(n: int) -> str:
        return unescape(get(n).split(comp)[0], sep, enc)

    msg_type = get(9).split(comp)
    return Hl7Header(
        sending_app=first(3), sending_facility=first(4), receiving_app=first(5),
        receiving_facility=first(6), control_id=unescape(get(10), sep, enc),
        message_type="^".join(x for x in msg_type[:2] if x), version=first(12),
        field_separator=sep, encoding_chars=enc, processing_id=first(11) or "P",
    )


_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"),
            ("\r\n", "\\.br\\"), ("\n", "\\.br\\"), ("\r", "\\.br\\"))


def escape(text: str) -> str:
    """Escape a value for ER7 with the default `|^~\\&` delimiters."""
    for raw, esc in _ESCAPES:  # backslash first, so escapes are not escaped again
        text = text.replace(raw, esc)
    return text


def unescape(text: str, sep: str = "|", enc: str = "^~\\&") -> str:
    esc = enc[2]
    if esc not in text:
        return text
    table = {"F": sep, "S": enc[0], "R": enc[1], "E": esc, "T": enc[3], ".br": "\n"}
    parts = text.split(esc)
    # Escape sequences sit at odd indexes between pairs of escape characters.
    return "".join(table.get(p, p) if i % 2 else p for i, p in enumerate(parts))
