"""Field attachment per layout kind: table-driven cases, each a plate's text runs with boxes.

Runs are (text, x, y, width, height) in plate pixels; every case names the layout it stands
for and the fields it must attach. The cases marked "was wrong" failed before the
attachment learnt far gaps, stacked values, leader dots, captions and elimination.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.reader.calibration import Calibration, CalibrationError, Curve, field_kind
from appliance.reader.fields import assign_fields
from appliance.reader.lines import Word, group_lines
from appliance.schema import SchemaError, load_schema
from training.attach.evaluate import evaluate_attachment
from training.calibrate.fit import ece, fit, isotonic

SCHEMA = load_schema(Path(__file__).resolve().parents[1] / "config" / "schemas" / "motor.toml")
Run = tuple[str, int, int, int, int]

CASES: list[tuple[str, list[Run], dict[str, str | None]]] = [
    ("inline: label and value on one line", [
        ("Model:", 20, 20, 70, 20), ("VX132M-4", 100, 20, 110, 20),
        ("Serial No.", 20, 50, 100, 20), ("48213907KQ", 130, 50, 120, 20)],
     {"model": "VX132M-4", "serial": "48213907KQ"}),
    ("stacked, two columns: the next column's current is not the model (was wrong)", [
        ("Modelo", 20, 20, 60, 14), ("67.0 A", 400, 20, 60, 20),
        ("4ZH0416-9VQ54-5XK3", 20, 38, 200, 20)],
     {"model": "4ZH0416-9VQ54-5XK3", "current": "67.0 A"}),
    ("stacked: a far distractor beside the label loses to the value under it (was wrong)", [
        ("Type:", 20, 20, 50, 14), ("IEC 60034-30-1", 400, 20, 150, 20),
        ("XG948G-4", 20, 38, 100, 20)],
     {"model": "XG948G-4"}),
    ("two columns: a value ends at the far gap, not in the next column (was wrong)", [
        ("FABRICANT", 20, 20, 90, 20), ("Galro Electric", 130, 20, 140, 20),
        ("1~", 420, 20, 20, 20)],
     {"manufacturer": "Galro Electric"}),
    ("two columns: the next column's label ends a name", [
        ("FABRICANT:", 20, 20, 100, 20), ("MAXGALRO Inc. Fréquence", 130, 20, 230, 20),
        ("50/60 Hz", 370, 20, 80, 20)],
     {"manufacturer": "MAXGALRO Inc.", "frequency": "50/60 Hz"}),
    ("table: header cells over value cells", [
        ("U", 20, 100, 15, 16), ("I", 120, 100, 10, 16), ("kW", 220, 100, 25, 16),
        ("400 V", 20, 125, 60, 20), ("12.5 A", 120, 125, 60, 20), ("5.5 kW", 220, 125, 60, 20)],
     {"voltage": "400 V", "current": "12.5 A", "power": "5.5 kW"}),
    ("stacked: a voltage under a model's label, the model unread, is no model (was wrong)", [
        ("TYPE/TYP:", 130, 339, 94, 23), ("24V", 130, 395, 51, 26)],
     {"model": None, "voltage": "24V"}),
    ("leader dots between label and value", [
        ("MODELL", 20, 20, 70, 20), ("...........", 95, 20, 200, 20),
        ("7WN8373-1VL17", 300, 20, 140, 20)],
     {"model": "7WN8373-1VL17"}),
    ("caption: a small label under its value (was wrong)", [
        ("8HM4407-9CV98", 20, 100, 220, 14), ("Modell", 20, 121, 48, 11),
        ("Roulement", 20, 171, 110, 15)],
     {"model": "8HM4407-9CV98"}),
    ("title: the first clear run, not a taller word with descenders (was wrong)", [
        ("VENTMAX", 20, 10, 120, 24), ("Modell", 20, 50, 60, 20), ("AU-50/160", 90, 50, 90, 20),
        ("Bearing", 400, 48, 90, 27)],
     {"manufacturer": "VENTMAX", "model": "AU-50/160"}),
    ("runs an engine glued together: label and value without a space (was wrong)", [
        ("S/N2015-794241", 20, 20, 150, 20), ("Un110V", 20, 50, 70, 20),
        ("Annee:12.2017", 20, 80, 130, 20), ("FREQ.60 HZ", 20, 110, 110, 20)],
     {"serial": "2015-794241", "voltage": "110V", "manufactured": "12.2017",
      "frequency": "60 HZ"}),
    ("label and value glued without a space or a digit between (was wrong)", [
        ("TYPREA0933T", 20, 20, 120, 20), ("SERIALNO.09893408AF", 20, 50, 190, 20),
        ("SchutzartIP56", 20, 80, 130, 20), ("MODELLUMODEL", 20, 110, 130, 20)],
     {"model": "REA0933T", "serial": "09893408AF", "ip_rating": "IP56"}),
    ("a maker's name stops where a frequency begins in the same run", [
        ("Produttore", 20, 20, 100, 20), ("....................", 125, 20, 150, 20),
        ("NIKMAX Motors 50/60 Hz", 280, 20, 220, 20)],
     {"manufacturer": "NIKMAX Motors", "frequency": "50/60 Hz"}),
    ("a label word is never a value (was wrong)", [
        ("No.", 20, 20, 30, 20), ("SERIAL", 20, 44, 70, 20)],
     {"serial": None}),
    ("an unreadable label: the only serial-like run is taken, unsure (was wrong)", [
        ("NORDMOT GmbH", 20, 0, 160, 16), ("Typ:", 20, 20, 40, 20), ("QW99A-2", 70, 20, 80, 20),
        ("N°DSSRRG:", 20, 50, 90, 20), ("N23M69039", 120, 50, 100, 20),
        ("2018-05", 400, 50, 80, 20)],
     {"model": "QW99A-2", "serial": "N23M69039", "manufactured": "2018-05"}),
    ("two columns, rows an engine boxed loosely: rows never chain into one line (was wrong)", [
        ("SERIAL:", 118, 264, 110, 44), ("2026-428903", 288, 281, 196, 50),
        ("Herstelldatum:2017-12", 627, 259, 338, 65),
        ("额定电压", 115, 311, 128, 48), ("500V", 286, 328, 93, 43),
        ("Schutzart", 623, 308, 133, 44), ("IP56", 799, 322, 81, 45)],
     {"serial": "2026-428903", "voltage": "500V", "manufactured": "2017-12",
      "ip_rating": "IP56"}),
    ("stacked, boxes overlapping: a label over its value is not one line with it (was wrong)", [
        ("Modello:", 92, 277, 68, 21), ("M2ZC331TNS2", 90, 284, 144, 32),
        ("UKCA", 94, 347, 64, 30), ("89.8", 187, 400, 71, 39), ("A", 248, 404, 27, 31),
        ("spannung 690v", 464, 603, 243, 43)],
     {"model": "M2ZC331TNS2", "current": "89.8 A", "voltage": "690v"}),
    ("labels without accents or spaces, a value glued to the next label (was wrong)", [
        ("No de serie 150659-4006", 89, 315, 340, 31), ("IC411", 86, 365, 92, 38),
        ("Modelo:4MN3832-3BX83-6YW4Intensidad 34.0A", 115, 138, 821, 64),
        ("S/N/SerialNo.7235187993", 99, 600, 308, 33), ("VDE0530", 427, 597, 121, 33),
        ("QCPASS", 98, 640, 109, 42)],
     {"serial": "150659-4006", "model": "4MN3832-3BX83-6YW4", "current": "34.0A"}),
    ("a label glued to its value is no label over the next row (was wrong)", [
        ("Type/TypJW-50/250", 86, 264, 260, 43), ("S/N/Serial:", 83, 310, 135, 35),
        ("Y16C06017", 316, 319, 145, 37)],
     {"model": "JW-50/250", "serial": "Y16C06017"}),
    ("a label with a digit misread for a letter (was unattached)", [
        ("Mode11 Q33-90MA-8", 20, 20, 180, 20), ("SER1AL NO. GP078253", 20, 50, 200, 20)],
     {"model": "Q33-90MA-8", "serial": "GP078253"}),
    ("a value glued to the next label written small (was wrong)", [
        ("Serial No./e", 20, 20, 120, 20),
        ("2022-882204manufactured 05/2024", 150, 20, 300, 20)],
     {"serial": "2022-882204"}),
    ("an efficiency class under a model's label is no model (was wrong)", [
        ("mod.", 92, 207, 62, 29), ("WK144H-6", 242, 208, 149, 30),
        ("Corrente:", 442, 207, 111, 27), ("63.3 A", 585, 207, 86, 30), ("IE4", 92, 247, 50, 31),
        ("Poténcia", 442, 246, 103, 29), ("37kW", 555, 248, 83, 27)],
     {"model": "WK144H-6", "current": "63.3 A", "power": "37kW"}),
    ("a number the engine split with a space is no value with a leading zero (was wrong)", [
        ("Tensión 4 00V", 61, 415, 202, 34), ("Strom 05 A", 61, 455, 160, 34),
        ("MODELO:", 65, 228, 132, 33), ("X2TM437M8", 308, 226, 190, 37)],
     {"voltage": None, "current": None, "model": "X2TM437M8"}),
    ("a speck beside a label's colon (was unattached)", [
        ("I:.31,6/58,2A", 20, 20, 140, 20)],
     {"current": "31,6/58,2A"}),
    ("a unit's letters in mixed case (was unattached)", [
        ("PN", 20, 50, 30, 20), ("2.2 hP", 60, 50, 60, 20)],
     {"power": "2.2 hP"}),
    ("a serial beside its label beats a sticker word under it (was wrong)", [
        ("S/N", 99, 401, 40, 33), ("7235187993", 150, 401, 130, 33),
        ("VDE0530", 300, 397, 121, 33), ("QCPASS", 98, 441, 109, 42)],
     {"serial": "7235187993"}),
    ("one run is one field's value: the serial beside its label is not also the model whose "
     "label's own run is garbled (was wrong)", [
        ("MODÉLE/", 72, 246, 144, 35), ("6UC1321-1VM18-4PC6requency/:", 213, 244, 380, 39),
        ("50/60 Hz", 593, 245, 103, 35), ("Serial No.", 75, 282, 100, 32),
        ("160199-1758", 215, 281, 148, 35)],
     {"serial": "160199-1758", "model": None}),
    ("an unreadable label: a number that is a word of another field's value is not left "
     "over (was not read)", [
        ("ITHPOLTEC", 954, 0, 352, 64), ("N5", 313, 99, 106, 56),
        ("FUG41-201", 983, 100, 275, 66), ("SN 191167-6706", 305, 195, 423, 65),
        ("400 V", 302, 293, 158, 64), ("18.5", 293, 810, 129, 61), ("kW", 410, 807, 96, 64)],
     {"model": "FUG41-201", "serial": "191167-6706", "power": "18.5 kW"}),
    ("an unreadable label: a cut-off word in capitals is no code (was not read)", [
        ("type/typ:", 63, 485, 139, 49), ("GZR4959G", 233, 484, 173, 44),
        ("Auftra", 599, 485, 110, 40), ("S/\\/:", 62, 541, 138, 44),
        ("4550777326", 206, 542, 206, 42), ("Freque", 603, 545, 106, 43),
        ("DREHZ", 602, 601, 105, 39), ("Order", 65, 601, 99, 37)],
     {"model": "GZR4959G", "serial": "4550777326"}),
    ("label words no schema knows, each before a colon: the values after them are left over "
     "(was not read)", [
        ("KRAFTVOL GmbH", 80, 20, 300, 40), ("Ne: XG-40/250", 80, 80, 260, 40),
        ("SN 191167-6706", 80, 140, 280, 40), ("Detn: 06/2021", 80, 200, 250, 40),
        ("400 V", 80, 260, 100, 40)],
     {"model": "XG-40/250", "serial": "191167-6706", "manufactured": "06/2021",
      "voltage": "400 V"}),
    ("caption, two columns: the next column's two-word label beside a caption is no value, "
     "nor is its first word (was 'RATED')", [
        ("KV42-90L-4", 80, 160, 150, 20), ("55 kW", 620, 160, 85, 22),
        ("Type/Typ:", 80, 194, 110, 21), ("RATED POWER", 620, 194, 150, 16),
        ("2019-118204", 80, 262, 180, 20), ("50 Hz", 620, 262, 70, 20),
        ("Ser. No.", 80, 294, 110, 16)],
     {"model": "KV42-90L-4", "serial": "2019-118204", "power": "55 kW"}),
    ("caption: a plate whose labels stand under their values, a code just above and just "
     "below a label, takes the one above (was the one below)", [
        ("PX41-220", 60, 190, 130, 20), ("1450 rpm", 540, 190, 90, 26),
        ("Modelo", 60, 225, 110, 17),
        ("221053-7731", 60, 264, 140, 20), ("08/2021", 540, 264, 110, 20),
        ("Serial", 60, 298, 50, 14), ("Baujahr:", 540, 296, 100, 18),
        ("400 V", 60, 339, 110, 19), ("IP55", 540, 338, 50, 20),
        ("U:", 60, 373, 18, 13), ("3 kW", 60, 412, 80, 21)],
     {"model": "PX41-220", "serial": "221053-7731", "manufactured": "08/2021",
      "voltage": "400 V"}),
    ("leader: a maker's name, then a code a maker never is, close beside it (was "
     "'Kraftel IM 1001')", [
        ("FABRICANT:", 54, 50, 100, 20), ("................", 160, 62, 100, 4),
        ("Kraftel", 270, 48, 90, 22), ("IM 1001", 372, 48, 80, 20),
        ("Hersteller", 54, 100, 110, 20), ("........", 170, 112, 60, 4),
        ("NORVENT AG", 240, 98, 120, 22), ("GB 18613", 372, 99, 100, 19),
        ("Drehrichtung", 54, 140, 150, 24)],
     {"manufacturer": "Kraftel"}),
    ("caption: the detector joined the serial with the next column's power; the serial "
     "is still the run over its label (was not read)", [
        ("KR62G-6", 460, 208, 140, 36), ("48.20 A", 660, 205, 125, 37),
        ("Model", 468, 245, 77, 27), ("Rated current:", 660, 245, 140, 27),
        ("2021-486715 90 hp", 464, 311, 300, 48), ("Serial No.", 469, 352, 117, 28),
        ("Power:", 667, 353, 87, 26)],
     {"model": "KR62G-6", "serial": "2021-486715", "power": "90 hp"}),
    ("a serial's label misread past knowing, a word of letters before the value: the value "
     "is left over for the serial (was not read)", [
        ("AQUANORD S.p.A.", 72, 471, 204, 40), ("Typ B2VL787PC4", 71, 510, 117, 25),
        ("SERAENO 40846580", 70, 535, 137, 21), ("IEC 60034-1", 67, 559, 90, 21),
        ("Alt. 106", 67, 584, 78, 20), ("575 V", 67, 608, 45, 19)],
     {"model": "B2VL787PC4", "serial": "40846580", "voltage": "575 V"}),
    ("model and serial, both labels unread: taken in the schema's order from the top, a "
     "misread label only a model could be left aside (were not read)", [
        ("NIKTREX Co.", 82, 209, 258, 48), ("2EZ7437-5FN04-4CF1", 903, 281, 243, 28),
        ("EF85", 84, 324, 92, 30), ("2026-788371", 998, 317, 149, 27),
        ("460 V", 84, 395, 62, 24)],
     {"model": "2EZ7437-5FN04-4CF1", "serial": "2026-788371", "voltage": "460 V"}),
    ("a two-word label the detector cut in two is no value under a label, nor a title "
     "(was the serial 'RATED' at 1.0, the maker 'Rated')", [
        ("Type P4WR472SVR4", 37, 358, 300, 40), ("Rated current:", 478, 354, 214, 37),
        ("29.9/17.2A", 693, 354, 245, 40),
        ("S/N/MATRIC0LA:", 228, 412, 200, 31),
        ("Rated voltage 400V", 228, 447, 213, 31),
        ("RATED", 230, 485, 71, 26), ("CURRENT: 61.5A", 303, 483, 179, 28)],
     {"serial": None, "manufacturer": None, "model": "P4WR472SVR4", "voltage": "400V"}),
    ("a maker's name ends before a country of origin close beside it (was 'Rovanigal "
     "Antriebe Made')", [
        ("Produttore/Mfr Rovanigal Antriebe", 181, 81, 459, 49),
        ("Made in Germany", 636, 88, 240, 46), ("Type/Typ:", 183, 138, 134, 44),
        ("M4GC866E2", 354, 134, 171, 35)],
     {"manufacturer": "Rovanigal Antriebe", "model": "M4GC866E2"}),
    ("the detector joined a model to the power's label: the model ends before it (was "
     "'N04-180M-4P')", [
        ("Type/Typ:", 78, 322, 154, 43), ("N04-180M-4P:75 kW", 234, 317, 356, 47),
        ("Drehzahl:", 776, 317, 150, 46), ("1453rpm", 931, 317, 153, 50)],
     {"model": "N04-180M-4", "power": "75 kW", "speed": "1453rpm"}),
    ("a serial glued to a bearing code without a space ends before it (was "
     "'91458433JG6306-2RS' at 0.99); a label with its own value is no maker's name (was "
     "'MODELO V3UT784U4')", [
        ("MODELO V3UT784U4", 424, 103, 282, 36), ("Intensidad 12.6A", 791, 104, 229, 37),
        ("Serial/Número", 395, 160, 120, 21), ("91458433JG6306-2RS", 589, 159, 187, 24)],
     {"serial": "91458433JG", "model": "V3UT784U4", "manufacturer": None}),
    ("stacked: labels over their values, codes under and over a label, takes the one "
     "below", [
        ("Modelo", 60, 150, 110, 17), ("PX41-220", 60, 175, 130, 20),
        ("Serial", 60, 215, 50, 14), ("221053-7731", 60, 235, 140, 20),
        ("U:", 60, 275, 18, 13), ("400 V", 60, 295, 110, 19)],
     {"model": "PX41-220", "serial": "221053-7731", "voltage": "400 V"}),
]


def words(runs: list[Run]) -> list[Word]:
    """Runs as words with boxes."""
    return [Word(text, (x, y, x + w, y + h), 0.99) for text, x, y, w, h in runs]


@pytest.mark.parametrize("name, runs, want", CASES, ids=[c[0] for c in CASES])
def test_attachment_per_layout_kind(name: str, runs: list[Run], want: dict[str, str | None]
                                    ) -> None:
    found = assign_fields(group_lines(words(runs)), SCHEMA)
    for field_name, value in want.items():
        assert found[field_name].value == value, f"{name}: {field_name}"


def test_the_tail_of_a_split_number_is_never_a_sure_value() -> None:
    found = assign_fields(group_lines(words([("77.94/52 5 A", 498, 245, 115, 28),
                                             ("230 V", 229, 218, 64, 27)])), SCHEMA)
    assert found["current"].value == "5 A" and found["current"].confidence <= 0.5
    assert found["voltage"].value == "230 V" and found["voltage"].confidence > 0.9


def test_a_guess_by_elimination_is_never_confident() -> None:
    runs = next(runs for name, runs, _ in CASES if name.startswith("an unreadable label"))
    found = assign_fields(group_lines(words(runs)), SCHEMA)
    assert found["serial"].confidence <= 0.5
    assert found["model"].confidence > 0.9
    runs = next(runs for name, runs, _ in CASES if name.startswith("model and serial, both"))
    found = assign_fields(group_lines(words(runs)), SCHEMA)
    assert found["model"].confidence <= 0.5 and found["serial"].confidence <= 0.5


def test_oracle_runs_attach_on_held_out_layouts() -> None:
    report = evaluate_attachment(SCHEMA, split="heldout", n=40, runs="merged")
    assert report["attached_right"] >= 0.95, report["failures"][:3]
    assert {"caption/1", "caption/2", "leader/2"} & set(report["per_layout"])


def test_calibration_is_monotone_and_holds_on_a_held_out_set() -> None:
    import random

    rng = random.Random(3)

    def draw(n: int) -> list[tuple[float, bool]]:  # the truth: P(right | s) = s squared
        return [(s, rng.random() < s * s) for s in (rng.random() for _ in range(n))]

    calibration = fit({"code": draw(4000)})
    curve = calibration.curves["code"]
    assert list(curve.y) == sorted(curve.y) and list(curve.x) == sorted(curve.x)
    held_out = draw(4000)
    spec = SCHEMA.fields["model"]
    assert field_kind(spec) == "code"
    mapped = [(calibration.probability(spec, s), r) for s, r in held_out]
    assert ece(mapped) < 0.04 < ece(held_out)
    scores = [calibration.probability(spec, s / 100) for s in range(101)]
    assert scores == sorted(scores)


def test_isotonic_pools_violators() -> None:
    curve = isotonic([(0.1, True), (0.2, False), (0.3, False), (0.9, True)])
    assert curve.y == (0.0 + 1 / 3, 1.0) or list(curve.y) == sorted(curve.y)
    assert Curve((0.0, 1.0), (0.2, 0.8))(0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("content, problem", [
    ("not json", "not a calibration file"),
    (json.dumps({"curves": {"code": {"x": [0.1, 0.5], "y": [0.9, 0.2]}}}), "not a monotone"),
    (json.dumps({"curves": {"code": {"x": [0.1], "y": [1.5]}}}), "not a monotone"),
    (json.dumps({"curve": {}}), "not a calibration file"),
])
def test_a_broken_calibration_file_names_the_problem(tmp_path: Path, content: str,
                                                      problem: str) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=problem) as caught:
        Calibration.load(path)
    assert str(path) in str(caught.value)


def test_the_shipped_calibration_loads() -> None:
    root = Path(__file__).resolve().parents[1]
    calibration = Calibration.load(root / "models" / "ppocr-reader" / "calibration.json")
    assert {"code", "unit", "pooled"} <= set(calibration.curves)


CRANE_SCHEMA = '''
name = "hoist"
version = 1
[fields.manufacturer]
labels = ["Manufacturer", "Hersteller"]
value = '[A-Z][A-Za-z&.\\-]*(?: [A-Za-z&.\\-]+){0,4}'
wraps = 1
[fields.serial]
labels = ["Serial No."]
value = '[A-Z0-9][A-Z0-9\\-]{4,20}'
[fields.load]
labels = ["Rated load", "SWL"]
value = '\\d{1,3}(?:,\\d{3})* ?kg'
also = '\\d{1,3}(?:,\\d{3})* ?lbs'
'''


def test_a_schema_file_describes_wrapped_values_and_a_second_unit(tmp_path: Path) -> None:
    path = tmp_path / "hoist.toml"
    path.write_text(CRANE_SCHEMA)
    schema = load_schema(path)
    runs: list[Run] = [
        ("Manufacturer:", 20, 20, 130, 20), ("Drivetrex Antriebs-", 160, 20, 190, 20),
        ("technik GmbH", 160, 44, 120, 20),
        ("Serial No.", 20, 80, 100, 20), ("HX-20931", 160, 80, 90, 20),
        ("Rated load", 20, 110, 100, 20), ("30,480 kg 67,200 lbs", 160, 110, 200, 20),
        ("2,000 kg", 20, 134, 80, 20)]                  # the next row: a hook's own load
    found = assign_fields(group_lines(words(runs)), schema)
    assert found["manufacturer"].value == "Drivetrex Antriebstechnik GmbH"
    assert found["manufacturer"].box == (160, 20, 350, 64)
    assert found["serial"].value == "HX-20931"                   # not swallowed by the wrap
    assert found["load"].value == "30,480 kg"
    # without "also" the pounds make the run beside no whole value and the row below wins
    plain = schema.model_copy(deep=True)
    plain.fields["load"].also = None
    plain.fields["manufacturer"].wraps = 0
    unplain = assign_fields(group_lines(words(runs)), plain)
    assert unplain["load"].value == "2,000 kg"
    assert unplain["manufacturer"].value == "Drivetrex Antriebs-"
    path.write_text(CRANE_SCHEMA.replace("also = '", "also = '(unclosed"))
    with pytest.raises(SchemaError, match=r"load\.also: .*bad regex"):
        load_schema(path)


def test_linker_tokens_targets_and_decoding_line_up() -> None:
    import torch

    from training.attach.linker import Linker, feature_size, features, link, targets, tokens_of

    runs: list[Run] = [("Serial No. 48213907KQ", 20, 20, 210, 20), ("Un 400 V", 20, 50, 90, 20)]
    tokens, texts = tokens_of(group_lines(words(runs)))
    assert [t.text for t in tokens] == ["Serial", "No.", "48213907KQ", "Un", "400", "V"]
    x = features(tokens, texts, SCHEMA)
    assert x.shape == (6, feature_size(SCHEMA)) and torch.isfinite(x).all()
    names = list(SCHEMA.fields)
    y = targets(tokens, texts, {"serial": "48213907KQ", "voltage": "400 V"},
                {"serial", "voltage"}, names)
    assert y.tolist() == [0, 0, 1 + names.index("serial"), 0, 1 + names.index("voltage"),
                          1 + names.index("voltage")]
    model = Linker(feature_size(SCHEMA), len(names)).eval()
    got = link(model, tokens, texts, x, names)
    assert set(got) == set(names)
    assert all(v is None or v in " ".join(texts) for v in got.values())


def test_two_models_reads_are_compared_value_by_value(tmp_path: Path) -> None:
    from training.attach.reads import compare

    def field(value: str, legible: bool = True) -> dict[str, object]:
        return {"value": value, "shown": True, "cut": False, "occluded": 0.0,
                "legible": legible}

    def record(index: int, runs: list[str]) -> dict[str, object]:
        return {"index": index, "fields": {"serial": field("SN-4821"), "voltage": field("400 V"),
                                           "power": field("7.5 kW", legible=False)},
                "words": [{"text": t, "box": [0, 0, 10, 10], "confidence": 0.9} for t in runs]}

    for name, frames in (("old", [["SN-4821"], ["SN 4821", "400V"]]),
                         ("new", [["SN-4B21", "400 V"], ["SN-4821", "400 v"]])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "station.jsonl").write_text("".join(
            json.dumps(record(i, runs)) + "\n" for i, runs in enumerate(frames)))
    seen = compare(tmp_path / "new" / "station.jsonl", tmp_path / "old" / "station.jsonl")
    # 2 frames × 2 legible fields; the illegible power is not counted
    assert seen["values"] == 4
    # gained: frame 0's voltage, frame 1's serial; lost: frame 0's serial (misread as 4B21)
    assert (seen["gained"], seen["lost"]) == (2, 1)
    assert seen["values_in_text"] == 0.75 and seen["baseline_values_in_text"] == 0.5
