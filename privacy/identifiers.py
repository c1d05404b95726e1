"""Detectors that reach further than the core set in `privacy.detectors`: EU national identifiers,
passport numbers and dates of birth in context, MAC addresses, credentials written in free text and
obfuscated e-mail addresses.

Same shape as the core detectors (see the docstring of `privacy.detectors`): the one RE2 pass of
`detectors.scan` finds the keywords and shapes these start with (`TRIGGERS` there), a bounded `re`
pattern runs only in a small window around each of them, and a validator decides:

* identifiers with a check digit go through python-stdnum (`de.idnr`, `fr.nir`, `es.dni`, `es.nie`,
  `it.codicefiscale`, `nl.bsn`, `pl.pesel`); the UK National Insurance number has no check digit, so
  its prefix rules (HMRC's list of letters never issued) are what is checked;
* bare digit runs that pass a checksum by chance are common (one 9-digit number in eleven passes the
  BSN test), so a number with no letters and no official grouping counts only next to a keyword that
  names it (`BSN`, `PESEL`, `Steuer-ID`, `sécurité sociale` …), in several languages;
* passport numbers and dates of birth have no checksum at all: they are reported only right after a
  keyword (`passport`, `Reisepass`, `born`, `DOB`, `geboren`, `né le` …). A bare date or a timestamp
  is never touched.

Every pattern has bounded quantifiers and no nested unbounded repetition, so matching stays linear in
the window; the windows are bounded too.
"""

from __future__ import annotations

import datetime
import re

from stdnum import mac as stdnum_mac
from stdnum.de import idnr as stdnum_idnr
from stdnum.es import dni as stdnum_dni
from stdnum.es import nie as stdnum_nie
from stdnum.fr import nir as stdnum_nir
from stdnum.it import codicefiscale as stdnum_cf
from stdnum.nl import bsn as stdnum_bsn
from stdnum.pl import pesel as stdnum_pesel

from privacy.detectors import Finding, _near

NATIONAL_NUMBER_DETECTORS = frozenset({"de_tax_id", "fr_nir", "nl_bsn", "pl_pesel"})  # in `find_numbers`
IDENTIFIER_DETECTORS = frozenset(  # in `Redactor._find_identifiers`, from the trigger scan
    {"credential", "email_obfuscated", "es_dni_nie", "it_codice_fiscale", "uk_nino", "mac_address", "passport",
     "date_of_birth"}
)


def merged_seeds(seeds: dict, *names: str) -> list[int] | None:
    """Offsets of several trigger families, in order (None: one of them overflowed, scan it all)."""
    found = [seeds[name] for name in names if name in seeds]
    if any(starts is None for starts in found):
        return None
    return found[0] if len(found) == 1 else sorted(set().union(*found))

_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

# ---------------------------------------------------------------------------------------------
# National identification numbers made of digits only (found in the numeric runs of `scan`)

# Searched in the 48 characters before a candidate number. A keyword names the number; without one,
# only the grouping the issuer prints (`36 574 261 809`, `1 84 12 76 451 089 46`) counts.
_CONTEXT_BEFORE = 48
_NUMBER_CONTEXT = {
    "de_tax_id": re.compile(
        r"(?i:steuer[\s\-_]?id|steuer-?identifikations|steuerliche[n]? identifikations|identifikationsnummer|"
        r"\bid-?nr\b|\bidnr\b|steuernummer|tax[\s\-]?id|\btin\b)"
    ),
    "fr_nir": re.compile(
        r"(?i:\bnir\b|s[ée]curit[ée] sociale|\bs[ée]cu\b|\binsee\b|carte vitale|social security|\bnss\b)"
    ),
    "nl_bsn": re.compile(r"(?i:\bbsn\b|burger ?service ?nummer|sofi-?nummer|citizen service number)"),
    "pl_pesel": re.compile(r"(?i:\bpesel\b)"),
}
_FORMATTED = {
    "de_tax_id": re.compile(r"[1-9][0-9] [0-9]{3} [0-9]{3} [0-9]{3}\Z"),
    "fr_nir": re.compile(r"[1-478] [0-9]{2} [0-9]{2} [0-9]{2} [0-9]{3} [0-9]{3} [0-9]{2}\Z"),
}


