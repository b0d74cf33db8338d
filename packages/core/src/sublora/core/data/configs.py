"""Typed options of the built-in data sources and tokenizers.

These are what the entry points name, so this module stays cheap to import
(no torch, no datasets, no tiktoken): ``sublora plugins`` loads it to list
components. Each config names its implementation, imported only on build.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from sublora.core.source import SourceConfig
from sublora.core.tokenizer import TokenizerConfig

_SOURCES = "sublora.core.data.sources"
_TOKENIZERS = "sublora.core.data.tokenizers"


def _undecodable():
    return Field("skip", description="Files that are binary (NUL bytes) or not valid UTF-8: 'skip' them "
                 "(counted in meta.json and by `sublora data prepare`) or 'refuse' (stop, naming the file).")


class PyStdlibSourceConfig(SourceConfig):
    description: ClassVar[str] = (
        "Every .py file of the running Python's standard library (tests excluded); needs no download."
    )
    implementation: ClassVar[str] = f"{_SOURCES}:PyStdlibSource"

    root: str | None = Field(None, description="Read this directory instead of the standard library (for tests).")
    undecodable: Literal["skip", "refuse"] = _undecodable()


class TextSourceConfig(SourceConfig):
    description: ClassVar[str] = (
        "Local text: a file, a folder (recursive) or a glob; .jsonl gives one document per line."
    )
    implementation: ClassVar[str] = f"{_SOURCES}:TextSource"

    path: str = Field(..., description="A file, a folder (searched recursively) or a glob pattern.")
    extensions: tuple[str, ...] = Field(
        (".txt", ".md", ".py", ".jsonl"), description="File suffixes read from folders and globs."
    )
    text_field: str = Field("text", description="Field holding the text in .jsonl lines.")
    undecodable: Literal["skip", "refuse"] = _undecodable()


class HFSourceConfig(SourceConfig):
    description: ClassVar[str] = "A Hugging Face `datasets` dataset (needs `pip install sublora-core[hf]`)."
    implementation: ClassVar[str] = f"{_SOURCES}:HFSource"

    name: str = Field("openwebtext", description="Dataset name or builder ('json' for local files).")
    config_name: str | None = Field(None, description="Dataset configuration name.")
    split: str = Field("train", description="Split to read.")
    text_field: str = Field("text", description="Column holding the text.")
    data_files: str | list[str] | dict[str, str | list[str]] | None = Field(
        None, description="Local files for builders such as 'json' (load_dataset data_files=)."
    )
    max_documents: int | None = Field(None, ge=1, description="Read only the first N rows.")
    cache_dir: str | None = Field(None, description="Cache directory of `datasets` (default: its own).")
    streaming: bool = Field(True, description="Stream the rows (load_dataset streaming=True): nothing is "
                            "downloaded whole or held in memory. False: build the `datasets` cache first.")


class BytesTokenizerConfig(TokenizerConfig):
    description: ClassVar[str] = "UTF-8 bytes (ids 0-255) plus end-of-text id 256; needs no files."
    implementation: ClassVar[str] = f"{_TOKENIZERS}:BytesTokenizer"


class TiktokenTokenizerConfig(TokenizerConfig):
    description: ClassVar[str] = "A tiktoken BPE encoding (gpt2 = GPT-2's tokenizer); downloads its file on first use."
    variants: ClassVar[tuple[str, ...]] = ("gpt2", "r50k_base", "p50k_base", "cl100k_base", "o200k_base")
    default_variant: ClassVar[str | None] = "gpt2"
    implementation: ClassVar[str] = f"{_TOKENIZERS}:TiktokenTokenizer"
