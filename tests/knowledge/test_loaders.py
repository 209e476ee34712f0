"""Loaders: every format from real files made here, encodings, and bad input with hints."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import zipfile
from pathlib import Path

import docx
import pypdf
import pytest
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.pdfgen import canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from hanlin.errors import LoaderError
from hanlin.knowledge.loaders import (
    LoaderOptions,
    load_bytes,
    load_file,
)
from tests.knowledge.loader_helpers import OPTS, MiB, check, load, raises, write

# ---------------------------------------------------------------- plain text and Markdown


def test_txt_paragraphs_crlf_and_title(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", "First line\r\nstill first.\r\n\r\n  \r\nSecond para.\r\n")
    (doc,) = load(path)
    assert [b.text for b in doc.blocks] == ["First line\nstill first.", "Second para."]
    assert {b.kind for b in doc.blocks} == {"paragraph"}
    assert doc.key == doc.source == str(path)
    assert doc.title == "notes"
    assert doc.metadata["encoding"] == "utf-8"


MARKDOWN = """---
title: "Brewing Guide"
tags: [tea]
---
Green Tea
=========

Intro paragraph with **bold**
over two lines.

## Temperatures

| Tea | Temp |
|-----|------|
| Longjing | 80C |

- Do not boil
- Use soft water
  - filtered is fine

```python
def brew(minutes: int) -> None:

    print("steep", minutes)
```

