"""PDF: text per page through pypdf, with 1-based page numbers."""

from __future__ import annotations

import io

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from pilothouse.knowledge.documents import Block
from pilothouse.knowledge.loaders.formats import UnreadableDocumentError
from pilothouse.knowledge.loaders.limits import checkpoint
from pilothouse.knowledge.loaders.text import paragraphs


class EncryptedError(UnreadableDocumentError):
    """The PDF needs a password."""


def parse_pdf(data: bytes) -> tuple[str | None, list[Block]]:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            # Many "protected" PDFs have an empty user password.
            opened = bool(reader.decrypt(""))
        except (DependencyError, NotImplementedError, FileNotDecryptedError):
            opened = False
        if not opened:
            raise EncryptedError(
                "encrypted PDF that needs a password; save an unprotected copy "
                "(for example `qpdf --decrypt`) and add that"
            )
    title = None
    if reader.metadata is not None and reader.metadata.title:
        title = str(reader.metadata.title).strip() or None
    blocks: list[Block] = []
    for number, page in enumerate(reader.pages, start=1):
        checkpoint()
        blocks.extend(paragraphs(page.extract_text() or "", page=number))
    return title, blocks
