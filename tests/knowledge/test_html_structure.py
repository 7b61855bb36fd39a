"""HTML structure from the markup of real documentation generators: headings with
their levels, titles from <title>/h1 (never an admonition's "Note"), code kept as
code, admonitions inside their section. The pages below are trimmed copies of the
markup each generator emits (DocBook XSL as in Debian's postgresql-doc-15, Sphinx as
in python3-doc, MkDocs with the Material theme)."""

from __future__ import annotations

from pathlib import Path

from pilothouse.knowledge import Chunker, ChunkingSettings
from pilothouse.knowledge.loaders import load_file
from pilothouse.knowledge.tokens import ApproximateCounter

DOCBOOK_REFENTRY = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "x.dtd"><html
xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="Content-Type"
content="text/html; charset=UTF-8" /><title>COPY</title><meta name="generator"
content="DocBook XSL Stylesheets Vsnapshot" /></head><body id="docContent"><div
class="navheader"><table width="100%" summary="Navigation header"><tr><th colspan="5"
align="center">COPY</th></tr><tr><td><a accesskey="p" href="sql-commit.html">Prev</a></td>
<th width="60%" align="center">SQL Commands</th></tr></table><hr /></div><div
class="refentry" id="SQL-COPY"><div class="titlepage"></div><div class="refnamediv">
<h2><span class="refentrytitle">COPY</span></h2><p>COPY — copy data between a file and
a table</p></div><div class="refsynopsisdiv"><h2>Synopsis</h2><pre class="synopsis">
COPY table_name [ ( column_name [, ...] ) ]
    FROM { 'filename' | PROGRAM 'command' | STDIN }
</pre></div><div class="refsect1" id="id-1"><h2>Description</h2><p>
<code class="command">COPY</code> moves data between <span class="productname">PostgreSQL</span>
tables and standard file-system files.</p><div class="note"><h3 class="title">Note</h3>
<p>COPY TO can be used only with plain tables, not views.</p></div><p>The result
looks like this:</p><pre class="screen">
 count
-------
   42
(1 row)
</pre><div class="refsect2" id="id-2"><h3>File Formats</h3><div class="variablelist"><dl
class="variablelist"><dt><span class="term"><code class="literal">FORMAT</code></span></dt>
<dd><p>Selects the data format to be read or written: text, csv or binary.</p></dd></dl>
</div></div></div></div><div class="navfooter"><hr /><table width="100%" summary="Navigation
footer"><tr><td width="40%" align="left"><a accesskey="p" href="sql-commit.html">Prev</a>
</td><td>Home of the PostgreSQL documentation</td></tr></table></div></body></html>
"""

DOCBOOK_SECTION = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>2.5. Querying a Table</title>
<meta name="generator" content="DocBook XSL Stylesheets Vsnapshot" /></head><body>
<div class="navheader"><table><tr><th>2.5. Querying a Table</th></tr></table></div>
<div class="sect1" id="TUTORIAL-SELECT"><div class="titlepage"><div><div><h2
class="title">2.5. Querying a Table</h2></div></div></div><p>To retrieve data from a
table, the table is queried with a SELECT statement.</p><pre class="programlisting">
SELECT * FROM weather;
</pre></div></body></html>
"""

