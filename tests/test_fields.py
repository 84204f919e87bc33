"""Attaching read text to schema fields: misread labels, label rows over value rows, labels
glued to values, titles among logo letters and labels, and approximate matching."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.geometry import quad_box, upright_boxes
from appliance.reader.fields import assign_fields
from appliance.reader.lines import Line, Word, group_lines
from appliance.reader.textmatch import best_substring, code_case, edit_distance
from appliance.schema import load_schema

REPO = Path(__file__).resolve().parent.parent
SCHEMA = load_schema(REPO / "config" / "schemas" / "motor.toml")


def words(*items: tuple[str, int, int, int]) -> list[Word]:
    """Words from (text, x, y, height); width follows the text length."""
    return [Word(text, (x, y, x + 10 * len(text), y + h), 0.9) for text, x, y, h in items]


def test_edit_distances() -> None:
    assert edit_distance("Herstelldatum", "Herslelldatum") == 1
    assert edit_distance("serialno", "seialno") == 1
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("kitten", "sitting", limit=1) == 2   # capped: "more than one"
    assert best_substring("SN-191167-67O6", "191167-6706") == (3, 14, 1)
    assert best_substring("", "abc") == (0, 0, 3)


def test_label_row_over_value_row_and_glued_labels() -> None:
    lines = group_lines(words(
        ("ACME Motors", 10, 0, 40),
        ("MODEL", 10, 60, 18), ("RATED CURRENT", 200, 60, 18),
        ("KX-200", 10, 90, 18), ("12.5 A", 200, 90, 18),
        ("SN-191167-6706", 10, 130, 18)))
    fields = assign_fields(lines, SCHEMA)
    assert fields["model"].value == "KX-200"          # not "RATED", the next label
    assert fields["current"].value == "12.5 A"
    assert fields["serial"].value == "191167-6706"    # "SN-" is the label


def test_misread_labels_and_a_tilted_row() -> None:
    def read(*items: tuple[str, int, int, int]) -> dict[str, str | None]:
        return {k: v.value for k, v in assign_fields(group_lines(words(*items)), SCHEMA).items()}

    assert read(("Serlennr.:", 10, 0, 20), ("4821390", 150, 0, 20))["serial"] == "4821390"
    assert read(("SERIAI NO", 10, 0, 20), ("4821390", 150, 0, 20))["serial"] == "4821390"
    # "N° de série" with its accent lost and "ri" read as "n": two edits once accents go
    assert read(("N°de sene", 10, 0, 20), ("3640495", 150, 0, 20))["serial"] == "3640495"
    date = read(("Manufacturd:", 10, 40, 20), ("2024-05", 160, 40, 20))
    assert date["manufactured"] == "2024-05" and date["manufacturer"] is None
    # a tilted plate: the value sits lower than its label, past the line-grouping limit
    tilted = read(("BAUJAHR", 10, 80, 20), ("08OKT17", 400, 91, 20))
    assert tilted["manufactured"] == "08OKT17"


def test_title_is_not_a_logo_a_label_or_a_merged_run() -> None:
    logo_and_label = group_lines(words(("CE", 500, 0, 60), ("Serial No.", 10, 10, 20),
                                       ("VOLPOL Pumps", 10, 40, 30), ("Typ: KX-1", 10, 80, 20)))
    assert assign_fields(logo_and_label, SCHEMA)["manufacturer"].value == "VOLPOL Pumps"
    merged = [Line(words(("FABRICANT: TRADRIVE S.p.A. SPEED 2953 rpm", 10, 0, 20)))]
    fields = assign_fields(merged, SCHEMA)
    assert fields["manufacturer"].value == "TRADRIVE S.p.A."
    assert fields["speed"].value == "2953 rpm"


def test_a_code_read_with_a_lowercase_twin_is_read_in_capitals() -> None:
    assert code_case("K1sE942P4 85319580cK 1459r/min 15kW Freq.50Hz 50/60Hz Motors Cos4") == \
        "K1SE942P4 85319580CK 1459r/min 15kW Freq.50Hz 50/60Hz Motors Cos4"
    fields = assign_fields(group_lines(words(
        ("Modelo K1sE942P4", 10, 0, 20), ("SF1.15", 10, 40, 20), ("50/60Hz", 10, 80, 20),
        ("S/N 85319580cK", 10, 120, 20))), SCHEMA)
    assert fields["model"].value == "K1SE942P4"      # not the service factor below it
    assert fields["serial"].value == "85319580CK"
    assert fields["frequency"].value == "50/60Hz"


def test_labels_glued_to_their_value_accented_or_chained() -> None:
    def model(run: str) -> str | None:
        return assign_fields([Line(words((run, 10, 0, 20)))], SCHEMA)["model"].value

    assert model("ModeleB77-160L-2") == "B77-160L-2"        # "Modèle" with its accent lost
    assert model("Model/TypeJ79-180L-4") == "J79-180L-4"
    assert model("type/typ4Hx1097-7MW87-8XQ6") == "4HX1097-7MW87-8XQ6"
    assert model("TYPREA0933T") == "REA0933T"
    assert model("Model/Colour") is None


def test_protection_and_month_names_in_either_case() -> None:
    fields = assign_fields(group_lines(words(
        ("Protection Ip44", 10, 0, 20), ("Année:23jAN20", 10, 40, 20))), SCHEMA)
    assert fields["ip_rating"].value == "Ip44"      # the rules compare it case-folded
    assert fields["manufactured"].value == "23jAN20"


def test_rows_of_a_tilted_plate_stay_rows() -> None:
    # a plate turned 5°: the value at the far right of a row sits lower than its label by
    # most of a line in image coordinates, level with the row below's label
    turn = np.radians(5.0)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    plate = [("MODELLO:", 150, 160), ("P42-180S-2", 500, 160),
             ("Ser.No.", 150, 200), ("39943499UF", 500, 200)]
    quads = [np.array([[x, y], [x + 12 * len(t), y], [x + 12 * len(t), y + 30], [x, y + 30]],
                      float) @ rotation.T for t, x, y in plate]
    flat = [Word(t, quad_box(q), 0.9, quad=q) for (t, _, _), q in zip(plate, quads, strict=True)]
    upright = [Word(t, box, 0.9, quad=q) for (t, _, _), q, box
               in zip(plate, quads, upright_boxes(quads), strict=True)]
    assert assign_fields(group_lines(flat), SCHEMA)["serial"].value != "39943499UF"
    fields = assign_fields(group_lines(upright), SCHEMA)
    assert fields["model"].value == "P42-180S-2"
    assert fields["serial"].value == "39943499UF"
    assert fields["serial"].box == quad_box(quads[3])  # evidence stays in the image's frame


def test_standard_plate_codes_are_never_a_model_or_serial() -> None:
    codes = ["6205-2Z/C3", "DE 6206-2Z", "6306-2RS", "IC 411", "IM B3", "IM1001",
             "IEC 60034-30-1", "GB18613", "VDE0530"]
    for name in ("model", "serial", "manufacturer"):
        assert not any(SCHEMA.fields[name].matches(code) for code in codes), name
    assert SCHEMA.fields["serial"].matches("GB870689")   # a serial that starts like one
    fields = assign_fields(group_lines(words(("Serial:", 10, 0, 20), ("6205-2Z/C3", 150, 0, 20),
                                             ("48213907KQ", 10, 40, 20))), SCHEMA)
    assert fields["serial"].value != "6205-2Z/C3"
