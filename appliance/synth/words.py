"""Random words and strings for training text, so the reader learns letters, not a vocabulary.

A reader trained only on the schema's label words, the value generators and a fixed
distractor list learns to complete what it expects ("Kind" read as "Knd"). Training plates
therefore also carry pseudo-words, codes and symbol runs drawn from here; dev and held-out
plates do not, so their numbers stay comparable between sessions.
"""

from __future__ import annotations

import random

_ONSETS = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v",
           "w", "z", "br", "ch", "cl", "dr", "fl", "gr", "kl", "pl", "pr", "sch", "sp", "st",
           "str", "th", "tr", "x", "q", "y"]
_VOWELS = ["a", "e", "i", "o", "u", "y", "ai", "ei", "au", "ie", "oo", "ä", "ö", "ü", "é", "è",
           "à", "ñ", "ç"]
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "st", "rt", "x", "ck", "tz",
          "k", "p", "ff"]
_SYMBOLS = "-/.:,;()+#%&*=_'\"<>[]!?@~°±µΩ"
_UNITS = ["mm", "kg", "bar", "Nm", "l/min", "m³/h", "°C", "%", "kVA", "mA", "VA", "kPa", "psi",
          "lb", "in", "ft", "HP", "µF", "Ω", "dB(A)", "h", "min", "s"]


def pseudo_word(rng: random.Random) -> str:
    """A pronounceable made-up word of 1 to 4 syllables in a random case."""
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                   for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 3, 4))))
    if rng.random() < 0.15:
        word = word.encode("ascii", "ignore").decode() or "x"
    case = rng.random()
    if case < 0.35:
        return word.upper()
    if case < 0.75:
        return word.capitalize()
    return word


def code(rng: random.Random) -> str:
    """A random part-number-like string: letters, digits and separators."""
    alphabet = rng.choice(("0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
    groups = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
        for _ in range(rng.randint(1, 3))
    ]
    return rng.choice(("-", "/", ".", " ", "")).join(groups)


def random_text(rng: random.Random) -> str:
    """One run of random text: words, a code, a number with a unit, or symbols mixed in."""
    kind = rng.random()
    if kind < 0.4:
        words = [pseudo_word(rng) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        return rng.choice((" ", " ", "/", "-")).join(words)
    if kind < 0.65:
        return code(rng)
    if kind < 0.8:
        number = f"{rng.uniform(0, 10 ** rng.randint(1, 4)):.{rng.randint(0, 2)}f}"
        if rng.random() < 0.3:
            number = number.replace(".", ",")
        return f"{number}{rng.choice(('', ' '))}{rng.choice(_UNITS)}"
    length = rng.randint(2, 12)
    pool = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + _SYMBOLS
    return "".join(rng.choice(pool) for _ in range(length)).strip() or "X"