# Every keyword of `_NUMBER_CONTEXT` contains one of these (lower case).
_CONTEXT_STEMS = ("steuer", "idnr", "id-nr", "identifikation", "tax", "tin", "nir", "sécu", "secu", "insee",
                  "vitale", "social security", "nss", "bsn", "burger", "sofi", "citizen service", "pesel")
_LENGTHS = frozenset({9, 11, 15})
_NOT_DIGITS = {ord(c): None for c in " -.()/\u00a0\u2010\u2011\u2012\u2013\uff0d+"}
_ANY_FORMATTED = re.compile(
    r"(?<![0-9 ])(?:" + "|".join(p.pattern.removesuffix(r"\Z") for p in _FORMATTED.values()) + r")(?![0-9])"
)


def _nir_ok(digits: str) -> bool:
    # stdnum checks the length and key; the sex digit and birth month rule out most other 15-digit
    # numbers that pass the key by chance (1 in 97).
    if digits[0] not in "12378":
        return False
    month = int(digits[3:5])
    return (1 <= month <= 12 or month >= 20) and stdnum_nir.is_valid(digits)


_VALIDATORS = {
    "de_tax_id": (11, stdnum_idnr.is_valid),
    "pl_pesel": (11, stdnum_pesel.is_valid),
    "nl_bsn": (9, stdnum_bsn.is_valid),
    "fr_nir": (15, _nir_ok),
}


def national_numbers_in(text: str, run: str, base: int, on: frozenset, out: list) -> list[tuple[int, int]]:
    """Steuer-IdNr, NIR, BSN and PESEL in one numeric run (`run` = text[base:base + len(run)],
    fullwidth digits already folded). Returns the spans claimed, relative to the run."""
    # Most runs are amounts, dates, ids and phone numbers: the digit count, then C-speed substring
    # checks for the keywords rule them out before any regex runs.
    if len(run.translate(_NOT_DIGITS)) not in _LENGTHS and not any(
        len(part.translate(_NOT_DIGITS)) in _LENGTHS for part in run.split(" ")
    ):
        return []
    before = text[max(0, base - _CONTEXT_BEFORE):base].lower()
    if not any(stem in before for stem in _CONTEXT_STEMS) and _ANY_FORMATTED.search(run) is None:
        return []
    claimed: list[tuple[int, int]] = []
    pieces = [(0, len(run))]
    if " " in run:
        # `PESEL 44051401359 030 1234567`: a run may hold several numbers; try each group too.
        pos = 0
        for part in run.split(" "):
            if part:
                pieces.append((pos, pos + len(part)))
            pos += len(part) + 1
    for start, end in pieces:
        if _overlaps_any(claimed, start, end):
            continue
        piece = run[start:end]
        digits = "".join(c for c in piece if c.isdigit())
        if len(digits) not in (9, 11, 15) or len(piece) - len(digits) > 7:
            continue
        window = text[max(0, base + start - _CONTEXT_BEFORE):base + start]
        # The keyword is on the same line, in the same string (`find_many` joins strings with NUL).
        window = window[max(window.rfind("\n"), window.rfind("\x00")) + 1:]
        for name, (length, is_valid) in _VALIDATORS.items():
            if name not in on or len(digits) != length:
                continue
            formatted = name in _FORMATTED and _FORMATTED[name].match(piece) is not None
            named = _named(_NUMBER_CONTEXT[name], window, is_valid)
            if not formatted and not (named and piece.isdigit()):
                continue
            if is_valid(digits):
                out.append(Finding(base + start, base + end, name, digits))
            elif not named:
                continue
            # Claimed even when the checksum fails: a number its keyword names (`Steuer-
            # Identifikationsnummer 36574261808`, mistyped) is that identifier, not a phone number.
            claimed.append((start, end))
            break
    return claimed