Closing words.
"""


def test_markdown_structure(tmp_path: Path) -> None:
    (doc,) = load(write(tmp_path, "guide.md", MARKDOWN))
    kinds = [(b.kind, b.level) for b in doc.blocks]
    assert kinds == [
        ("heading", 1),
        ("paragraph", 0),
        ("heading", 2),
        ("table", 0),
        ("list", 0),
        ("code", 0),
        ("paragraph", 0),
    ]
    assert doc.title == "Brewing Guide"  # front matter wins over the H1
    assert doc.blocks[0].text == "Green Tea"
    assert "| Longjing | 80C |" in doc.blocks[3].text
    assert "filtered is fine" in doc.blocks[4].text
    code = doc.blocks[5]
    assert code.language == "python"
    assert code.text.startswith("def brew") and "\n\n    print" in code.text
    assert "title:" not in doc.text


def test_markdown_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    (doc,) = load(write(tmp_path, "a.md", "Intro.\n\n# Real Title\n\ntext"))
    assert doc.title == "Real Title"
    (doc,) = load(write(tmp_path, "plain-notes.md", "## only h2\n\ntext"))
    assert doc.title == "plain-notes"


# ---------------------------------------------------------------- HTML

PAGE = """<!doctype html><html><head><title>Tea | Site</title>
<meta property="og:title" content="All About Tea"><style>.x{color:red}</style>
<script>var tracking = 1;</script></head>
<body><nav><a href="/">Home</a> <a href="/shop">Shop now</a></nav>
<main><article><h1>Green tea</h1>
<p>Green tea is made from Camellia sinensis leaves that have not been withered or oxidised.</p>
<h2>Brewing</h2>
<p>Use water at about eighty degrees Celsius and steep for two minutes; longer is bitter.</p>
<table><tr><th>Tea</th><th>Temp</th></tr><tr><td>Longjing</td><td>80C</td></tr></table>
<p>Enjoy it without sugar, as it has been drunk in Hangzhou for many centuries.</p>
</article></main><footer>Copyright 2024 Tea Corp</footer></body></html>"""


def test_html_main_content_headings_and_table(tmp_path: Path) -> None:
    (doc,) = load(write(tmp_path, "tea.html", PAGE))
    assert doc.title == "All About Tea"
    assert doc.metadata["extraction"] == "trafilatura"
    headings = [(b.text, b.level) for b in doc.blocks if b.kind == "heading"]
    assert headings == [("Green tea", 1), ("Brewing", 2)]
    (table,) = [b for b in doc.blocks if b.kind == "table"]
    assert "| Longjing | 80C |" in table.text
    for boilerplate in ("tracking", "color:red", "Shop now", "Copyright"):
        assert boilerplate not in doc.text


def test_html_by_content_type_and_declared_charset() -> None:
    body = PAGE.replace("Green tea is made", "绿茶是用茶树的叶子制成的。Green tea is made")
    docs = check(
        load_bytes(
            body.encode("gbk"),
            source="https://example.com/tea.php",
            name="tea.php",  # the extension alone would pick the PHP code loader
            options=OPTS,
            content_type="text/html; charset=GBK",
        )
    )
    assert docs[0].format == "html"
    assert docs[0].metadata["encoding"] == "gbk"
    assert "绿茶是用茶树的叶子制成的" in docs[0].text


def test_html_tiny_page(tmp_path: Path) -> None:
    page = "<html><head><title>Tiny</title></head><body><div>Only</div><div>two words</div>"
    (doc,) = load(write(tmp_path, "tiny.htm", page))
    assert [b.text for b in doc.blocks] == ["Only", "two words"]
    assert doc.title == "Tiny"


def test_html_body_text_when_trafilatura_finds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the HTML loader imports trafilatura when it runs, so the library itself is patched
    monkeypatch.setattr("trafilatura.extract", lambda *args, **kwargs: None)
    (doc,) = load(write(tmp_path, "tea.html", PAGE))
    assert doc.metadata["extraction"] == "body-text"
    assert doc.blocks[0].text == "Green tea"
    assert "Longjing" in doc.text and "80C" in doc.text
    for boilerplate in ("tracking", "color:red", "Shop now", "Copyright"):
        assert boilerplate not in doc.text


def test_html_without_content(tmp_path: Path) -> None:
    spa = (
        "<html><head><title>App</title></head><body><nav>Home</nav><div id='root'></div>"
        "<script src='/app.js'></script><noscript>You need to enable JavaScript.</noscript>"
        "</body></html>"
    )
    raises(lambda: load(write(tmp_path, "app.html", spa)), "no text found", "JavaScript")


# ---------------------------------------------------------------- PDF


def make_report_pdf(path: Path) -> None:
    styles = getSampleStyleSheet()
    table = Table(
        [["Region", "Revenue"], ["North", "120"], ["South", "95"]],
        style=TableStyle([("GRID", (0, 0), (-1, -1), 1, colors.black)]),
    )
    story = [
        Paragraph("Quarterly sales went up in every region this quarter.", styles["Normal"]),
        Spacer(1, 24),
        table,
        Spacer(1, 24),
        Paragraph("North led the growth thanks to new stores.", styles["Normal"]),
        PageBreak(),
        Paragraph("Appendix: methodology and data sources.", styles["Normal"]),
    ]
    SimpleDocTemplate(str(path), pagesize=A4, title="Quarterly Report").build(story)


def test_pdf_pages_tables_and_order(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    make_report_pdf(path)
    (doc,) = load(path)
    assert doc.title == "Quarterly Report"
    assert doc.metadata["pages"] == 2
    texts = [b.text for b in doc.blocks]
    (table,) = [b for b in doc.blocks if b.kind == "table"]
    assert table.text.splitlines()[0] == "| Region | Revenue |"
    assert "| North | 120 |" in table.text and "| South | 95 |" in table.text
    assert table.page == 1
    before = texts.index("Quarterly sales went up in every region this quarter.")
    after = texts.index("North led the growth thanks to new stores.")
    assert before < doc.blocks.index(table) < after
    assert "North" not in doc.text[: table.start].replace("North led", "")  # cells only once
    appendix = next(b for b in doc.blocks if b.text.startswith("Appendix"))
    assert appendix.page == 2
    assert all(b.page in (1, 2) for b in doc.blocks)


def test_pdf_title_from_first_line_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.pdf"
    c = canvas.Canvas(str(path))
    c.drawString(72, 750, "Meeting notes")
    c.drawString(72, 700, "We agreed to ship on Friday.")
    c.save()
    (doc,) = load(path)
    assert doc.title == "Meeting notes"
    assert [b.text for b in doc.blocks] == ["Meeting notes", "We agreed to ship on Friday."]


def test_pdf_encrypted_needs_password(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("pw")
    path = tmp_path / "secret.pdf"
    with path.open("wb") as f:
        writer.write(f)
    raises(lambda: load_file(path, OPTS), "PDF is encrypted", "qpdf --decrypt")


def test_pdf_with_owner_password_only_still_loads(tmp_path: Path) -> None:
    source = tmp_path / "src.pdf"
    make_report_pdf(source)
    writer = pypdf.PdfWriter(clone_from=str(source))
    writer.encrypt(user_password="", owner_password="owner")
    path = tmp_path / "restricted.pdf"
    with path.open("wb") as f:
        writer.write(f)
    (doc,) = load(path)
    assert "| North | 120 |" in doc.text


def test_pdf_corrupt(tmp_path: Path) -> None:
    noise = random.Random(7).randbytes(4000)
    raises(lambda: load(write(tmp_path, "a.pdf", noise)), "not a PDF", "qpdf")
    raises(lambda: load(write(tmp_path, "b.pdf", b"%PDF-1.7\n" + noise)), "corrupt PDF", "qpdf")


def test_pdf_without_text_layer_needs_ocr(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    c = canvas.Canvas(str(path))
    c.rect(100, 100, 300, 400, fill=1)  # stands in for a scanned image: no characters
    c.save()
    raises(lambda: load_file(path, OPTS), "no text layer", "ocrmypdf")


# ---------------------------------------------------------------- DOCX


def test_docx_headings_table_in_body_order(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Tea Report", level=0)
    document.add_heading("Prices", level=2)
    document.add_paragraph("Before the table.")
    table = document.add_table(rows=3, cols=2)
    rows = [("Tea", "Price"), ("Longjing", "30"), ("Sencha", "25")]
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_paragraph("After the table.")
    document.add_paragraph("Boil water", style="List Bullet")
    document.add_paragraph("Steep", style="List Bullet")
    path = tmp_path / "report.docx"
    document.save(str(path))
    (doc,) = load(path)
    assert doc.title == "Tea Report"
    assert [(b.kind, b.level, b.text) for b in doc.blocks[:3]] == [
        ("heading", 1, "Tea Report"),
        ("heading", 2, "Prices"),
        ("paragraph", 0, "Before the table."),
    ]
    assert doc.blocks[3].kind == "table"
    assert doc.blocks[3].text.splitlines() == [
        "| Tea | Price |",
        "|---|---|",
        "| Longjing | 30 |",
        "| Sencha | 25 |",
    ]
    assert doc.blocks[4].text == "After the table."
    assert (doc.blocks[5].kind, doc.blocks[5].text) == ("list", "- Boil water\n- Steep")


def test_docx_zip_bomb_total_size(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    # ~600 MB of zeros streamed in; the archive is about 3 MB on disk.
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("word/document.xml", "w", force_zip64=True) as member,
    ):
        chunk = bytes(MiB)
        for _ in range(600):
            member.write(chunk)
    assert path.stat().st_size < 5 * MiB
    raises(lambda: load_file(path, OPTS), "looks like a zip bomb", "re-save")


def test_docx_zip_bomb_ratio(tmp_path: Path) -> None:
    path = tmp_path / "small-bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("word/document.xml", bytes(20 * MiB))
    error = raises(lambda: load_file(path, OPTS), "looks like a zip bomb", "re-save")
    assert "compressed" in error.message


def test_docx_not_a_zip(tmp_path: Path) -> None:
    path = write(tmp_path, "old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    raises(lambda: load_file(path, OPTS), "not a valid .docx", "unprotected .docx")


# ---------------------------------------------------------------- encodings

ZH = "翰林知识库支持中文文档。\n\n第二段：我们测试编码检测是否正确，包括标点符号。"
ZH_HANT = "翰林知識庫支援中文文件。\n\n第二段：我們測試編碼偵測是否正確，包括繁體字與標點符號。"


@pytest.mark.parametrize(
    ("encoding", "text", "reported"),
    [
        ("gbk", ZH, {"gbk", "gb18030", "gb2312"}),
        ("gb18030", ZH + "\n\n罕见字：㐀㐁", {"gb18030"}),
        ("big5", ZH_HANT, {"big5", "big5hkscs", "cp950"}),
        ("utf-16", ZH, {"utf-16-le", "utf-16-be"}),  # Python writes a BOM
        ("utf-8-sig", ZH, {"utf-8-sig"}),
    ],
)
def test_chinese_encodings(tmp_path: Path, encoding: str, text: str, reported: set[str]) -> None:
    (doc,) = load(write(tmp_path, "zh.txt", text, encoding))
    assert doc.text == text
    assert [b.text[:4] for b in doc.blocks][:2] == [text[:4], "第二段："]
    assert doc.metadata["encoding"] in reported


def test_short_korean_is_not_taken_for_gbk(tmp_path: Path) -> None:
    # short GBK is often detected as Korean and corrected; real Korean must survive that
    text = "이름,도시\n홍길동,서울\n김철수,부산\n"
    docs = load(write(tmp_path, "people.csv", text, "cp949"))
    assert [d.text for d in docs] == ["이름: 홍길동\n도시: 서울", "이름: 김철수\n도시: 부산"]
    assert docs[0].metadata["encoding"] in {"cp949", "euc_kr"}


def test_utf16_without_bom(tmp_path: Path) -> None:
    text = "Release notes for version 2.\n\nFixed the crash on start (修复启动崩溃)."
    (doc,) = load(write(tmp_path, "notes.md", text, "utf-16-le"))
    assert doc.text == text
    assert doc.metadata["encoding"] == "utf-16-le"


def test_binary_with_text_extension(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(1).randbytes(2000)
    raises(lambda: load(write(tmp_path, "image.txt", png)), "binary or undecodable", "iconv")
    raises(lambda: load(write(tmp_path, "image.py", png)), "binary or undecodable", "UTF-8")


def test_undecodable_garbage(tmp_path: Path) -> None:
    rng = random.Random(1234)
    garbage = bytes(rng.randrange(0x80, 0x100) for _ in range(600))
    raises(lambda: load(write(tmp_path, "g.md", garbage)), "binary or undecodable", "iconv")


# ---------------------------------------------------------------- file-level checks


def test_empty_file(tmp_path: Path) -> None:
    raises(lambda: load_file(write(tmp_path, "e.txt", b""), OPTS), "file is empty", "add content")


def test_whitespace_only_file(tmp_path: Path) -> None:
    raises(lambda: load(write(tmp_path, "w.txt", "\n  \n\t\n")), "no text found", "add text")


def test_size_limit_checked_before_reading(tmp_path: Path) -> None:
    small = write(tmp_path, "small.txt", "x" * 2048)
    error = raises(
        lambda: load_file(small, LoaderOptions(max_file_bytes=1024)),
        "over the limit",
        "knowledge.max_file_mb",
    )
    assert "2048 bytes, over the limit of 1024 bytes" in error.message
    # A sparse 300 MB file takes no disk space; loading it would, so the check must come first.
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(300 * MiB)
    raises(lambda: load_file(huge, OPTS), "300 MB, over the limit of 256 MB", "max_file_mb")


def test_missing_and_directory(tmp_path: Path) -> None:
    raises(lambda: load_file(tmp_path / "nope.txt", OPTS), "file not found", "check the path")
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    raises(lambda: load_file(folder, OPTS), "is a directory", "pass the files")


def _load_as(uid: int, path: Path) -> str:
    """Run load_file in a forked child with ``uid`` and report the outcome as text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        outcome = "unexpected"
        try:
            os.setgid(uid)
            os.setuid(uid)
        except OSError:
            outcome = "cannot-setuid"
        else:
            try:
                load_file(path, OPTS)
                outcome = "loaded"
            except LoaderError as exc:
                outcome = f"LoaderError\n{exc.message}\n{exc.hint}"
            except BaseException as exc:
                outcome = f"other\n{exc!r}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


def test_unreadable_file() -> None:
    folder = Path(tempfile.mkdtemp(prefix="hanlin-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "secret.txt"
        path.write_text("top secret")
        path.chmod(0o000)
        if os.geteuid() != 0:
            raises(lambda: load_file(path, OPTS), "permission denied", "chmod")
            return
        # root reads anything, so drop to an unprivileged user in a child process
        outcome = _load_as(65534, path)
        if outcome == "cannot-setuid":
            pytest.skip("running as root without the right to switch user; chmod cannot block")
        kind, message, hint = outcome.split("\n", 2)
        assert kind == "LoaderError", outcome
        assert "permission denied" in message
        assert "chmod" in hint
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_unsupported_extension_lists_supported(tmp_path: Path) -> None:
    error = raises(lambda: load(write(tmp_path, "x.xyz", "hi")), "unsupported file type", ".pdf")
    assert ".docx" in (error.hint or "")
