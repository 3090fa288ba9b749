"""FACS action units as text: parse a coding sheet's AU cell and say it in words.

The attribute-embedding method (shared/papers/attribute-contrastive.txt, Table II) turns
each training clip's action units into a sentence for a text encoder. AU cells are
written differently across the sheets (datasets.md); ``parse_aus`` reads them all:

- ``12``, ``AU12``, ``A12`` — one AU (a prefix ``AU``/``A`` before the number is dropped);
- ``L10``, ``R14`` — unilateral (left/right); ``T``/``B`` (top/bottom) and ``U``
  (unilateral, side unknown) are read as well;
- ``12C``, ``A9E``, ``10A/B`` — intensity letters A-E after the number (a range when
  slashed);
- ``4+L10`` — co-occurring AUs; ``R12 or R14``, ``12/14`` — alternatives;
  ``(R6 or R12)+R15`` — grouped alternatives;
- ``?`` marks an uncertain code and is ignored; spaces and a trailing ``+`` too.

A ``+`` inside parentheses is read as one more alternative of the group (no sheet in
datasets.md nests a conjunction in an alternative).

``au_sentence`` joins the names of Table II (the paper's typos "Check Raiser"/"Check
Puffer" read as cheek) extended with the rest of the FACS main codes, so that every AU
the real sheets use has words: "4+L10" -> "brow lowerer, left upper lip raiser". A
number with no FACS name becomes "action unit N". An empty cell gives "" (the caller
decides what a clip without AUs means).

``au_vector`` turns a cell into the 0/1 targets of AU detection over a declared AU set
(``CD6ME_AUS``: the 12 AUs of MEB's cross-dataset protocol). Side and intensity do not
matter (``L10``, ``10C`` and ``AU10`` all set AU 10); a part with alternatives ("R12 or
R14") sets an AU only when every alternative is that AU (the coder was unsure which, so
neither is a target); 4DME's ``(k)`` marks are removed before parsing by
``without_k_marks`` (the loader's business). The AU task stores a clip's vector as one
integer, bit k set when AU ``aus[k]`` is coded (``au_mask``; ``mask_matrix`` and
``matrix_masks`` convert (n,) masks and (n, len(aus)) 0/1 matrices).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from mer_bench.errors import MerBenchError

AU_NAMES: dict[int, str] = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 8: "lips toward each other", 9: "nose wrinkler",
    10: "upper lip raiser", 11: "nasolabial deepener", 12: "lip corner puller",
    13: "cheek puffer", 14: "dimpler", 15: "lip corner depressor", 16: "lower lip depressor",
    17: "chin raiser", 18: "lip puckerer", 19: "tongue show", 20: "lip stretcher",
    21: "neck tightener", 22: "lip funneler", 23: "lip tightener", 24: "lip pressor",
    25: "lips part", 26: "jaw drop", 27: "mouth stretch", 28: "lip suck", 29: "jaw thrust",
    30: "jaw sideways", 31: "jaw clencher", 32: "lip bite", 33: "cheek blow", 34: "cheek puff",
    35: "cheek suck", 36: "tongue bulge", 37: "lip wipe", 38: "nostril dilator",
    39: "nostril compressor", 41: "lid droop", 42: "slit", 43: "eyes closed", 44: "squint",
    45: "blink", 46: "wink", 51: "head turn left", 52: "head turn right", 53: "head up",
    54: "head down", 55: "head tilt left", 56: "head tilt right", 57: "head forward",
    58: "head back", 61: "eyes turn left", 62: "eyes turn right", 63: "eyes up",
    64: "eyes down",
}
SIDES = {"L": "left", "R": "right", "T": "upper", "B": "lower", "U": "one-sided"}
INTENSITIES = {"A": "trace", "B": "slight", "C": "marked", "D": "severe", "E": "maximum"}

_TOKEN = re.compile(r"\s*(?:(?P<group>[()+,])|(?P<or>or\b|/(?=\s*(?:AU|A)?[LRTBU]?\d))"
                    r"|(?P<code>(?:AU\s*|A(?=\d))?(?P<side>[LRTBU])?(?P<number>\d+)"
                    r"(?P<intensity>[A-E](?:/[A-E](?![0-9]))*)?\??)|(?P<mark>\?))",
                    re.IGNORECASE)


@dataclass(frozen=True)
class ActionUnit:
    """One coded AU: FACS number, side ("" or L/R/T/B/U), intensity letters ("" or e.g. "A/B")."""

    number: int
    side: str = ""
    intensity: str = ""

    def words(self) -> str:
        name = AU_NAMES.get(self.number, f"action unit {self.number}")
        side = SIDES.get(self.side, "")
        levels = [INTENSITIES[c] for c in self.intensity.split("/") if c]
        intensity = " to ".join(levels)
        return " ".join(w for w in (intensity, side, name) if w)


Alternatives = tuple[tuple[ActionUnit, ...], ...]
"""A parsed cell: co-occurring parts (joined by ``+``), each a tuple of alternatives."""


def parse_aus(text: str) -> Alternatives:
    """Parse one AU cell into co-occurring parts, each a tuple of alternative AUs.

    "(R6 or R12)+R15" -> ((R6, R12), (R15,)). Raises ``MerBenchError`` naming the cell and
    the first character it cannot read."""
    tokens = _tokens(str(text))
    parts: list[tuple[ActionUnit, ...]] = []
    alternatives: list[ActionUnit] = []
    depth, expect_code = 0, True
    for kind, value, position in tokens:
        if kind == "code":
            if not expect_code:
                raise MerBenchError(f"AU cell {text!r}: two codes without '+' or 'or' at "
                                    f"character {position}")
            alternatives.append(value)
            expect_code = False
        elif kind == "or" or (kind == "group" and value in "+,"):
            if value in "+," and depth == 0 and alternatives:
                parts.append(tuple(alternatives))
                alternatives = []
            expect_code = True
        elif value == "(":
            depth += 1
        elif value == ")":
            depth -= 1
            if depth < 0:
                raise MerBenchError(f"AU cell {text!r}: unbalanced ')' at character {position}")
    if depth:
        raise MerBenchError(f"AU cell {text!r}: unbalanced '('")
    if alternatives:
        parts.append(tuple(alternatives))
    return tuple(parts)


def _tokens(text: str) -> list[tuple[str, object, int]]:
    out, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise MerBenchError(f"AU cell {text!r}: cannot read {text[position:]!r} "
                                f"(character {position})")
        if match["code"]:
            unit = ActionUnit(int(match["number"]), (match["side"] or "").upper(),
                              (match["intensity"] or "").upper())
            out.append(("code", unit, position))
        elif match["or"]:
            out.append(("or", "or", position))
        elif match["group"]:
            out.append(("group", match["group"], position))
        position = match.end()
    return out


def au_sentence(text: str) -> str:
    """The AU cell in words: parts joined by ", ", alternatives by " or "."""
    return ", ".join(" or ".join(unit.words() for unit in part) for part in parse_aus(text))


CD6ME_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17)
"""The AU set of MEB's CD6ME protocol (Varanka et al., "Data Leakage and Evaluation
Issues in Micro-Expression Analysis"): the AUs with enough instances across CASME,
CASME II, SAMM, 4DME, MMEW and CAS(ME)^3-A."""


def au_vector(text: str, aus: tuple[int, ...] = CD6ME_AUS) -> np.ndarray:
    """uint8 (len(aus),): 1 where the cell codes that AU for sure (module docstring)."""
    present = set()
    for part in parse_aus(text):
        numbers = {unit.number for unit in part}
        if len(numbers) == 1:
            present |= numbers
    return np.array([a in present for a in aus], dtype=np.uint8)


_K_MARKED = re.compile(r"(?:AU)?\s*[LRTBU]?\d+[A-E]?\s*\(k\)", re.IGNORECASE)


def without_k_marks(text: str) -> tuple[str, list[str]]:
    """(the cell without its ``(k)``-marked AUs, the codes removed): ``"AU1+AU2(k)+AU4"``
    -> ``("AU1+AU4", ["AU2"])``. 4DME marks some AUs ``(k)``; MEB's loader zeroes them by
    default and so does ours (what the mark means is not in any file we could read)."""
    removed = [m.group(0)[:-3].strip() for m in _K_MARKED.finditer(text)]
    kept = [part for part in re.split(r"\+", _K_MARKED.sub("", text)) if part.strip()]
    return "+".join(p.strip() for p in kept), removed


def au_mask(text: str, aus: tuple[int, ...] = CD6ME_AUS) -> int:
    """The cell's ``au_vector`` as one integer: bit k set when AU ``aus[k]`` is coded."""
    return int(matrix_masks(au_vector(text, aus)[None])[0])


def matrix_masks(matrix: np.ndarray) -> np.ndarray:
    """int64 (n,) masks of a 0/1 (n, A) matrix (bit k = column k); A <= 62."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[1] > 62:
        raise MerBenchError(f"AU matrix of shape {matrix.shape}; expected (n, A <= 62)")
    bits = np.int64(1) << np.arange(matrix.shape[1], dtype=np.int64)
    return (matrix.astype(np.int64) != 0) @ bits


def mask_matrix(masks: np.ndarray, n_aus: int) -> np.ndarray:
    """uint8 (n, n_aus) 0/1 matrix of int (n,) masks (column k = bit k)."""
    masks = np.asarray(masks, dtype=np.int64)
    return ((masks[:, None] >> np.arange(n_aus, dtype=np.int64)) & 1).astype(np.uint8)