_NUMBER_IN_BETWEEN = re.compile(r"[0-9](?:[0-9 ]{0,20}[0-9])?")
_ANOTHER_FIELD = re.compile(
    r"[:=\"\n]|\.\s|(?i:numm?er|number|num[ée]ro|n[úu]mero|numer|\bnr\b|\bno\b|\bref|order|auftrag|bestell|kunde|"
    r"klant|rechnung|invoice|ticket|\bid\b|karty|commande|pedido|ordine|client|customer)"
)


def _named(keyword: re.Pattern, window: str, is_valid) -> bool:
    """The last keyword in `window` names the number that follows it, unless another number stands
    in between that is not one of the same kind: `BSN 123456782, klantnummer 111222333` names only
    the first, `Steuer-IdNr 36 574 261 809, my wife's 86095742719` both."""
    matches = list(keyword.finditer(window))
    if not matches:
        return False
    last = matches[-1]
    between = window[last.end():]
    if not any(c.isdigit() for c in between):
        return True
    numbers = list(_NUMBER_IN_BETWEEN.finditer(between))
    if not all(is_valid(m.group().replace(" ", "")) for m in numbers):
        return False
    # A list goes on (`…, my wife's is …`); another field does not (`","kundennummer":"`, `. Order no.`).
    tail = between[numbers[-1].end():]
    return len(tail) <= 24 and _ANOTHER_FIELD.search(tail) is None


def _overlaps_any(spans, start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in spans)


# ---------------------------------------------------------------------------------------------
# Identifiers with letters: Spanish DNI/NIE, Italian codice fiscale, UK National Insurance number

_DNI = re.compile(r"(?<![A-Za-z0-9.\-])([0-9]{8}|[0-9]{2}\.[0-9]{3}\.[0-9]{3})([ \-]?)([A-Z])(?![A-Za-z0-9])")
_NIE = re.compile(r"(?<![A-Za-z0-9\-])([XYZ])([ \-]?)([0-9]{7})\2([A-Z])(?![A-Za-z0-9])")
_CF_DIGIT = "0-9LMNPQRSTUV"
_CF = re.compile(
    rf"(?<![A-Za-z0-9])(?i:[A-Z]{{6}}[{_CF_DIGIT}]{{2}}[ABCDEHLMPRST][{_CF_DIGIT}]{{2}}[A-Z][{_CF_DIGIT}]{{3}}[A-Z])"
    r"(?![A-Za-z0-9])"
)
_NINO = re.compile(
    r"(?<![A-Za-z0-9_\-])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z])( ?)([0-9]{2})\2([0-9]{2})\2([0-9]{2})\2([A-D])"
    r"(?![A-Za-z0-9])"
)
# Prefixes HMRC never issues (and the administrative ones): `QQ 12 34 56 C` is the textbook example.
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_NINO_SUFFIXES = frozenset("ABCD")


def _dni_at(text: str, lo: int, hi: int, out: list) -> None:
    for m in _DNI.finditer(text, max(0, lo), min(len(text), hi)):
        number = m.group(1).replace(".", "") + m.group(3)
        if stdnum_dni.is_valid(number):
            out.append(Finding(m.start(), m.end(), "es_dni_nie", number))


