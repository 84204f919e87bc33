"""Character vocabulary shared by the CTC head and the attention decoder."""

from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
EXTRA_CHARS = "°ΩΔφηµ±²³⁻¹~€§äöüÄÖÜßéèêëàâçîïôûùñÑáíóúãõÃÕÉÈÀÇÚÓÍ"


def default_chars(extra: str = "") -> list[str]:
    """Printable ASCII, the symbols and accents plates use, plus ``extra`` (e.g. CJK labels)."""
    chars = [chr(c) for c in range(32, 127)] + list(EXTRA_CHARS)
    for ch in extra:
        if ch not in chars and not ch.isspace():
            chars.append(ch)
    return chars


class CharVocab:
    """Characters ↔ ids; id 0 is padding for the decoder and the blank for CTC."""

    def __init__(self, chars: list[str]) -> None:
        self.itos = list(SPECIALS) + chars
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` (unknown characters become <unk>)."""
        return [self.stoi.get(ch, UNK_ID) for ch in text]

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``, skipping special tokens."""
        return "".join(self.itos[i] for i in ids if i >= len(SPECIALS) and i < len(self.itos))

    def save(self, folder: Path) -> None:
        """Write ``vocab.json`` into ``folder``."""
        (folder / "vocab.json").write_text(json.dumps({"chars": self.itos[len(SPECIALS):]},
                                                      ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> CharVocab:
        """Read ``vocab.json`` from ``folder``."""
        return cls(json.loads((folder / "vocab.json").read_text(encoding="utf-8"))["chars"])
