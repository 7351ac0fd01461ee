"""Checks a zip container (a DOCX) before any parser opens it: what it unpacks to, and XML
that declares entities (the "billion laughs"), which no Office file needs."""

from __future__ import annotations

import io
import re
import zipfile

from adapters.extraction.text_builder import Unreadable
from domain.extraction import FileLimits

MAX_MEMBERS = 10_000
BLOCK = 1 << 16
_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def check_zip(data: bytes, limits: FileLimits, what: str) -> None:
    """Unreadable unless `data` is a zip whose members unpack to at most KB_MAX_EXTRACTED_BYTES
    and whose XML declares no document type or entity.

    Sizes are the ones the zip declares; zipfile never inflates a member past its declared
    size (it reports the file as damaged instead), so the sum bounds what parsing can unpack.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise Unreadable(f"not a {what} file (not a zip container)") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise Unreadable(f"the {what} holds {len(members)} parts, more than {MAX_MEMBERS}")
        unpacked = sum(member.file_size for member in members)
        if unpacked > limits.extracted_bytes.value:
            raise Unreadable(f"the {what} unpacks to {unpacked} bytes: {limits.extracted_bytes}")
        for member in members:
            if member.filename.lower().endswith((".xml", ".rels")):
                _check_xml(archive, member, what)


def _check_xml(archive: zipfile.ZipFile, member: zipfile.ZipInfo, what: str) -> None:
    tail = b""
    try:
        with archive.open(member) as stream:
            while block := stream.read(BLOCK):
                if _DECLARATION.search(tail + block):
                    raise Unreadable(
                        f"the {what}'s {member.filename} declares a DTD or entities, "
                        "which Word never writes; it is refused"
                    )
                tail = block[-16:]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise Unreadable(f"the {what} is damaged ({member.filename}: {error})") from None