def find_letter_ids(text: str, on: frozenset, seeds: dict, runs, out: list) -> None:
    """`seeds` from `detectors.scan`; `runs` its numeric runs (a DNI's digits open a numeric run when
    the number detectors are on, so its trigger never fires: the run's end tells it instead)."""
    n = len(text)
    if "es_dni_nie" in on:
        if "es_id" in seeds:
            starts = seeds["es_id"]
            if starts is None:
                _dni_at(text, 0, n, out)
                for m in _NIE.finditer(text):
                    _nie(m, out)
            else:
                for i in starts:
                    _dni_at(text, i, i + 16, out)
                    m = _NIE.match(text, i)
                    if m is not None:
                        _nie(m, out)
        if runs:
            for lo, hi in runs:
                # The run ends in front of the control letter (`12345678Z`, `12.345.678-Z`).
                if hi < n and "A" <= text[hi] <= "Z":
                    _dni_at(text, max(0, lo - 1), hi + 3, out)
    if "it_codice_fiscale" in on and ("it_cf" in seeds or "iban" in seeds):
        # The trigger starts at the year, six letters into the code; in upper case the `iban`
        # trigger (`RA85` in `RSSMRA85T10A562S`) comes first, four letters in.
        by_year, by_iban = seeds.get("it_cf", []), seeds.get("iban", [])
        if by_year is None or by_iban is None:
            candidates = _CF.finditer(text)
        else:
            starts = sorted({i - 6 for i in by_year if i >= 6}
                            | {i - 4 for i in by_iban if i >= 4 and text[i - 4:i].isalpha()})
            candidates = (_CF.match(text, i) for i in starts)
        for m in candidates:
            if m is None:
                continue
            code = m.group().upper()
            if stdnum_cf.is_valid(code):
                out.append(Finding(m.start(), m.end(), "it_codice_fiscale", code))
    if "uk_nino" in on and ("gb_nino" in seeds or "iban" in seeds):
        spaced, compact = seeds.get("gb_nino", []), seeds.get("iban", [])
        if spaced is None or compact is None:
            starts = None
        else:
            # `AB123456C`: most `iban` hits (`JD0123…` tracking numbers) fail on the suffix letter.
            starts = sorted(spaced + [i for i in compact if text[i + 8:i + 9] in _NINO_SUFFIXES])
        for m in _near(text, starts, _NINO, back=0, ahead=14):
            if m.group(1) in _NINO_BAD_PREFIXES:
                continue
            out.append(Finding(m.start(), m.end(), "uk_nino", "".join(m.groups()[::1]).replace(" ", "")))


def _nie(m: re.Match, out: list) -> None:
    number = m.group(1) + m.group(3) + m.group(4)
    if stdnum_nie.is_valid(number):
        out.append(Finding(m.start(), m.end(), "es_dni_nie", number))


# ---------------------------------------------------------------------------------------------
# MAC addresses

_HEX2 = "[0-9A-Fa-f]{2}"
_MAC = re.compile(
    rf"{_HEX2}([:\-]){_HEX2}\1{_HEX2}\1{_HEX2}\1{_HEX2}\1{_HEX2}"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}"
)
_HEXISH = frozenset("0123456789abcdefABCDEF")
_MAC_BEFORE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:.-")


def find_macs(text: str, starts: list[int] | None, out: list, runs=None) -> None:
    """EUI-48 as `aa:bb:cc:dd:ee:ff`, `AA-BB-…` or Cisco's `aabb.ccdd.eeff`. Longer colon-hex runs
    (SSH/TLS fingerprints, IPv6, hex dumps) are not MACs; group addresses (broadcast, multicast such
    as `01:00:5e:…` or `33:33:…`) and the all-zero address identify no device and stay."""
    n = len(text)
    # The trigger starts at the first separator (`aa:bb:…`) or the first dot (`aabb.ccdd.eeff`).
    candidates = _MAC.finditer(text) if starts is None else [
        _MAC.match(text, i - 2) if text[i] != "." else _MAC.match(text, i - 4) for i in starts if i >= 2
    ]
    if runs and starts is not None:
        # `0050.5699.84a2`, `00-12-34-56-78-90`: digits first, so the number scan took the start.
        for lo, hi in runs:
            if hi - lo >= 9 and ("." in text[lo:hi] or "-" in text[lo:hi]):
                candidates.append(_MAC.search(text, lo, min(n, hi + 8)))
    for m in candidates:
        if m is None:
            continue
        start, end = m.span()
        if start > 0 and text[start - 1] in _MAC_BEFORE and not (start > 1 and text[start - 2] == "\\"):
            continue
        if end < n and (text[end] in _ALNUM or text[end] == "_" or (
            text[end] in ":-." and text[end + 1:end + 2] in _HEXISH and text[end + 1:end + 2] != ""
        )):
            continue
        value = m.group()
        if "." in value:
            if not any(c.isalpha() for c in value):
                continue  # `2024.0610.1842`: a build number, not a MAC
            value = ":".join(value.replace(".", "")[i:i + 2] for i in range(0, 12, 2))
        value = value.lower().replace("-", ":")
        if value == "00:00:00:00:00:00" or int(value[:2], 16) & 1:
            continue
        # stdnum's format check; its manufacturer lookup is skipped: it costs ~5 ms and the IEEE
        # registry covers nearly every prefix, so it tells nothing apart.
        if stdnum_mac.is_valid(value, validate_manufacturer=False):
            out.append(Finding(start, end, "mac_address", value))


