"""Random field values in the styles real rating plates use, plus distractor text.

A generator is a function ``(rng) -> str``, registered by name. A schema field picks one with
``[fields.X.synth] generator = "NAME"`` (default: the field's own name) or lists
``examples = [...]``; a new field needs no change here.
"""

from __future__ import annotations

import random
from collections.abc import Callable

Generator = Callable[[random.Random], str]
GENERATORS: dict[str, Generator] = {}

_SYLLABLES = ["VOL", "TREX", "NORD", "MOT", "AQUA", "PUMP", "ELEK", "TRA", "HELM", "KRAFT",
              "SIRI", "ON", "MAG", "NET", "DYNA", "MAX", "POL", "ARIS", "TEC", "NIK", "OMNI",
              "DRIVE", "FER", "RO", "LUX", "VENT", "TUR", "BO", "GAL", "VANI", "ZEN", "ITH"]
_SUFFIX = ["", "", "", " GmbH", " AG", " S.p.A.", " S.A.", " Ltd.", " Inc.", " Motors", " Pumps",
           " Electric", " Antriebe", " Motori", " Co."]
_MONTHS = {"en": "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC",
           "de": "JAN FEB MAR APR MAI JUN JUL AUG SEP OKT NOV DEZ"}


def generator(name: str) -> Callable[[Generator], Generator]:
    """Register a value generator under ``name``."""
    def register(fn: Generator) -> Generator:
        GENERATORS[name] = fn
        return fn
    return register


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _letters(rng: random.Random, n: int, alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _decimal(rng: random.Random, low: float, high: float, places: int) -> str:
    value = round(rng.uniform(low, high), places)
    text = f"{value:.{places}f}"
    if places and rng.random() < 0.15:
        text = text.replace(".", ",")
    return text


@generator("manufacturer")
def manufacturer(rng: random.Random) -> str:
    """An invented brand name."""
    name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
    if rng.random() < 0.35:
        name = name.capitalize()
    return name + rng.choice(_SUFFIX)


@generator("model")
def model(rng: random.Random) -> str:
    """Type designations in several manufacturers' styles."""
    style = rng.randrange(7)
    if style == 0:   # 1LE1503-1DB23-4AA4
        return f"{rng.randint(1, 9)}{_letters(rng, 2)}{_digits(rng, 4)}-{rng.randint(0, 9)}" \
               f"{_letters(rng, 2)}{_digits(rng, 2)}-{rng.randint(0, 9)}{_letters(rng, 2)}" \
               f"{rng.randint(0, 9)}"
    if style == 1:   # W22-132M-4
        frame = rng.choice(["71", "80", "90", "100", "112", "132", "160", "180"])
        return f"{_letters(rng, 1)}{_digits(rng, 2)}-{frame}" \
               f"{rng.choice(['S', 'M', 'L', 'MA', 'LB'])}-{rng.choice('2468')}"
    if style == 2:   # AP-65/160
        return f"{_letters(rng, 2)}-{rng.choice(['32', '40', '50', '65', '80'])}/" \
               f"{rng.choice(['125', '160', '200', '250'])}"
    if style == 3:   # M3BP160MLA4
        return f"{_letters(rng, 1)}{rng.randint(1, 4)}{_letters(rng, 2)}{_digits(rng, 3)}" \
               f"{_letters(rng, rng.randint(1, 3))}{rng.choice('2468')}"
    if style == 4:   # VX132M-4
        digits = _digits(rng, rng.choice((2, 3)))
        return f"{_letters(rng, 2)}{digits}{_letters(rng, 1)}-{rng.choice('2468')}"
    if style == 5:   # CR10-3 / NK.32-200
        sep = rng.choice(["", ".", " "]).strip() or ""
        return f"{_letters(rng, rng.choice((2, 3)))}{sep}{rng.randint(1, 99)}-{rng.randint(1, 250)}"
    return f"{_letters(rng, 3)}{_digits(rng, 4)}{_letters(rng, 1)}"  # ABC1234D


@generator("serial")
def serial(rng: random.Random) -> str:
    """Serial numbers: digits + letters, dashed, year-prefixed."""
    style = rng.randrange(6)
    year = rng.randint(15, 26)
    if style == 0:
        return f"{_digits(rng, 8)}{_letters(rng, 2)}"
    if style == 1:
        return f"20{year}-{_digits(rng, 6)}"
    if style == 2:
        return f"{_letters(rng, 1)}{year}{_letters(rng, 1)}{_digits(rng, 5)}"
    if style == 3:
        return f"{year}{rng.randint(1, 12):02d}{_digits(rng, 2)}-{_digits(rng, 4)}"
    if style == 4:
        return _digits(rng, rng.randint(7, 10))
    return f"{_letters(rng, 2)}{_digits(rng, 6)}"


@generator("voltage")
def voltage(rng: random.Random) -> str:
    """Single, dual and range voltages."""
    choice = rng.choice(["230/400", "400/690", "400", "230", "460", "380-420", "220-240",
                         "690", "575", "208-230/460", "24", "110", "415", "500"])
    return choice + rng.choice([" V", " V", "V"])


@generator("current")
def current(rng: random.Random) -> str:
    """Rated currents, single or dual."""
    a = _decimal(rng, 0.5, 95, rng.choice((1, 1, 2)))
    if rng.random() < 0.4:
        b = _decimal(rng, 0.3, 60, 1)
        return f"{a}/{b}" + rng.choice([" A", "A"])
    return a + rng.choice([" A", " A", "A"])


@generator("power")
def power(rng: random.Random) -> str:
    """Power in kW or HP."""
    kw = rng.choice(["0.37", "0.55", "0.75", "1.1", "1.5", "2.2", "3", "4", "5.5", "7.5", "11",
                     "15", "18.5", "22", "30", "37", "45", "55", "75", "90"])
    if rng.random() < 0.2:
        kw = kw.replace(".", ",")
    unit = rng.choice([" kW", " kW", " kW", "kW", " HP", " hp"])
    return kw + unit


@generator("frequency")
def frequency(rng: random.Random) -> str:
    """50 Hz, 60 Hz or both."""
    return rng.choice(["50", "50", "60", "50/60"]) + rng.choice([" Hz", " Hz", "Hz"])


@generator("speed")
def speed(rng: random.Random) -> str:
    """Rated speed with one of the usual unit spellings."""
    base = rng.choice([720, 940, 960, 1440, 1450, 1460, 1470, 1750, 2860, 2900, 2950, 3500])
    value = base + rng.randint(-15, 15)
    return f"{value}" + rng.choice([" r/min", " r/min", " rpm", " min-1", " 1/min", "rpm"])


@generator("manufactured")
def manufactured(rng: random.Random) -> str:
    """Dates as MM/YYYY, YYYY-MM, MM.YYYY, YYYY or 14MAI16-style codes."""
    year = rng.randint(2015, 2026)
    month = rng.randint(1, 12)
    style = rng.randrange(5)
    if style == 0:
        return f"{month:02d}/{year}"
    if style == 1:
        return f"{year}-{month:02d}"
    if style == 2:
        return f"{month:02d}.{year}"
    if style == 3:
        return str(year)
    names = _MONTHS[rng.choice(list(_MONTHS))].split()
    return f"{rng.randint(1, 28):02d}{names[month - 1]}{year % 100:02d}"


@generator("ip_rating")
def ip_rating(rng: random.Random) -> str:
    """IP codes."""
    return "IP" + rng.choice(["", "", " "]) + rng.choice(
        ["54", "55", "55", "56", "65", "66", "23", "44", "X4", "67", "68"])


DISTRACTORS = [
    "IEC 60034-1", "EN 60034-1", "IEC 60034-30-1", "VDE 0530", "NEMA MG1", "GB 18613",
    "S1", "Duty S1", "Ins.Cl. F", "Isol.-Kl. F", "Cl. F", "Th.Cl. 155(F)", "ΔT 80 K",
    "IE3", "IE2", "IE4", "Eff. 89.6%", "η 91.4%", "cos φ 0.82", "cos φ 0,86", "PF 0.79",
    "3~ Mot.", "3~ Motor", "1~", "Δ/Y", "Y", "Δ", "Nema Design B", "SF 1.15", "CODE H",
    "6205-2Z/C3", "6306-2RS", "DE 6206-2Z", "NDE 6205-2Z", "Bearing", "Lager", "Roulement",
    "kg 38", "Weight 42 kg", "Gewicht 27 kg", "Made in Germany", "Made in Italy",
    "Made in EU", "Made in China", "Hecho en España", "Fabriqué en France", "CE", "UKCA",
    "Amb. 40 °C", "Tamb -20...+40 °C", "Alt. 1000 m", "IC 411", "IM B3", "IM 1001",
    "ATEX II 2G", "Ex db IIB T4 Gb", "Cos φ", "Rotation", "Drehrichtung", "Thermistor PTC",
    "Industriestr. 12, 70565 Stuttgart", "Via Roma 21, 20121 Milano", "Av. da Liberdade 110",
    "Calle Mayor 5, 28013 Madrid", "12 rue de la Paix, 75002 Paris", "www.example-motors.com",
    "Service: +49 711 555 0100", "QC PASS", "Inspected", "Order", "Auftrag",
]


def value_for(field: str, rng: random.Random, *, generator_name: str | None = None,
              examples: list[str] | None = None) -> str:
    """A random value for ``field`` (by its generator, or from ``examples``)."""
    if examples:
        return rng.choice(examples)
    name = generator_name or field
    if name not in GENERATORS:
        raise KeyError(f"no value generator {name!r}; give the schema field "
                       "synth.generator or synth.examples")
    return GENERATORS[name](rng)


def label_variant(label: str, rng: random.Random) -> str:
    """A label as plates print it: case, trailing colon or period, sometimes unchanged."""
    style = rng.random()
    text = label
    if style < 0.25:
        text = text.upper()
    elif style < 0.3:
        text = text.lower() if len(text) > 2 else text
    end = rng.random()
    if end < 0.45 and not text.endswith((".", ":")):
        text += ":"
    return text