SPHINX_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8" />
<meta name="generator" content="Docutils 0.19: https://docutils.sourceforge.io/" />
<title>json — JSON encoder and decoder &#8212; Python 3.11.2 documentation</title>
</head><body><div class="related" role="navigation"><h3>Navigation</h3><ul><li><a
href="../genindex.html">index</a></li><li>modules</li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper">
<div class="body" role="main"><section id="module-json"><h1><a class="reference internal"
href="#module-json"><code class="xref py py-mod"><span class="pre">json</span></code></a>
— JSON encoder and decoder<a class="headerlink" href="#module-json"
title="Permalink to this heading">¶</a></h1><div class="admonition warning"><p
class="admonition-title">Warning</p><p>Be cautious when parsing JSON data from untrusted
sources.</p></div><section id="basic-usage"><h2>Basic Usage<a class="headerlink"
href="#basic-usage">¶</a></h2><dl class="py function"><dt class="sig sig-object py"
id="json.dump"><span class="sig-prename descclassname"><span class="pre">json.</span></span
><span class="sig-name descname"><span class="pre">dump</span></span><span
class="sig-paren">(</span><em class="sig-param">obj</em>, <em class="sig-param">fp</em><span
class="sig-paren">)</span><a class="headerlink" href="#json.dump">¶</a></dt><dd><p>Serialize
<em>obj</em> as a JSON formatted stream to <em>fp</em>.</p><div class="highlight-python3
notranslate"><div class="highlight"><pre><span></span><span class="gp">&gt;&gt;&gt; </span
>json.dumps([1, 2])
&#39;[1, 2]&#39;
</pre></div></div></dd></dl></section></section></div></div></div>
<div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3><ul><li>Basic
Usage</li></ul></div></div><div class="footer">&copy; Copyright 2001-2023, Python Software
Foundation.</div></body></html>
"""

MKDOCS_PAGE = """<!doctype html><html lang="en" class="no-js"><head><meta charset="utf-8">
<meta name="generator" content="mkdocs-1.5.3, mkdocs-material-9.4.6">
<title>Configuration - MkDocs Demo Site</title></head><body><header class="md-header"
data-md-component="header"><nav class="md-header__inner md-grid"><div
class="md-header__title">MkDocs Demo Site</div></nav></header><div class="md-container"><main
class="md-main"><div class="md-main__inner md-grid"><div class="md-sidebar
md-sidebar--primary"><nav class="md-nav md-nav--primary"><ul><li>Home</li><li>Setup
guide</li></ul></nav></div><div class="md-content" data-md-component="content"><article
class="md-content__inner md-typeset"><h1 id="configuration">Configuration<a
class="headerlink" href="#configuration">&para;</a></h1><p>The site is configured in one
YAML file.</p><div class="admonition tip"><p class="admonition-title">Tip</p><p>Run the
build with --strict to turn warnings into errors.</p></div><h2 id="plugins">Plugins<a
class="headerlink" href="#plugins">&para;</a></h2><p>Plugins are listed under the plugins
key.</p><div class="highlight"><pre><span></span><code>plugins:
  - search
# -----
  - tags