# ---------------------------------------------------------------------------------------------
# Passport numbers and dates of birth, in context

# A passport number right after the keyword: up to three short words in between (`number`, `Nr.`,
# `n°`, `numéro`, `is`), then 6–9 capitals and digits with at least five digits (`C01X00T47`,
# `12AB34567`, `123456789`, `PAA123456`). Anything else first (a date, `35x45`, an amount) ends it.
_PASSPORT_TAIL = re.compile(
    r"[^\s:#.,;\x00]{0,12}(?:[\s:#=\-\"'()]{1,4}(?:(?i:no|nr|n)[.°º]|[^\W\d_]{1,10})){0,3}[\s:#=\-\"'()]{1,4}"
    r"([A-Z0-9]{6,9})(?![A-Za-z0-9\-/]|\.[A-Za-z0-9])"
)


def find_passports(text: str, starts: list[int] | None, out: list) -> None:
    if starts is None:
        starts = [m.start() for m in _PASSPORT_KEYWORD.finditer(text)]
    for i in starts:
        k = _PASSPORT_KEYWORD.match(text, i)
        if k is None:
            continue
        m = _PASSPORT_TAIL.match(text, k.end(), min(len(text), k.end() + 80))
        if m is None:
            continue
        value = m.group(1)
        if sum(c.isdigit() for c in value) < 5:
            continue
        out.append(Finding(m.start(1), m.end(1), "passport", value))


_PASSPORT_KEYWORD = re.compile(
    r"(?i:pass(?:port|eport|aporte|aporto|nummer|-nr)|reisepass|paspoort|paszport|pasaport)"
)

_MONTHS = {
    # en, de, fr, es, it, nl, pl (genitive, as dates are written) — lower case, without a final dot
    **dict.fromkeys(["january", "jan", "januar", "jänner", "janvier", "enero", "gennaio", "januari", "stycznia"], 1),
    **dict.fromkeys(["february", "feb", "februar", "février", "fevrier", "febrero", "febbraio", "februari",
                     "lutego"], 2),
    **dict.fromkeys(["march", "mar", "märz", "maerz", "mars", "marzo", "maart", "marca", "mär"], 3),
    **dict.fromkeys(["april", "apr", "avril", "abril", "aprile", "kwietnia"], 4),
    **dict.fromkeys(["may", "mai", "mayo", "maggio", "mei", "maja"], 5),
    **dict.fromkeys(["june", "jun", "juni", "juin", "junio", "giugno", "czerwca"], 6),
    **dict.fromkeys(["july", "jul", "juli", "juillet", "julio", "luglio", "lipca"], 7),
    **dict.fromkeys(["august", "aug", "août", "aout", "agosto", "augustus", "sierpnia"], 8),
    **dict.fromkeys(["september", "sep", "sept", "septembre", "septiembre", "settembre", "września",
                     "wrzesnia"], 9),
    **dict.fromkeys(["october", "oct", "oktober", "okt", "octobre", "octubre", "ottobre", "października",
                     "pazdziernika"], 10),
    **dict.fromkeys(["november", "nov", "novembre", "noviembre", "listopada"], 11),
    **dict.fromkeys(["december", "dec", "dezember", "dez", "décembre", "decembre", "diciembre", "dicembre",
                     "grudnia"], 12),
}

