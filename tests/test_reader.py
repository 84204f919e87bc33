"""The Tesseract reader and the `nameplate read` contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.reader import ImageError, load_image, load_reader
from appliance.reader.fields import assign_fields
from appliance.reader.lines import Line, Word
from appliance.schema import DEFAULT_FIELDS, SchemaError, load_schema
from appliance.synth import render_demo_plate
from tests.plates import demo_records, plate_and_bad_file, plate_values

REPO = Path(__file__).resolve().parent.parent
SCHEMA = load_schema(REPO / "config" / "schemas" / "motor.toml")


def squash(text: str | None) -> str | None:
    return None if text is None else "".join(text.split()).casefold()


@pytest.fixture(scope="module")
def tesseract():  # type: ignore[no-untyped-def]
    return load_reader("tesseract", schema=SCHEMA, device="cpu")


def test_default_schema_has_the_contract_fields() -> None:
    assert tuple(SCHEMA.field_names()) == DEFAULT_FIELDS


def test_tesseract_reads_every_field_of_a_clean_plate(tesseract) -> None:  # type: ignore[no-untyped-def]
    row = demo_records()[0]
    values = plate_values(row)
    plate = render_demo_plate(values, seed=5)
    reading = tesseract.read([plate.image])[0]
    assert reading.error is None
    for name, expected in values.items():
        got = reading.fields[name]
        assert squash(got.value) == squash(expected), name
        assert 0.0 < got.confidence <= 1.0
        x0, y0, x1, y1 = got.box
        bx0, by0, bx1, by1 = plate.boxes[name]
        # the reported box overlaps the box the value was drawn in
        assert x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1, name


def test_labelled_values_follow_the_schema_label_words() -> None:
    def line(*words: str, y: int = 0) -> Line:
        return Line([Word(w, (i * 50, y, i * 50 + 40, y + 20), 0.9) for i, w in enumerate(words)])

    lines = [line("ACME"), line("Typ:", "KX-200", y=30), line("Fabr.-Nr.", "123456AB", y=60),
             line("400", "V", "50", "Hz", y=90)]
    fields = assign_fields(lines, SCHEMA)
    assert fields["manufacturer"].value == "ACME"
    assert fields["model"].value == "KX-200"
    assert fields["serial"].value == "123456AB"
    assert fields["voltage"].value == "400 V"
    assert fields["frequency"].value == "50 Hz"
    assert fields["speed"].value is None and fields["speed"].confidence == 0.0


def test_stacked_lost_dot_and_misread_labels_still_find_their_values() -> None:
    def line(*words: str, y: int = 0, h: int = 20) -> Line:
        return Line([Word(w, (i * 90, y, i * 90 + 80, y + h), 0.9) for i, w in enumerate(words)])

    title = Line([Word("PN", (0, 20, 30, 32), 0.6), Word("TECAQUA", (40, 0, 240, 40), 0.95)])
    lines = [title,
             line("MODÈLE/TYPE/TYP", "9CR2441-6YV26", y=50),
             line("SER. NO", "220676-8867", y=80),          # the label's dot was lost
             line("Herslelldatum:", "2024-12", y=110),      # one letter misread
             line("Spannung/Voltage:", "415V", y=140)]
    fields = assign_fields(lines, SCHEMA)
    assert fields["manufacturer"].value == "TECAQUA"        # the tallest run, not the marks
    assert fields["model"].value == "9CR2441-6YV26"
    assert fields["serial"].value == "220676-8867"
    assert fields["manufactured"].value == "2024-12"
    assert fields["voltage"].value == "415V"
    # three misread letters are too many for a label: the only date-like run is taken by
    # elimination, unsure (a wrong guess must ask for a reshoot, never stop the line)
    two = assign_fields([line("Hcrslclldatum:", "2024-12", y=0)], SCHEMA)
    assert two["manufactured"].value == "2024-12"
    assert two["manufactured"].confidence <= 0.5
    # two date-like runs and no label: neither is guessed
    three = assign_fields([line("Hcrslclldatum:", "2024-12", "2023-01", y=0)], SCHEMA)
    assert three["manufactured"].value is None


def test_corrupt_and_empty_images_give_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty image data"):
        load_image(empty)
    with pytest.raises(ImageError, match=r"corrupt\.jpg: not a decodable image"):
        load_image(corrupt)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")


def test_schema_errors_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[fields.serial]\nvalue = "[unclosed"\n')
    with pytest.raises(SchemaError, match=r"bad\.toml: fields\.serial\.value: .*bad regex"):
        load_schema(bad)
    bad.write_text('name = "x"\n[patterns]\nbearing = "6[0-9"\n[fields.serial]\nvalue = "S"\n')
    with pytest.raises(SchemaError, match=r"bad\.toml: patterns\.bearing: bad regex"):
        load_schema(bad)
    bad.write_text('name = "x"\n[fields.serial]\nvalue = "S"\nnever = ["bearing"]\n')
    with pytest.raises(SchemaError, match=r"fields\.serial\.never: no pattern named 'bearing'"):
        load_schema(bad)


def test_a_field_never_takes_a_named_pattern(tmp_path: Path) -> None:
    plate = tmp_path / "plate.toml"
    plate.write_text('name = "x"\n[patterns]\nbearing = "6\\\\d{3}-2Z"\n'
                     '[fields.serial]\nvalue = "[0-9A-Z-]{5,}"\nnever = ["bearing"]\n')
    serial = load_schema(plate).fields["serial"]
    assert serial.matches("48213907KQ") and serial.matches("6205-2ZX")
    assert not serial.matches("6205-2Z")


def test_nameplate_read_json_contract(tmp_path: Path) -> None:
    values = plate_values(demo_records()[4])
    good, broken = plate_and_bad_file(tmp_path, values, seed=2, bad_name="broken.jpg",
                                      bad_bytes=b"garbage")
    out = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "read", str(good), str(broken), "--json",
         "--device", "cpu", "--backend", "tesseract"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 1  # one image failed
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert set(first) == {"image", "fields", "backend", "device", "latency_ms"}
    assert first["image"] == str(good)
    assert first["backend"] == "tesseract" and first["device"] == "cpu"
    assert isinstance(first["latency_ms"], float)
    assert list(first["fields"]) == list(DEFAULT_FIELDS)
    for name, field in first["fields"].items():
        assert set(field) == {"value", "confidence", "box"}, name
        assert squash(field["value"]) == squash(values[name]), name
        assert len(field["box"]) == 4
    assert second["image"] == str(broken) and "not a decodable image" in second["error"]


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown reader backend 'nope'"):
        load_reader("nope", schema=SCHEMA)


def test_blank_image_reads_nothing(tesseract) -> None:  # type: ignore[no-untyped-def]
    blank = np.full((480, 640, 3), 128, np.uint8)
    reading = tesseract.read([blank])[0]
    assert all(f.value is None for f in reading.fields.values())


def test_freed_frame_sized_blocks_stay_for_reuse() -> None:
    # a fresh process: the allocator setting is process-wide
    probe = """
import ctypes, numpy as np
from appliance.runtime import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = Info
def after_free():
    block = np.ones(8 << 20, np.uint8); mapped = libc.mallinfo2().hblkhd; del block
    return mapped >> 20, libc.mallinfo2().fordblks >> 20
print(after_free(), keep_freed_memory(), after_free())
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split("\n")[0]
    # before: the 8 MB block was its own mapping, gone on free; after: heap, kept free
    assert out == "(8, 0) True (0, 8)"