</code></pre></div><h3 id="search">Search<a class="headerlink"
href="#search">&para;</a></h3><p>The search plugin builds a client-side index.</p>
</article></div></div></main><footer class="md-footer"><div
class="md-copyright">Made with Material for MkDocs</div></footer></div></body></html>
"""

PLAIN_PAGE_WITH_NOTE_FIRST = """<html><head><title>pg_dump</title></head><body>
<div class="note"><h3 class="title">Note</h3><p>Dumps are not backups of the WAL.</p></div>
<p>pg_dump extracts a PostgreSQL database into a script file or other archive file.</p>
<h2>Options</h2><p>The following command-line options control the content and format of
the output.</p></body></html>
"""


def _load(tmp_path: Path, name: str, page: str) -> tuple[str, list[tuple[str, int, str]]]:
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    document = load_file(path)
    return document.title, [(b.kind, b.level, b.text) for b in document.blocks]


def _headings(blocks: list[tuple[str, int, str]]) -> list[tuple[int, str]]:
    return [(level, text) for kind, level, text in blocks if kind == "heading"]


def test_docbook_reference_page_keeps_headings_title_code_and_notes(tmp_path: Path) -> None:
    title, blocks = _load(tmp_path, "sql-copy.html", DOCBOOK_REFENTRY)
    assert title == "COPY"
    assert _headings(blocks) == [
        (2, "COPY"),
        (2, "Synopsis"),
        (2, "Description"),
        (3, "File Formats"),
    ]
    texts = [text for _, _, text in blocks]
    # The admonition is a paragraph of its section, not a heading.
    assert "Note: COPY TO can be used only with plain tables, not views." in texts
    assert (
        texts.index("Description")
        < texts.index("Note: COPY TO can be used only with plain tables, not views.")
        < texts.index("File Formats")
    )
    # psql's result underline stays inside a code block: no heading "count".
    assert ("code", 0, " count\n-------\n   42\n(1 row)") in blocks
    assert any(kind == "code" and text.startswith("COPY table_name") for kind, _, text in blocks)
    # Navigation header and footer are gone.
    assert not any("Prev" in text or "Home of the" in text for text in texts)
    assert ("paragraph", 0, "FORMAT") in blocks


def test_docbook_section_page_title_from_title_element(tmp_path: Path) -> None:
    title, blocks = _load(tmp_path, "tutorial-select.html", DOCBOOK_SECTION)
    assert title == "2.5. Querying a Table"
    assert _headings(blocks) == [(2, "2.5. Querying a Table")]
    assert blocks[-1] == ("code", 0, "SELECT * FROM weather;")


def test_sphinx_page_keeps_headings_title_signatures_and_code(tmp_path: Path) -> None:
    title, blocks = _load(tmp_path, "json.html", SPHINX_PAGE)
    assert title == "json — JSON encoder and decoder"
    assert _headings(blocks) == [(1, "json — JSON encoder and decoder"), (2, "Basic Usage")]
    texts = [text for _, _, text in blocks]
    assert "Warning: Be cautious when parsing JSON data from untrusted sources." in texts
    assert "json.dump(obj, fp)" in texts  # the signature, without its permalink sign
    assert ("code", 0, ">>> json.dumps([1, 2])\n'[1, 2]'") in blocks
    assert not any("¶" in t or "Navigation" in t or "Copyright" in t for t in texts)
    assert not any("Table of Contents" in t for t in texts)


def test_mkdocs_page_keeps_headings_title_and_code(tmp_path: Path) -> None:
    title, blocks = _load(tmp_path, "configuration.html", MKDOCS_PAGE)
    assert title == "Configuration"
    assert _headings(blocks) == [(1, "Configuration"), (2, "Plugins"), (3, "Search")]
    texts = [text for _, _, text in blocks]
    assert "Tip: Run the build with --strict to turn warnings into errors." in texts
    assert ("code", 0, "plugins:\n  - search\n# -----\n  - tags") in blocks
    assert not any("Setup guide" in t or "Made with Material" in t for t in texts)


def test_page_whose_first_box_heading_is_note_keeps_its_real_title(tmp_path: Path) -> None:
    title, blocks = _load(tmp_path, "app-pgdump.html", PLAIN_PAGE_WITH_NOTE_FIRST)
    assert title == "pg_dump"
    assert blocks[0] == ("heading", 1, "pg_dump")  # content before any heading
    assert "Note: Dumps are not backups of the WAL." in [text for _, _, text in blocks]
    assert _headings(blocks) == [(1, "pg_dump"), (2, "Options")]


def test_docbook_chunks_carry_heading_paths_and_never_split_code_into_headings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sql-copy.html"
    path.write_text(DOCBOOK_REFENTRY, encoding="utf-8")
    document = load_file(path)
    counter = ApproximateCounter()
    chunks = Chunker(
        ChunkingSettings(max_tokens=40, overlap_tokens=8, tokenizer=counter.name), counter
    ).chunk(document)
    assert chunks and all(chunk.headings for chunk in chunks)
    paths = {chunk.headings for chunk in chunks}
    assert ("Description", "File Formats") in paths
    assert not any("count" in heading for path in paths for heading in path)


JAVADOC_PAGE = """<!DOCTYPE HTML><html lang="en"><head>
<title>String (Java SE 17 &amp; JDK 17)</title><meta name="generator"
content="javadoc/ClassWriterImpl"></head><body class="class-declaration-page">
<div class="flex-box"><header role="banner" class="flex-header"><nav role="navigation"><div
class="top-nav" id="navbar-top"><ul class="nav-list"><li><a href="package-summary.html">Package</a>
</li></ul></div></nav></header><div class="flex-content"><main role="main"><div class="header"><h1
title="Class String" class="title">Class String</h1></div><section class="class-description"><div
class="block">The <code>String</code> class represents character strings.</div></section><section
class="details"><ul class="details-list"><li><section class="method-details" id="method-detail">
<h2>Method Details</h2><ul class="member-list"><li><section class="detail"
id="length()"><h3>length</h3>
<div class="member-signature"><span class="modifiers">public</span>&nbsp;<span
class="return-type">int</span>
&nbsp;<span class="element-name">length</span>()</div><div class="block">Returns the length of this
string.</div></section></li></ul></section></li></ul></section></main></div></div></body></html>
"""


def test_javadoc_member_details_keep_their_headings(tmp_path: Path) -> None:
    title, blocks = _load(tmp_path, "String.html", JAVADOC_PAGE)
    assert title == "Class String"
    assert _headings(blocks) == [(1, "Class String"), (2, "Method Details"), (3, "length")]
    texts = [text for _, _, text in blocks]
    assert "Returns the length of this string." in texts
    assert not any(t == "Package" for t in texts)