_DOB_KEYWORD = re.compile(
    r"(?i:born|birth(?:day|date)?|\bd\.?o\.?b\b\.?|geboren|\bgeb\.|geburtsdatum|geburtstag|n[ée]e? le|"
    r"naissance|nacimiento|nacid[oa]|\bnat[oa] (?:il|a|el)|nascita|geboortedatum|urodzon[ya]|urodzenia)"
)
_WORD = r"[^\W\d_]{3,12}\.?"
# What may sit between the keyword and the date: a few words and punctuation, never a digit.
_DOB_TAIL = re.compile(
    r"[^\W\d_]{0,12}[^\w\n\x00]{0,4}(?:(?:[^\W\d_]{1,12}\.?|[ao]m|on|le|el|il|op|de|w)[^\w\n\x00]{1,4}){0,3}?"
    r"(?:"
    r"(?P<ymd>(?:19|20)[0-9]{2})-(?P<ym>[0-9]{2})-(?P<yd>[0-9]{2})"
    r"|(?P<n1>[0-9]{1,2})(?P<sep>[./\-])(?P<n2>[0-9]{1,2})(?P=sep)(?P<ny>(?:19|20)[0-9]{2})"
    rf"|(?P<d1>[0-9]{{1,2}})\.?(?:er|st|nd|rd|th)?\s{{1,2}}(?:de\s{{1,2}})?(?P<m1>{_WORD})\s{{1,2}}(?:de\s{{1,2}})?"
    r"(?P<y1>(?:19|20)[0-9]{2})"
    rf"|(?P<m2>{_WORD})\s{{1,2}}(?P<d2>[0-9]{{1,2}})(?:st|nd|rd|th)?,?\s{{1,2}}(?P<y2>(?:19|20)[0-9]{{2}})"
    r")(?![0-9]|T[0-9]|[ T][0-9]{1,2}:[0-9])"
)


def _date_ok(year: int, month: int, day: int) -> bool:
    try:
        born = datetime.date(year, month, day)
    except ValueError:
        return False
    return born <= datetime.date.today()


def _dob(m: re.Match) -> str | None:
    """ISO date of a `_DOB_TAIL` match, or None when it is not a real past date."""
    g = m.groupdict()
    if g["ymd"]:
        y, mo, dd = int(g["ymd"]), int(g["ym"]), int(g["yd"])
        return f"{y:04d}-{mo:02d}-{dd:02d}" if _date_ok(y, mo, dd) else None
    if g["ny"]:
        y, a, b = int(g["ny"]), int(g["n1"]), int(g["n2"])
        # Day first (Europe) when it can be, month first (US) otherwise: the value only feeds the
        # pseudonym, and either reading is a date of birth.
        for mo, dd in ((b, a), (a, b)):
            if _date_ok(y, mo, dd):
                return f"{y:04d}-{mo:02d}-{dd:02d}"
        return None
    if g["y1"]:
        y, name, dd = int(g["y1"]), g["m1"], int(g["d1"])
    else:
        y, name, dd = int(g["y2"]), g["m2"], int(g["d2"])
    mo = _MONTHS.get(name.rstrip(".").lower())
    if mo is None or not _date_ok(y, mo, dd):
        return None
    return f"{y:04d}-{mo:02d}-{dd:02d}"


def _date_start(m: re.Match) -> int:
    for name in ("ymd", "n1", "d1", "m2"):
        if m.group(name):
            return m.start(name)
    return m.start()


