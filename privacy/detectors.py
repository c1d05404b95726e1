"""Built-in PII and secret detectors: cheap gates, candidate regexes, validators.

Every detector family follows the same shape so that text without candidates costs almost nothing:

1. a gate made of `in` checks (C-speed substring search) decides whether the family runs at all;
2. a candidate regex whose first element is a literal or a character class, so CPython's `re` can
   skip ahead to plausible starts without trying the whole pattern at every position;
3. a validator (checksum, issuer prefix, `ipaddress`, `phonenumbers`, JWT header decode …) that
   turns candidates into findings.

Quantifiers are bounded and no repetition is nested inside an unbounded one, so every pattern runs in
time linear in the input (times a small constant); tenant patterns go through RE2 (see `custom.py`).

Findings carry the span, the detector name and a normalised value (the pseudonymisation input, so
`John@Example.com` and `john@example.com` map to the same token).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass
from importlib import resources

import orjson
import phonenumbers
import re2
from phonenumbers import Leniency, PhoneNumberFormat
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn


@dataclass(frozen=True, slots=True)
class Detector:
    name: str
    label: str
    # Overlapping findings: the higher priority wins (a JWT inside `Bearer …` is reported as a JWT).
    priority: int
    description: str
    # Pseudonyms are keyed on this name (default: the detector's): an obfuscated address gets the
    # same token as the plain one.
    pseudonym_namespace: str = ""

    @property
    def namespace(self) -> str:
        return self.pseudonym_namespace or self.name


DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        Detector("private_key", "PRIVATE_KEY", 100, "PEM private key blocks"),
        Detector("url_password", "PASSWORD", 95, "password in scheme://user:password@host (only the password)"),
        Detector("lookglass_key", "LOOKGLASS_KEY", 92, "Lookglass secret keys sk-lg-…"),
        Detector("anthropic_key", "ANTHROPIC_KEY", 91, "Anthropic API keys sk-ant-…"),
        Detector("openai_key", "OPENAI_KEY", 90, "OpenAI API keys sk-… / sk-proj-…"),
        Detector("github_token", "GITHUB_TOKEN", 90, "GitHub tokens ghp_/gho_/ghu_/ghs_/ghr_/github_pat_"),
        Detector("slack_token", "SLACK_TOKEN", 90, "Slack tokens xox[abposr]-…"),
        Detector("slack_webhook", "SLACK_WEBHOOK", 90, "Slack incoming webhook URLs"),
        Detector("stripe_key", "STRIPE_KEY", 90, "Stripe keys sk_/rk_/pk_ live and test"),
        Detector("aws_access_key", "AWS_ACCESS_KEY", 90, "AWS access key ids AKIA…/ASIA…"),
        Detector("aws_secret_key", "AWS_SECRET_KEY", 85, "AWS secret access keys next to their key name"),
        Detector("jwt", "JWT", 80, "JSON Web Tokens"),
        Detector("bearer_token", "BEARER_TOKEN", 70, "tokens after `Bearer` in header-like text"),
        Detector("secret_field", "SECRET", 65, "string values under keys such as password, api_key, authorization"),
        Detector("email", "EMAIL", 50, "email addresses"),
        Detector("iban", "IBAN", 48, "IBANs (ISO 13616, mod-97 checksum)"),
        Detector("credit_card", "CREDIT_CARD", 46, "payment cards (issuer prefix, length, Luhn)"),
        Detector("us_ssn", "US_SSN", 45, "US social security numbers (with separators, valid ranges)"),
        Detector("phone", "PHONE", 40, "phone numbers (libphonenumber matcher, validated)"),
        Detector("ip_address", "IP_ADDRESS", 42, "IPv4 and IPv6 addresses (loopback/unspecified kept)"),
        # Reaching further (privacy/identifiers.py). Checksummed identifiers rank above cards and
        # phones: a valid Steuer-IdNr next to its keyword is not also a phone number.
        Detector("credential", "CREDENTIAL", 64,
                 "values after password=, passwd:, pwd=, secret=, api_key:, token: … in free text and in "
                 "Server=…;Password=…; connection strings"),
        Detector("email_obfuscated", "EMAIL", 49,
                 "obfuscated e-mail addresses: name at domain dot com, name [at] domain [dot] com, name(at)domain.com",
                 pseudonym_namespace="email"),
        Detector("de_tax_id", "DE_TAX_ID", 47,
                 "German tax id (Steuer-IdNr, checksum; bare 11 digits only next to Steuer-ID/IdNr/tax id)"),
        Detector("fr_nir", "FR_NIR", 47,
                 "French social security number (NIR, key; bare 15 digits only next to NIR/sécurité sociale)"),
        Detector("es_dni_nie", "ES_DNI_NIE", 47, "Spanish DNI and NIE (control letter)"),
        Detector("it_codice_fiscale", "IT_CODICE_FISCALE", 47, "Italian codice fiscale (check letter)"),
        Detector("uk_nino", "UK_NINO", 47, "UK National Insurance numbers (HMRC prefix rules)"),
        Detector("nl_bsn", "NL_BSN", 47, "Dutch BSN (11-check; only next to BSN/burgerservicenummer)"),
        Detector("pl_pesel", "PL_PESEL", 47, "Polish PESEL (checksum and birth date; only next to PESEL)"),
        Detector("passport", "PASSPORT", 47,
                 "passport numbers right after passport/Reisepass/passeport/pasaporte/passaporto/paspoort/paszport"),
        Detector("date_of_birth", "DATE_OF_BIRTH", 44,
                 "dates right after born/DOB/date of birth/geboren/né le/fecha de nacimiento/nato il/"
                 "geboren op/urodzony (never bare dates or timestamps)"),
        Detector("mac_address", "MAC_ADDRESS", 43, "MAC addresses (EUI-48; broadcast, multicast and zero kept)"),
    )
}
CUSTOM_PRIORITY = 60
BUILTIN_LABELS = frozenset(d.label for d in DETECTORS.values())


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    detector: str  # a key of DETECTORS, or "custom:<LABEL>"
    value: str  # normalised, for pseudonymisation only; never stored


# A JSON string holding JSON (tool arguments) carries escapes like `\n` right before a value; the
# letter of the escape counts as a boundary, not as part of a word glued to the value.
def _bounded(prefix: str, excluded: str) -> str:
    """`prefix` (fixed width, no groups) not preceded by a character in `excluded`, unless that
    character ends a JSON escape. The check comes AFTER the prefix so that `re` keeps its fast
    literal / first-character scan instead of trying the whole pattern at every position."""
    return rf"{prefix}(?:(?<![{excluded}]{prefix})|(?<=\\[nrtbf]{prefix}))"


# ---------------------------------------------------------------------------------------------
# Secrets with a recognisable prefix

_TOKEN = "A-Za-z0-9_\\-"
_SK = re.compile(_bounded("sk-", _TOKEN) + rf"(?:(ant-)|(lg-))?([{_TOKEN}]{{16,400}})(?![{_TOKEN}])")
_AWS_ACCESS = re.compile(_bounded("A[KS]IA", "A-Za-z0-9") + r"[A-Z0-9]{16}(?![A-Za-z0-9])")
# Searched only in a small window around each "secret"/"SECRET" (see _near).
_AWS_SECRET = re.compile(
    r"(?i:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key|aws_?secret)"
    r"[\"']?[ \t]{0,4}(?:[:=]|=>|:=)[ \t]{0,4}(?:\\?[\"'])?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_GITHUB = re.compile(_bounded("gh[pousr]_", "A-Za-z0-9_") + r"[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])")
_GITHUB_PAT = re.compile(_bounded("github_pat_", "A-Za-z0-9_") + r"[A-Za-z0-9_]{22,242}(?![A-Za-z0-9_])")
_SLACK_TOKEN = re.compile(_bounded("xox[abposr]-", "A-Za-z0-9_\\-") + r"[A-Za-z0-9\-]{10,250}(?![A-Za-z0-9_\-])")
_SLACK_WEBHOOK = re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{8,250}")
_STRIPE = re.compile(_bounded("[spr]k_(?:live|test)_", "A-Za-z0-9_") + r"[A-Za-z0-9]{10,247}(?![A-Za-z0-9_])")
_JWT = re.compile(
    _bounded("eyJ", "A-Za-z0-9_\\-.") + r"([A-Za-z0-9_\-]{4,2000})\.eyJ[A-Za-z0-9_\-]{4,8000}"
    r"\.[A-Za-z0-9_\-]{0,2000}(?![A-Za-z0-9_\-])"
)
# Searched only in a small window around each "bearer" (any case).
_BEARER = re.compile(r"(?i:bearer)[ \t]{1,4}([A-Za-z0-9\-._~+/]{12,4096}=*)(?![A-Za-z0-9\-._~+/=])")
_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----"
    r"(?:[^\x00]{0,20000}?-----END \1PRIVATE KEY\2-----|(?:[A-Za-z0-9+/=\s:,.\-]|\\[nrt]){0,20000})"
)
# scheme://user:password@host — only the password is reported. `@` may occur unencoded in the
# password: the greedy password group backtracks to the LAST `@` before the host.
_URL_PASSWORD = re.compile(r"://[^\x00\s:/?#@\"'\\<>]{0,128}:([^\x00\s/?#\"'\\<>]{1,128})@(?=[A-Za-z0-9\[])")


# Where a prefixed secret (or an IBAN) could start. RE2 scans with a DFA, so a dozen alternatives
# cost about one; a dozen multi-character `in` checks cost a dozen passes, and far more on UCS-2
# text (any string with a `→` or a kanji in it). The same pass also finds candidate numbers (see
# `scan` below), so that the text is encoded and scanned once.
TRIGGERS = (
    ("sk", r"sk-"),
    ("aws_access", r"A[KS]IA"),
    ("secret", r"(?i:secret)"),
    ("github", r"gh[pousr]_|github_pat_"),
    ("stripe", r"[spr]k_(?:live|test)_"),
    ("slack_token", r"xox[abposr]-"),
    ("url", r"://"),
    ("jwt", r"eyJ"),
    ("bearer", r"(?i:bearer)"),
    ("pem", r"PRIVATE KEY"),
    ("iban", r"[A-Z]{2}[0-9]{2}"),
    # privacy/identifiers.py. None of these ends in a digit after 7 characters or more (`scan` takes
    # such hits for number candidates). Each starts where few texts have a candidate (a separator, a
    # digit pair): alternatives that start on any letter make RE2's automaton for the whole scan
    # larger, which slowed the pass by a quarter. A compact NINO (`AB123456C`) is found from the
    # `iban` trigger, which it starts like.
    ("gb_nino", r"[A-Z]{2} [0-9]{2} [0-9]{2} [0-9]{2} [A-D]"),
    ("es_id", r"[0-9]{8}[ \-]?[A-Z]|[0-9]{2}\.[0-9]{3}\.[0-9]{3}[ \-]?[A-Z]|[XYZ][ \-]?[0-9]{7}[ \-]?[A-Z]"),
    # Year, month letter, day, town letter (not the six letters before: starting on any letter is what
    # makes an alternative costly). In lower case, when month and town letters are both hex
    # digits, the town number and check letter too: hex ids (`…12a45b…`) would hit on every line.
    ("it_cf", r"[0-9]{2}[ABCDEHLMPRST][0-9]{2}[A-Z]|[0-9]{2}[hlmprst][0-9]{2}[a-z]"
              r"|[0-9]{2}[abcde][0-9]{2}(?:[g-z]|[a-f][0-9]{3}[a-z])"),
    ("mac", r"[:\-][0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}[:\-]|\.[0-9A-Fa-f]{4}\."),
    ("passport", r"(?i:pass(?:port|eport|aporte|aporto|nummer|-nr)|reisepass|paspoort|paszport|pasaport)"),
    ("credential", r"(?i:pass(?:w(?:or[dt])?|wd)|pwd|token\b|api[_\-]?key|apikey|kennwort|wachtwoord|"
                   r"contrase[ñn]a|has[łl]o|mot de passe)"),
    ("dob", r"(?i:\bborn\b|birth|\bd\.?o\.?b\b|geboren|\bgeb\.|geburt|n[ée]e? le|naissance|nacimiento|"
            r"nacid[oa]|\bnat[oa] |nascita|geboorte|urodzon|urodzenia)"),
    ("email_obf", r"(?i:[\[({<] ?(?:at|ät|arroba|chez) ?[\])}>]|[ \t]dot[ \t]|[\[({<] ?dot ?[\])}>])"),
)
_TRIGGER_NAMES = tuple(name for name, _ in TRIGGERS)

MAX_SEEDS = 256


def _near(
    text: str, starts: list[int] | None, regex: re.Pattern, back: int, ahead: int, need: str = "", reach: int = 0
):
    """Matches of `regex` in windows [start - back, start + ahead) around trigger offsets (or in
    the whole text when `starts` is None): for patterns that open with a case-insensitive keyword,
    which `re` cannot search for quickly on its own.

    `need`, `reach` (with back=0 only): every match of `regex` has one of the characters of `need`
    among its first `reach` characters, so a window without one is not tried. The keyword alone is
    a trigger (`password` in a support chat), and an `re` match that fails costs ten C-speed
    `str.find`s."""
    if starts is None:
        yield from regex.finditer(text)
        return
    n = len(text)
    done = -1
    for i in starts:
        lo = max(0, i - back, done)
        if need:
            stop = min(n, i + ahead, lo + reach)
            for c in need:
                if text.find(c, lo, stop) >= 0:
                    break
            else:
                continue
        m = regex.match(text, lo, min(n, i + ahead)) if back == 0 else regex.search(text, lo, min(n, i + ahead))
        if m is not None and m.end() > done:
            done = m.end()
            yield m


def _has_digit_and_letter(s: str) -> bool:
    return any(c.isdigit() for c in s) and any(c.isalpha() for c in s)


def _jwt_header_ok(segment: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode("eyJ" + segment + "=" * (-(len(segment) + 3) % 4))
        header = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


def find_secrets(text: str, on: frozenset, seeds: dict, out: list) -> None:
    if "sk" in seeds and ({"openai_key", "anthropic_key", "lookglass_key"} & on):
        for m in _SK.finditer(text):
            body = m.group(3)
            if m.group(1):
                name = "anthropic_key"
            elif m.group(2):
                name = "lookglass_key"
            else:
                # Plain `sk-` words (placeholders, hyphenated prose) lack the mix of a real key.
                if len(body) < 20 or not _has_digit_and_letter(body):
                    continue
                name = "openai_key"
            if name in on:
                out.append(Finding(m.start(), m.end(), name, m.group()))
    if "aws_access" in seeds and "aws_access_key" in on:
        for m in _AWS_ACCESS.finditer(text):
            out.append(Finding(m.start(), m.end(), "aws_access_key", m.group()))
    if "secret" in seeds and "aws_secret_key" in on:
        for m in _near(text, seeds["secret"], _AWS_SECRET, back=12, ahead=100):
            key = m.group(1)
            if any(c.islower() for c in key) and any(c.isupper() for c in key):
                out.append(Finding(m.start(1), m.end(1), "aws_secret_key", key))
    if "github" in seeds and "github_token" in on:
        for regex in (_GITHUB, _GITHUB_PAT):
            for m in regex.finditer(text):
                out.append(Finding(m.start(), m.end(), "github_token", m.group()))
    if "stripe" in seeds and "stripe_key" in on:
        for m in _STRIPE.finditer(text):
            out.append(Finding(m.start(), m.end(), "stripe_key", m.group()))
    if "slack_token" in seeds and "slack_token" in on:
        for m in _SLACK_TOKEN.finditer(text):
            out.append(Finding(m.start(), m.end(), "slack_token", m.group()))
    if "url" in seeds:
        if "slack_webhook" in on and "hooks.slack.com" in text:
            for m in _SLACK_WEBHOOK.finditer(text):
                out.append(Finding(m.start(), m.end(), "slack_webhook", m.group()))
        if "url_password" in on and "@" in text:
            for m in _URL_PASSWORD.finditer(text):
                out.append(Finding(m.start(1), m.end(1), "url_password", m.group(1)))
    if "jwt" in seeds and "jwt" in on:
        for m in _JWT.finditer(text):
            if _jwt_header_ok(m.group(1)):
                out.append(Finding(m.start(), m.end(), "jwt", m.group()))
    if "bearer" in seeds and "bearer_token" in on:
        for m in _near(text, seeds["bearer"], _BEARER, back=0, ahead=4120):
            token = m.group(1)
            if any(c.isdigit() for c in token) or (
                len(token) >= 20 and any(c.islower() for c in token) and any(c.isupper() for c in token)
            ):
                out.append(Finding(m.start(1), m.end(1), "bearer_token", token))
    if "pem" in seeds and "private_key" in on:
        for m in _PEM.finditer(text):
            out.append(Finding(m.start(), m.end(), "private_key", m.group()))


# ---------------------------------------------------------------------------------------------
# Email

# ASCII plus Latin-1/Latin Extended letters: `jürgen.müller@web.de` is one address, while in
# `連絡はtanaka@example.co.jpまで` the Japanese text around the address is not part of it.
_EMAIL_CHARS = "A-Za-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_LOCAL_TAIL = re.compile(rf"[{_EMAIL_CHARS}._%+_\-'’]{{1,64}}\Z")
_DOMAIN = re.compile(
    rf"(?:[{_EMAIL_CHARS}](?:[{_EMAIL_CHARS}\-]{{0,61}}[{_EMAIL_CHARS}])?\.){{1,8}}"
    rf"([A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]{{2,24}})(?![{_EMAIL_CHARS}_\-])"
)
# `icon@2x.png`, `logo@3x.webp`: asset names, not addresses.
_FILE_TLDS = frozenset(
    "png jpg jpeg gif svg webp ico bmp tif tiff css js mjs ts tsx jsx py rb go rs java json yaml yml toml md "
    "txt html htm xml csv pdf zip gz tar lock log sh".split()
)
_JSON_ESCAPE_LETTERS = frozenset("nrtbf/\"\\")


AT_ESCAPE = "\\u0040"  # `john\u0040example.com`: JSON text that escaped the `@`


def find_emails(text: str, out: list) -> None:
    pos = 0
    n = len(text)
    next_escape = text.find(AT_ESCAPE)
    while True:
        at = text.find("@", pos)
        width = 1
        if next_escape >= 0 and next_escape < pos:
            next_escape = text.find(AT_ESCAPE, pos)
        if next_escape >= 0 and (at < 0 or next_escape < at):
            at, width = next_escape, len(AT_ESCAPE)
        if at < 0:
            return
        pos = at + width
        if at == 0 or at + width + 3 > n:
            continue
        local_end = at
        if width > 1 and text[at - 1] == "\\":
            local_end -= 1  # `\\u0040` in JSON encoded twice
        tail = _LOCAL_TAIL.search(text, max(0, local_end - 64), local_end)
        if tail is None:
            continue
        start = tail.start()
        if start > 0 and text[start - 1] == "\\":
            # `\njohn@…` inside a JSON-encoded string: the `n` belongs to the escape.
            if text[start] == "u" and at - start > 5:
                start += 5
            elif text[start] in _JSON_ESCAPE_LETTERS:
                start += 1
        while start < at and text[start] in "'’":
            start += 1  # `to='bob@x.com'`: the quote is code, not part of the address
        local = text[start:local_end]
        if not local or local[0] == "." or local[-1] == "." or ".." in local:
            continue
        dm = _DOMAIN.match(text, at + width, min(n, at + width + 255))
        if dm is None:
            continue
        if dm.group(1).lower() in _FILE_TLDS:
            continue
        end = dm.end()
        out.append(Finding(start, end, "email", f"{local}@{dm.group()}".casefold()))
        pos = end


# ---------------------------------------------------------------------------------------------
# Numbers: payment cards, US SSNs, phone numbers (one candidate scan), IPv4, IBAN

_DIGITS = "0-9\uff10-\uff19"
_SEPS = " \\-.()/\u00a0\u2010-\u2013\uff0d"
# A run of >= 7 digits with at most three separator characters between digits. It starts at a
# digit, `+` or `(` that does not continue a word, a path, a version or an id (`ORD-2024-000123`).
_NUMERIC = re.compile(
    _bounded(f"[+({_DIGITS}]", "A-Za-z0-9_.\\-+/")
    + rf"(?:(?<=[+(])[+(]{{0,2}}[{_DIGITS}]|(?<=[{_DIGITS}]))"
    rf"(?:[{_SEPS}]{{0,3}}[{_DIGITS}]){{6,24}}(?![A-Za-z0-9_])"
)
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
_DATE_IN_RUN = re.compile(
    r"(?<![0-9])(?:"
    r"(?:19|20)\d\d[\-/.](?:1[0-2]|0?[1-9])[\-/.](?:3[01]|[12]\d|0?[1-9])"
    r"|(?:3[01]|[12]\d|0?[1-9])[\-/.](?:1[0-2]|0?[1-9])[\-/.](?:19|20)\d\d"
    r"|(?:1[0-2]|0?[1-9])/(?:3[01]|[12]\d|0?[1-9])/(?:19|20)\d\d"
    r")(?![0-9])"
)
_CARD = re.compile(r"(?<![0-9])(?:[0-9]{13,19}|[0-9]{4}([ \-])[0-9]{3,6}(?:\1[0-9]{1,6}){1,4})(?![0-9])")
_SSN = re.compile(r"(?<![0-9])(?<![0-9][ \-])[0-9]{3}([ \-])[0-9]{2}\1[0-9]{4}(?![0-9])(?![ \-][0-9])")
_PHONE_CONTEXT = re.compile(
    r"(?i:phone|tel|call|mobile|cell|fax|whats ?app|sms|text me|reach|contact|number|dial|hotline|"
    r"handy|telefon|rufnummer|anruf|nummer|erreichbar|t[ée]l[ée]phone|portable|appel|num[ée]ro|joindre|"
    r"tel[ée]fono|m[óo]vil|celular|llam|n[úu]mero|contatt|cellulare|chiama)|電話|携帯|番号|連絡|☎|📞"
)


def _card_issuer_ok(digits: str) -> bool:
    """Issuer identification number (IIN) and length: Luhn alone passes ~10% of random runs
    (13-digit epoch milliseconds start with 1, which no card network uses)."""
    n = len(digits)
    d1, d2, d3, d4, d6 = int(digits[0]), int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if d1 == 4:  # Visa
        return n in (13, 16, 19)
    if 51 <= d2 <= 55 or 2221 <= d4 <= 2720:  # Mastercard
        return n == 16
    if d2 in (34, 37):  # American Express
        return n == 15
    if d4 == 6011 or 644 <= d3 <= 649 or d2 == 65 or 622126 <= d6 <= 622925:  # Discover
        return 16 <= n <= 19
    if 300 <= d3 <= 305 or d2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if 3528 <= d4 <= 3589:  # JCB
        return 16 <= n <= 19
    if d2 == 62:  # UnionPay
        return 16 <= n <= 19
    if d4 in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763):  # Maestro
        return 13 <= n <= 19
    if 2200 <= d4 <= 2204:  # Mir
        return 16 <= n <= 19
    return False


def _cards_in(run: str, base: int, out: list) -> list[tuple[int, int]]:
    claimed = []
    for m in _CARD.finditer(run):
        sep = m.group(1)
        if sep is None:
            digits = m.group()
            if luhn.is_valid(digits) and _card_issuer_ok(digits):
                out.append(Finding(base + m.start(), base + m.end(), "credit_card", digits))
                claimed.append((m.start(), m.end()))
            continue
        groups = m.group().split(sep)
        if len(groups[0]) != 4:
            continue
        # `4111 1111 1111 1111 12/26`: the run may continue past the card; try the longest prefix
        # of groups that is a valid card.
        for k in range(len(groups), 1, -1):
            digits = "".join(groups[:k])
            if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and _card_issuer_ok(digits):
                end = m.start() + len(sep.join(groups[:k]))
                out.append(Finding(base + m.start(), base + end, "credit_card", digits))
                claimed.append((m.start(), end))
                break
    return claimed


def _overlaps(spans, start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in spans)


def _digits_outside(run: str, spans: list[tuple[int, int]]) -> int:
    """How many digits of `run` no span covers (spans may overlap)."""
    count = 0
    pos = 0
    for start, end in sorted(spans):
        if start > pos:
            count += sum(c.isdigit() for c in run[pos:start])
        if end > pos:
            pos = end
    return count + sum(c.isdigit() for c in run[pos:])


class PhoneCache:
    """Matcher results per candidate run: system prompts repeat on every call of an app, and the
    libphonenumber matcher (~100 µs a run) is the most expensive validator by far."""

    __slots__ = ("_data", "_max")

    def __init__(self, max_entries: int = 2048):
        self._data: dict = {}
        self._max = max_entries

    def get(self, key):
        return self._data.get(key)

    def put(self, key, value) -> None:
        if len(self._data) >= self._max:
            self._data.clear()
        self._data[key] = value


def _phones_in(run: str, region: str | None, cache: PhoneCache) -> list:
    key = (run, region)
    found = cache.get(key)
    if found is None:
        found = [
            (m.start, m.end, phonenumbers.format_number(m.number, PhoneNumberFormat.E164), m.raw_string)
            for m in phonenumbers.PhoneNumberMatcher(run, region, leniency=Leniency.VALID, max_tries=20)
        ]
        cache.put(key, found)
    return found


def _numeric_candidates(text: str, runs: list[tuple[int, int]] | None):
    if runs is None:
        yield from _NUMERIC.finditer(text)
        return
    n = len(text)
    for start, end in runs:
        # One character past the run: the closing lookahead must see what follows it.
        yield from _NUMERIC.finditer(text, start, min(n, end + 1))


def find_numbers(
    text: str, on: frozenset, region: str | None, cache: PhoneCache, out: list,
    runs: list[tuple[int, int]] | None = None,
) -> None:
    """Cards, SSNs and phone numbers in the candidate runs of `text` (from `scan`; None: all of it)."""
    want_card = "credit_card" in on
    want_ssn = "us_ssn" in on
    want_phone = "phone" in on
    want_national = not NATIONAL_NUMBER_DETECTORS.isdisjoint(on)
    for m in _numeric_candidates(text, runs):
        run = m.group()
        base = m.start()
        if not run.isascii():
            run = run.translate(_FULLWIDTH)
        has_date_separator = "-" in run or "/" in run or "." in run
        blocked = [date.span() for date in _DATE_IN_RUN.finditer(run)] if has_date_separator else []
        if blocked and blocked[0] == (0, len(run)):
            continue
        claimed = list(blocked)
        if want_national and len(run) >= 9:
            claimed += national_numbers_in(text, run, base, on, out)
        if want_card:
            before = len(out)
            claimed += _cards_in(run, base, out)
            if blocked:
                out[before:] = [f for f in out[before:] if not _overlaps(blocked, f.start - base, f.end - base)]
        if want_ssn and ("-" in run or " " in run):
            for s in _SSN.finditer(run):
                digits = s.group().replace(s.group(1), "")
                if not _overlaps(claimed, s.start(), s.end()) and stdnum_ssn.is_valid(digits):
                    out.append(Finding(base + s.start(), base + s.end(), "us_ssn", digits))
                    claimed.append((s.start(), s.end()))
        if not want_phone:
            continue
        if claimed and _digits_outside(run, claimed) < 7:
            continue  # what is left besides cards, SSNs and dates is too short for a phone number
        plain = run.isdigit()
        if plain and not _PHONE_CONTEXT.search(text, max(0, base - 40), base):
            # Bare digit runs are ids, epochs and amounts far more often than phone numbers.
            continue
        if not plain and not any(c in run for c in " -/()+") and run.count(".") in (1, 3):
            continue  # a decimal number or a dotted quad (IPv4 is its own detector)
        for start, end, e164, raw in _phones_in(run, region, cache):
            if _overlaps(claimed, start, end):
                continue
            if raw.isdigit() and not _PHONE_CONTEXT.search(text, max(0, base + start - 40), base + start):
                continue
            out.append(Finding(base + start, base + end, "phone", e164))


# ---------------------------------------------------------------------------------------------
# One pass for triggers and number candidates

# Every `_NUMERIC` match is made of these characters only, so it lies inside one maximal run of them.
_RUN_CHARS = frozenset("0123456789\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19"
                       " -.()/\u00a0\u2010\u2011\u2012\u2013\uff0d+")
_RUN = re.compile(f"[{_DIGITS}{_SEPS}+]*")
# A superset of where `_NUMERIC` can start: the character before (or `\n`-style escape, or the start
# of the text) is not one that `_bounded` rejects, then 7 digits with at most 3 separators between
# neighbours — the first 7 digits of any `_NUMERIC` match. No lookbehind: RE2 has none; `scan` then
# runs the exact `_NUMERIC` over the whole run around each hit.
_NUMERIC_HINT = (
    r"(?:^|[^A-Za-z0-9_.\-+/]|\\[nrtbf])[+(]{0,3}"
    rf"[{_DIGITS}](?:[{_SEPS}]{{0,3}}[{_DIGITS}]){{6}}"
)

# A hit that is a whole date and nothing more (the UTF-8 bytes at the hit): `find_numbers` would
# drop that run (`_DATE_IN_RUN` spans it), so it is not worth decoding. Dates are most of the hits in
# chat traffic. Conservative: a `+`/`(` before the date, fullwidth digits or any continuation of the
# run by digits leaves the hit to the exact path.
_SEP_B = rb"(?:[ \-./()]|\xc2\xa0|\xe2\x80[\x90-\x93]|\xef\xbc\x8d)"
_DIGIT_B = rb"(?:[0-9]|\xef\xbc[\x90-\x99])"
_DATE_ONLY_B = re.compile(
    rb"(?:\\[nrtbf]|[^0-9+(\x80-\xff]|[\xc2-\xf4][\x80-\xbf]{1,3})?"
    rb"(?:(?:19|20)[0-9][0-9][\-/.](?:1[0-2]|0?[1-9])[\-/.](?:3[01]|[12][0-9]|0?[1-9])"
    rb"|(?:3[01]|[12][0-9]|0?[1-9])[\-/.](?:1[0-2]|0?[1-9])[\-/.](?:19|20)[0-9][0-9]"
    rb"|(?:1[0-2]|0?[1-9])/(?:3[01]|[12][0-9]|0?[1-9])/(?:19|20)[0-9][0-9])"
    rb"(?!" + _SEP_B + rb"{0,3}" + _DIGIT_B + rb")"
)


def _scanner(triggers: bool, numbers: bool):
    """(match, anchor) with match(anchor, data, pos, end)[0] the (start, end) of the first hit
    in data[pos:end], (-1, -1) if none."""
    parts = [f"(?:{p})" for _, p in TRIGGERS] if triggers else []
    if numbers:
        parts.append(_NUMERIC_HINT)
    regexp = re2.compile("|".join(parts))
    try:
        # The raw matcher on bytes: the str API re-encodes the text and converts offsets at every
        # match, which costs more than the scan itself.
        return regexp._regexp.Match, re2._Anchor.UNANCHORED
    except AttributeError:  # a google-re2 without those internals: same result, slower
        def match(anchor, data: bytes, pos: int, end: int) -> list[tuple[int, int]]:
            m = regexp.search(data, pos, end)
            return [(-1, -1) if m is None else m.span()]
        return match, None


_SCANNERS = {(t, n): _scanner(t, n) for t in (False, True) for n in (False, True) if t or n}
_TRIGGER_CHECKS = tuple((name, re2.compile(p)) for name, p in TRIGGERS)
_trigger_names: dict[bytes, str] = {}


def _trigger_name(hit: bytes) -> str:
    # The first alternative that matches all of the hit is the one the scan took (leftmost-first).
    name = _trigger_names.get(hit)
    if name is None:
        name = next(n for n, regexp in _TRIGGER_CHECKS if regexp.fullmatch(hit))
        if len(_trigger_names) >= 4096:
            _trigger_names.clear()
        _trigger_names[hit] = name
    return name


def scan(text: str, *, triggers: bool = True, numbers: bool = True):
    """One RE2 pass over `text`: (trigger name -> start offsets, numeric runs).

    The runs are (start, end) of maximal runs of digits and separators that may hold a `_NUMERIC`
    match, for `find_numbers`; None means "scan the whole text". Past MAX_SEEDS trigger occurrences
    (hostile or degenerate input: `"sk-" * 16000`) every trigger family maps to None and the runs are
    None too: per-occurrence bookkeeping would otherwise dominate.

    Why the runs miss nothing: a `_NUMERIC` match M starts with 7 digits that `_NUMERIC_HINT`
    matches from the character before M, and hits (non-overlapping, leftmost-first) are made of that
    character and run characters ending in a digit, so some hit overlaps M's run. A hit skipped as a
    lone date (`_DATE_ONLY_B`) starts its digits where M would, which then is that date and nothing
    more; dates inside a run are joined by excluded characters, so no other match starts in one."""
    try:
        data = text.encode()
    except UnicodeEncodeError:  # lone surrogates: the trigger scan refuses them, as RE2's str API does
        if triggers:
            raise
        return {}, None
    ascii_only = len(data) == len(text)
    match, anchor = _SCANNERS[(triggers, numbers)]
    seeds: dict[str, list[int] | None] = {}
    runs: list[tuple[int, int]] = []
    end = len(data)
    pos = 0
    # A known (byte offset, character offset) pair: hits come in order, so converting offsets
    # decodes each part of the text at most once.
    known_b = known_c = 0
    count = 0
    name_of = _trigger_names.get
    while pos <= end:
        start, stop = match(anchor, data, pos, end)[0]
        if start < 0:
            break
        if numbers and stop - start >= 7 and ((last := data[stop - 1]) >= 0x80 or 0x30 <= last <= 0x39):
            if _DATE_ONLY_B.match(data, start):
                pos = stop
                continue
            if ascii_only:
                hit_end = stop
            else:
                hit_end = known_c + len(data[known_b:stop].decode())
            lo = hit_end - 1
            while lo > 0 and text[lo - 1] in _RUN_CHARS:
                lo -= 1
            hi = _RUN.match(text, hit_end).end()
            runs.append((lo, hi))
            # Nothing else starts inside the run: no trigger has only digits and separators.
            if ascii_only:
                pos = hi
            else:
                pos = stop + len(text[hit_end:hi].encode())
                known_b, known_c = pos, hi
            continue
        count += 1
        if count > MAX_SEEDS:
            return dict.fromkeys(_TRIGGER_NAMES), None
        if ascii_only:
            at = start
        else:
            at = known_c + len(data[known_b:start].decode())
            known_b, known_c = start, at
        # Inlined `_trigger_name` / `setdefault`: prose hits a trigger every few hundred characters
        # (`password` in a support chat), and each hit's bookkeeping is paid in Python.
        hit = data[start:stop]
        name = name_of(hit)
        if name is None:
            name = _trigger_name(hit)
        starts = seeds.get(name)
        if starts is None:
            seeds[name] = [at]
        else:
            starts.append(at)
        pos = stop
    return seeds, runs


# Anchored on the dots (far rarer than digits); the first octet and the boundaries are checked in
# Python. Versions (`v1.2.3.4`, `Chrome/120.0.6099.109`) fail the boundary or the octet range.
_IPV4_CORE = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9])")
_IPV4_BEFORE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")
_ASCII_DIGITS = frozenset("0123456789")
_DOT_DIGIT = frozenset(f".{c}" for c in "0123456789")
# Every IPv6 address has `::` or (full form) three colons in a row of hex groups; clock times
# (`12:30:45`) have neither, so they never reach the validator.
_IPV6_CORE = re.compile(r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:)")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_HEX_COLON_DOT = frozenset("0123456789abcdefABCDEF:.")
_WORDISH = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


# RFC special-purpose blocks written in CIDR notation are constants of configuration and docs
# (`fe80::/10`, `10.0.0.0/8`), not anybody's address.
_WELL_KNOWN_NETWORKS = frozenset(
    {"0.0.0.0/0", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
     "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/0", "::/128", "::1/128", "fc00::/7", "fd00::/8",
     "fe80::/10", "ff00::/8", "2001:db8::/32", "64:ff9b::/96", "::ffff:0:0/96"}
)
_CIDR_SUFFIX = re.compile(r"/([0-9]{1,3})(?![0-9])")
# `RFC 4291 §2.5.5.2`, `version 10.2.0.4`: dotted numbers that are not addresses.
_IPV4_NOT_AFTER = re.compile(r"(?i:§|section|sect\.|version|ver\.|release|build|rfc)\s{0,2}\Z")


def _ip_is_kept(ip, text: str, end: int) -> bool:
    # Loopback and unspecified addresses identify nobody and are everywhere in configuration talk.
    if ip.is_loopback or ip.is_unspecified:
        return True
    suffix = _CIDR_SUFFIX.match(text, end)
    return suffix is not None and f"{ip.compressed}/{suffix.group(1)}" in _WELL_KNOWN_NETWORKS


def find_ips(text: str, out: list) -> None:
    n = len(text)
    if "." in text:
        for m in _IPV4_CORE.finditer(text):
            start = lo = m.start()
            while lo > 0 and start - lo < 3 and text[lo - 1] in _ASCII_DIGITS:
                lo -= 1
            if lo == start:
                continue
            if lo > 0 and text[lo - 1] in _IPV4_BEFORE and not (lo > 1 and text[lo - 2] == "\\"):
                continue
            end = m.end()
            if end < n and (text[end] in _WORDISH or text[end:end + 1] + text[end + 1:end + 2] in _DOT_DIGIT):
                continue
            try:
                ip = ipaddress.IPv4Address(text[lo:end])
            except ValueError:
                continue
            if _ip_is_kept(ip, text, end) or _IPV4_NOT_AFTER.search(text, max(0, lo - 12), lo):
                continue
            out.append(Finding(lo, end, "ip_address", str(ip)))
    pos = 0
    while True:
        m = _IPV6_CORE.search(text, pos)
        if m is None:
            return
        start = m.start()
        while start > 0 and text[start - 1] in _HEX_COLON and m.start() - start < 40:
            start -= 1
        end = m.end()
        while end < n and text[end] in _HEX_COLON_DOT and end - start < 50:
            end += 1
        pos = end if end > m.end() else m.end() - 1
        while end > start and text[end - 1] in ".:" and not text[start:end].endswith("::"):
            end -= 1
        if start > 0 and text[start - 1] in _WORDISH and not (start > 1 and text[start - 2] == "\\"):
            continue
        if end < n and (text[end] in _WORDISH or (text[end] == "." and text[end + 1:end + 2] in _WORDISH)):
            continue
        candidate = text[start:end]
        if not any(c.isdigit() for c in candidate):
            continue  # `std::vector`, `abc::def`
        try:
            ip = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        if not _ip_is_kept(ip, text, end):
            out.append(Finding(start, end, "ip_address", ip.compressed))


_IBAN = re.compile(
    _bounded("[A-Z]", "A-Za-z0-9") + r"[A-Z][0-9]{2}(?:[ \-]?[A-Z0-9]{4}){2,8}(?:[ \-]?[A-Z0-9]{1,3})?"
)
_IBAN_SEP = re.compile(r"([ \-])")
_IBAN_PART = re.compile(r"([1-9][0-9]*)!")


def _iban_lengths() -> dict[str, int]:
    """Country code -> IBAN length, from python-stdnum's copy of the SWIFT registry: a dict lookup
    rejects most candidates (`JD0123…` tracking numbers) before the ~40 µs full validation."""
    try:
        data = (resources.files("stdnum") / "iban.dat").read_text(encoding="utf-8")
    except (OSError, ModuleNotFoundError):
        return {}
    lengths = {}
    for line in data.splitlines():
        m = re.match(r'^([A-Z]{2}) .*bban="([^"]+)"', line)
        if m:
            lengths[m.group(1)] = 4 + sum(int(n) for n in _IBAN_PART.findall(m.group(2)))
    return lengths


IBAN_LENGTHS = _iban_lengths()


def find_ibans(text: str, starts: list[int] | None, out: list) -> None:
    if starts is None:
        candidates = _IBAN.finditer(text)
    else:
        candidates = (_IBAN.match(text, start) for start in starts)
    done = -1
    for m in candidates:
        if m is None or m.start() < done:
            continue
        cand = m.group()
        # The run may swallow a following code (`… 00 BIC COBADEFF`): shrink group by group.
        parts = _IBAN_SEP.split(cand)
        for k in range(len(parts), 0, -2):
            piece = "".join(parts[:k])
            compact = piece.replace(" ", "").replace("-", "")
            if len(compact) < 15:
                break
            end = m.start() + len(piece)
            if end < len(text) and (text[end].isalnum() and text[end].isascii()):
                continue
            if IBAN_LENGTHS and IBAN_LENGTHS.get(compact[:2]) != len(compact):
                continue
            # Country modules also check bank registries, which lag behind real banks: mod-97 plus
            # the registry's structure and length is what tells an IBAN from other codes.
            if stdnum_iban.is_valid(compact, check_country=False):
                out.append(Finding(m.start(), end, "iban", compact))
                done = end
                break


# ---------------------------------------------------------------------------------------------
# Identifiers that must never be touched, whatever a validator says

_PROTECTED = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?)?"
)
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def in_protected_token(text: str, start: int, end: int) -> bool:
    """True when [start, end) lies inside a UUID, a hex id/hash or an ISO date/time."""
    lo = start
    while lo > 0 and text[lo - 1] in _TOKEN_CHARS and start - lo < 64:
        lo -= 1
    hi = end
    n = len(text)
    while hi < n and text[hi] in _TOKEN_CHARS and hi - end < 64:
        hi += 1
    if lo == start and hi == end:
        return False
    for m in _PROTECTED.finditer(text, lo, hi):
        # Identical spans are the finding itself (`DE89370400440532013000` is all hex digits).
        if m.start() < end and start < m.end() and (m.start(), m.end()) != (start, end):
            return True
    return False


NUMERIC_DETECTORS = frozenset({"credit_card", "us_ssn", "phone", "de_tax_id", "fr_nir", "nl_bsn", "pl_pesel"})
TRIGGERED_DETECTORS = frozenset(
    {"private_key", "url_password", "lookglass_key", "anthropic_key", "openai_key", "github_token", "slack_token",
     "slack_webhook", "stripe_key", "aws_access_key", "aws_secret_key", "jwt", "bearer_token", "iban",
     "credential", "email_obfuscated", "es_dni_nie", "it_codice_fiscale", "uk_nino", "passport", "date_of_birth",
     "mac_address"}
)
# Findings of these are dropped inside a UUID, a hex id or an ISO timestamp (`in_protected_token`).
GUARDED_DETECTORS = frozenset(
    {"credit_card", "us_ssn", "phone", "ip_address", "iban", "de_tax_id", "fr_nir", "nl_bsn", "pl_pesel",
     "es_dni_nie", "it_codice_fiscale", "uk_nino", "passport"}
)

# At the end: privacy.identifiers builds on `Finding` and `_near` above.
from privacy.identifiers import NATIONAL_NUMBER_DETECTORS, national_numbers_in  # noqa: E402