def find_dates_of_birth(text: str, starts: list[int] | None, out: list) -> None:
    if starts is None:
        starts = [m.start() for m in _DOB_KEYWORD.finditer(text)]
    done = -1
    for i in starts:
        if i < done:
            continue
        k = _DOB_KEYWORD.match(text, i)
        if k is None:
            continue
        m = _DOB_TAIL.match(text, k.end(), min(len(text), k.end() + 90))
        if m is None:
            continue
        value = _dob(m)
        if value is not None:
            out.append(Finding(_date_start(m), m.end(), "date_of_birth", value))
            done = m.end()


# ---------------------------------------------------------------------------------------------
# Credentials in free text: `password=…`, `passwd: …`, `api_key: …`, `secret=…`, `token: …`,
# `Server=…;Password=…;` (only the value is reported; URLs with a password are `url_password`)

_CREDENTIAL_KEY = (
    r"(?i:pass(?:w(?:or[dt])?|wd)|pwd|secret(?:[_\-]?key)?|token|api[_\-]?key|apikey|"
    r"kennwort|wachtwoord|contrase[ñn]a|has[łl]o|mot de passe)"
)
# The longest key `_CREDENTIAL_KEY` matches (`mot de passe`; a test holds it to the pattern): the
# `:` or `=` of a match comes within this many characters of its start (key, an escaped quote, three
# blanks), which lets `_near` skip the many keyword hits in prose without running the pattern.
_CREDENTIAL_KEY_WIDTH = 12
_CREDENTIAL_SEPARATOR_REACH = _CREDENTIAL_KEY_WIDTH + 2 + 3 + 1
_CREDENTIAL = re.compile(
    _CREDENTIAL_KEY + r"(?:\\?[\"'])?[ \t]{0,3}(?:=>|:=|[:=])[ \t]{0,3}(\\?[\"'`])?"
    r"([^\s\x00\"'`\\;,&<>{}()\[\]|]{1,256})"
)
# Values that are not credentials: placeholders, templates, booleans, empties, masks.
_PLACEHOLDER = re.compile(
    r"(?i:[$%#/!]|\*+$|x+$|\.+$|-+$|_+$|null$|none$|nil$|true$|false$|yes$|no$|on$|off$|undefined$|redacted$|hidden$|"
    r"changeme$|required$|optional$|string$|str$|password$|secret$|token$|your[_\-]|<|\.\.\.)"
)
_DOTTED_NAME = re.compile(r"[A-Za-z_$][A-Za-z_$]*(?:\.[A-Za-z_$][A-Za-z_$]*)+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAMED_LIKE_A_SECRET = ("pass", "pwd", "secret", "token", "key", "cred")


def _is_code(value: str, after: str) -> bool:
    """An unquoted value that is an expression, not a credential: `password = getpass()`,
    `token = os.environ["TOKEN"]`, `api_key=settings.OPENAI_API_KEY`, `password=new_password`."""
    if after in ("(", "["):
        return True
    if _DOTTED_NAME.fullmatch(value):
        return True
    return _IDENTIFIER.fullmatch(value) is not None and any(s in value.lower() for s in _NAMED_LIKE_A_SECRET)


_KEY_BEFORE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def find_credentials(text: str, starts: list[int] | None, out: list) -> None:
    for m in _near(text, starts, _CREDENTIAL, back=0, ahead=300, need=":=", reach=_CREDENTIAL_SEPARATOR_REACH):
        key = text[m.start():m.start(2)].lower()
        start = m.start()
        # `mypassword=`, `tokens:`, `bypass=`: the keyword must not continue or end another word
        # (`db_password`, `access_token`, `X-Api-Key` are fine: `_` and `-` join words in keys).
        if start > 0 and text[start - 1] in _KEY_BEFORE and not key.startswith(("secret", "token", "api")):
            continue
        value = m.group(2).rstrip(".")
        if not value or _PLACEHOLDER.match(value):
            continue
        if m.group(1) is None:
            after = text[m.start(2) + len(value):m.start(2) + len(value) + 2]
            if _is_code(value, after[:1]):
                continue
            if value.isalpha() and len(after) == 2 and after[0] == " " and after[1].isalpha():
                continue  # `Password: Please enter it twice`: a label in prose, then words

        if key.startswith("token") and (len(value) < 16 or not any(c.isdigit() for c in value)):
            continue  # `token: expired`, `token: 42` — real tokens are long and mixed
        if key.startswith("pwd") and value.startswith("/"):
            continue
        out.append(Finding(m.start(2), m.start(2) + len(value), "credential", value))


# ---------------------------------------------------------------------------------------------
# Obfuscated e-mail addresses: `name at domain dot com`, `name [at] domain [dot] com`,
# `name(at)domain.com` (the `\u0040` escape is handled by `detectors.find_emails`)

_OB_OPEN = r"[\[({<]"
_OB_CLOSE = r"[\])}>]"
_OB_AT = rf"(?:[ \t]?{_OB_OPEN}[ \t]?(?i:at|ät|arroba|chez)[ \t]?{_OB_CLOSE}[ \t]?|[ \t]{{1,2}}(?:at|AT)[ \t]{{1,2}})"
_OB_DOT = rf"(?:[ \t]?{_OB_OPEN}[ \t]?(?i:dot|punkt|point|punto)[ \t]?{_OB_CLOSE}[ \t]?|[ \t]{{1,2}}(?:dot|DOT)[ \t]{{1,2}}|\.)"
_OB_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![A-Za-z0-9._%+\-@])([A-Za-z0-9][A-Za-z0-9._%+\-]{{0,63}}"
    rf"(?:[ \t]{{1,2}}(?:dot|DOT)[ \t]{{1,2}}[A-Za-z0-9][A-Za-z0-9_%+\-]{{0,30}}){{0,2}})({_OB_AT})({_OB_LABEL})((?:{_OB_DOT}{_OB_LABEL}){{0,4}})"
    rf"({_OB_DOT})([A-Za-z]{{2,12}})(?![A-Za-z0-9\-])"
)
_OB_DOT_SPLIT = re.compile(_OB_DOT)
_TLDS = frozenset(
    "com net org edu gov info biz io co eu de fr es it nl pl uk at ch be dk se no fi pt ie lu cz sk hu ro gr "
    "bg hr si lt lv ee us ca au nz jp cn in br mx ar ru me dev app ai".split()
)
# Words that come before `at` in prose (`look at this dot com bubble`), never as a mailbox.
_PROSE_BEFORE_AT = frozenset(
    "look looking looked looks meet meeting met me us him her them it this that arrive arrived arriving stay "
    "staying stayed here there home work back up out or and is was be are were am pm see seen aim aimed "
    "good bad great best nobody everyone anyone someone laugh laughed smile stare staring".split()
)


def find_obfuscated_emails(text: str, starts: list[int] | None, out: list) -> None:
    if starts is None:
        candidates = _OBFUSCATED_EMAIL.finditer(text)
    else:
        candidates = _near(text, starts, _OBFUSCATED_EMAIL, back=80, ahead=200)
    for m in candidates:
        local, at, first, rest, last_dot, tld = m.groups()
        start = m.start()
        plain_at = "[" not in at and "(" not in at and "{" not in at and "<" not in at
        dots = [d for d in _OB_DOT_SPLIT.findall(rest)] + [last_dot]
        spelled = [d for d in dots if d != "."]
        if plain_at:
            # `name at domain dot com`: only with a spelled dot, a known TLD and no prose before `at`.
            if not spelled or tld.lower() not in _TLDS or local.lower() in _PROSE_BEFORE_AT:
                continue
        elif not spelled and "." not in dots:
            continue
        labels = [first] + [p for p in _OB_DOT_SPLIT.split(rest) if p] + [tld]
        local = ".".join(p for p in _OB_DOT_SPLIT.split(local) if p)
        value = f"{local}@{'.'.join(labels)}".casefold()
        out.append(Finding(start, m.end(), "email_obfuscated", value))
