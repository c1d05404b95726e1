"""Labelled corpus, part two: EU national identifiers, passport numbers and dates of birth in context,
MAC addresses, credentials in free text and obfuscated e-mail addresses (privacy/identifiers.py), in
de, fr, es, it, nl, pl and en, with their lookalikes: the same formats with a wrong check digit, ids
that pass a checksum but no keyword names, order numbers, ISO dates and timestamps, UUIDs, hashes,
versions, fingerprints and multicast addresses.

Same markup as `redaction_corpus` (⟦detector|value⟧ must be redacted, ⟪kind|value⟫ must survive).
Check digits are computed here by hand from the published algorithms, not with python-stdnum, so
that the corpus checks the detectors' use of the library rather than repeating it.
"""

from __future__ import annotations

import random
import string

from tests.data.redaction_corpus import KEEP_SLOTS, SLOT, Values, parse

SEED = 1414
PER_TEMPLATE = 10

# ---------------------------------------------------------------------------------------------
# Check digits


def idnr_check(first10: str) -> str:
    """ISO 7064 MOD 11,10 (German Steuer-IdNr)."""
    product = 10
    for ch in first10:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    return str((11 - product) % 10)


def nir_key(first13: str) -> str:
    return f"{97 - int(first13) % 97:02d}"


DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def bsn_ok(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1))) - int(digits[8])
    return total % 11 == 0


def pesel_check(first10: str) -> str:
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    return str((10 - sum(int(d) * w for d, w in zip(first10, weights)) % 10) % 10)


_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8,
                    12, 14, 16, 10, 22, 25, 24, 23]))


def cf_check(first15: str) -> str:
    total = 0
    for i, ch in enumerate(first15):
        if i % 2 == 0:
            total += _CF_ODD[ch]
        else:
            total += int(ch) if ch.isdigit() else ord(ch) - 65
    return chr(65 + total % 26)


def _wrong(check: str, alphabet: str) -> str:
    return alphabet[(alphabet.index(check) + 1) % len(alphabet)]


# ---------------------------------------------------------------------------------------------
# Values

NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"],
    "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
           "ottobre", "novembre", "dicembre"],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"],
    "pl": ["stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia", "września",
           "października", "listopada", "grudnia"],
}


class EUValues(Values):
    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    # -- identifiers -----------------------------------------------------------------------------

    def idnr_body(self) -> str:
        while True:
            chosen = self.r.sample(string.digits, 9)
            body = chosen + [self.r.choice(chosen)]
            self.r.shuffle(body)
            if body[0] != "0":
                return "".join(body)

    def idnr(self, spaced=None) -> str:
        body = self.idnr_body()
        value = body + idnr_check(body)
        if spaced if spaced is not None else self.r.random() < 0.3:
            return f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}"
        return value

    def bad_idnr(self) -> str:
        body = self.idnr_body()
        return body + _wrong(idnr_check(body), string.digits)

    def nir_body(self) -> str:
        return (self.pick("12") + f"{self.r.randint(40, 99):02d}" + f"{self.r.randint(1, 12):02d}"
                + f"{self.r.randint(1, 95):02d}" + f"{self.r.randint(1, 990):03d}" + f"{self.r.randint(1, 999):03d}")

    def nir(self, spaced=None) -> str:
        body = self.nir_body()
        value = body + nir_key(body)
        if spaced if spaced is not None else self.r.random() < 0.5:
            return " ".join([value[0], value[1:3], value[3:5], value[5:7], value[7:10], value[10:13], value[13:]])
        return value

    def bad_nir(self) -> str:
        body = self.nir_body()
        key = nir_key(body)
        return body + f"{(int(key) % 97) + 1:02d}"

    def dni(self) -> str:
        n = self.r.randint(1_000_000, 99_999_999)
        number, letter = f"{n:08d}", DNI_LETTERS[n % 23]
        style = self.r.random()
        if style < 0.2:
            return f"{number[:2]}.{number[2:5]}.{number[5:]}-{letter}"
        if style < 0.4:
            return f"{number}-{letter}"
        return number + letter

    def bad_dni(self) -> str:
        n = self.r.randint(10_000_000, 99_999_999)
        return f"{n:08d}{_wrong(DNI_LETTERS[n % 23], DNI_LETTERS)}"

    def nie(self) -> str:
        prefix = self.pick("XYZ")
        n = self.r.randint(0, 9_999_999)
        letter = DNI_LETTERS[int(f"{'XYZ'.index(prefix)}{n:07d}") % 23]
        if self.r.random() < 0.25:
            return f"{prefix}-{n:07d}-{letter}"
        return f"{prefix}{n:07d}{letter}"

    def cf_body(self) -> str:
        letters = "".join(self.r.choice(string.ascii_uppercase) for _ in range(6))
        day = self.r.randint(1, 28) + self.pick([0, 40])
        return (letters + f"{self.r.randint(40, 99):02d}" + self.pick("ABCDEHLMPRST") + f"{day:02d}"
                + self.pick("ABCDEFGHILMZ") + f"{self.r.randint(1, 999):03d}")

    def cf(self) -> str:
        body = self.cf_body()
        value = body + cf_check(body)
        return value.lower() if self.r.random() < 0.15 else value

    def bad_cf(self) -> str:
        body = self.cf_body()
        return body + _wrong(cf_check(body), string.ascii_uppercase)

    def nino(self) -> str:
        while True:
            prefix = self.pick(NINO_FIRST) + self.pick(NINO_SECOND)
            if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
                break
        d = self.digits(6)
        suffix = self.pick("ABCD")
        if self.r.random() < 0.5:
            return f"{prefix} {d[:2]} {d[2:4]} {d[4:]} {suffix}"
        return f"{prefix}{d}{suffix}"

    def bad_nino(self) -> str:
        prefix = self.pick(["QQ", "GB", "BG", "NK", "TN", "ZZ", "DA", "FQ"])
        return f"{prefix}{self.digits(6)}{self.pick('ABCD')}"

    def bsn(self) -> str:
        while True:
            value = self.digits(9)
            if value[0] != "0" and bsn_ok(value):
                return value

    def bad_bsn(self) -> str:
        while True:
            value = self.digits(9)
            if value[0] != "0" and not bsn_ok(value):
                return value

    def pesel_body(self) -> str:
        year = self.r.randint(1940, 2015)
        month = self.r.randint(1, 12) + (20 if year >= 2000 else 0)
        return f"{year % 100:02d}{month:02d}{self.r.randint(1, 28):02d}{self.digits(4)}"

    def pesel(self) -> str:
        body = self.pesel_body()
        return body + pesel_check(body)

    def bad_pesel(self) -> str:
        body = self.pesel_body()
        return body + _wrong(pesel_check(body), string.digits)

    def passport(self) -> str:
        kind = self.r.randint(0, 7)
        if kind == 0:  # Germany: C + 8 of [CFGHJKLMNPRTVWXYZ0-9]
            return "C" + "".join(self.r.choice("CFGHJK0123456789") for _ in range(2)) + self.digits(6)
        if kind == 1:  # France: 2 digits, 2 letters, 5 digits
            return self.digits(2) + "".join(self.r.choice(string.ascii_uppercase) for _ in range(2)) + self.digits(5)
        if kind == 2:  # Spain: 3 letters, 6 digits
            return "".join(self.r.choice(string.ascii_uppercase) for _ in range(3)) + self.digits(6)
        if kind == 3:  # Italy, Poland: 2 letters, 7 digits
            return "".join(self.r.choice(string.ascii_uppercase) for _ in range(2)) + self.digits(7)
        if kind == 4:  # Netherlands: 2 letters, then letters and digits, digit last
            return self.pick(["NW", "NP", "BU", "NX"]) + self.digits(2) + self.pick(["BF", "K7", "R2"]) + self.digits(3)
        if kind == 5:  # US: letter + 8 digits
            return self.pick("ACEF") + self.digits(8)
        return self.pick("123456789") + self.digits(8)  # UK, US: 9 digits

    # -- dates of birth --------------------------------------------------------------------------

    def birth(self):
        return self.r.randint(1940, 2010), self.r.randint(1, 12), self.r.randint(1, 28)

    def dob(self, lang: str) -> str:
        y, m, d = self.birth()
        style = self.r.random()
        if style < 0.25:
            return f"{y}-{m:02d}-{d:02d}"
        if style < 0.5:
            if lang == "en":
                return f"{m:02d}/{d:02d}/{y}"
            sep = "." if lang in ("de", "pl") else self.pick("/-.")
            return f"{d:02d}{sep}{m:02d}{sep}{y}"
        month = MONTHS[lang][m - 1]
        if lang == "en":
            return self.pick([f"{month} {d}, {y}", f"{d} {month} {y}"])
        if lang == "de":
            return f"{d}. {month} {y}"
        if lang == "es":
            return f"{d} de {month} de {y}"
        return f"{d} {month} {y}"

    # -- network and credentials -----------------------------------------------------------------

    def mac(self) -> str:
        first = self.r.randrange(0, 256) & 0xFE  # unicast
        octets = [first] + [self.r.randrange(0, 256) for _ in range(5)]
        if octets == [0] * 6:
            octets[5] = 1
        text = [f"{o:02x}" for o in octets]
        style = self.r.random()
        if style < 0.4:
            return ":".join(text)
        if style < 0.6:
            return ":".join(text).upper()
        if style < 0.85:
            return "-".join(text).upper()
        joined = "".join(text)
        if not any(c.isalpha() for c in joined):
            joined = "a" + joined[1:]
        return f"{joined[:4]}.{joined[4:8]}.{joined[8:]}"

    def fingerprint(self) -> str:
        return ":".join(f"{self.r.randrange(0, 256):02x}" for _ in range(16))

    def multicast(self) -> str:
        return self.pick(["01:00:5e:00:00:fb", "33:33:00:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",
                          "01:80:C2:00:00:0E"])

    def secret_value(self) -> str:
        return self.pick([
            "hunter2", "S3cr3t!pw", "Tr0ub4dor", "P@ssw0rd2024", "qwerty123", "Xk9#mLq2vT", "geheim123",
            "motdepasse!42", "c0ntr4s3ña", "Zaq12wsx",
        ]) + self.pick(["", "", str(self.r.randint(1, 99))])

    def api_value(self) -> str:
        return self.chars(self.r.choice([24, 32, 40]))

    def token_value(self) -> str:
        while True:
            value = self.chars(self.r.choice([20, 32, 48]), string.ascii_letters + string.digits + "_-")
            if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
                return value

    def obf_email(self) -> str:
        user = self.pick(["maria.lopez", "jschmidt", "kenji", "anna.k", "jan.kowalski", "piet", "giulia.r"])
        domain, tld = self.pick([("gmail", "com"), ("web", "de"), ("orange", "fr"), ("libero", "it"),
                                 ("wp", "pl"), ("ziggo", "nl"), ("yahoo", "es"), ("acme-corp", "io")])
        style = self.r.randint(0, 5)
        if style == 0:
            return f"{user.replace('.', ' dot ')} at {domain} dot {tld}"
        if style == 1:
            return f"{user} [at] {domain} [dot] {tld}"
        if style == 2:
            return f"{user}(at){domain}.{tld}"
        if style == 3:
            return f"{user} AT {domain} DOT {tld}"
        if style == 4:
            return f"{user} (at) {domain} (dot) {tld}"
        return f"{user}[at]{domain}.{tld}"

    def escaped_email(self) -> str:
        return self.pick(["maria.lopez", "j.schmidt", "kenji", "support-team"]) + "\\u0040" + self.pick(
            ["gmail.com", "web.de", "example.org", "orange.fr"])


def _lang_slot(lang):
    return lambda v, r: v.dob(lang)


PII = {
    "idnr": ("de_tax_id", lambda v, r: v.idnr()),
    "idnr_spaced": ("de_tax_id", lambda v, r: v.idnr(spaced=True)),
    "nir": ("fr_nir", lambda v, r: v.nir()),
    "nir_spaced": ("fr_nir", lambda v, r: v.nir(spaced=True)),
    "dni": ("es_dni_nie", lambda v, r: v.dni()),
    "nie": ("es_dni_nie", lambda v, r: v.nie()),
    "cf": ("it_codice_fiscale", lambda v, r: v.cf()),
    "nino": ("uk_nino", lambda v, r: v.nino()),
    "bsn": ("nl_bsn", lambda v, r: v.bsn()),
    "pesel": ("pl_pesel", lambda v, r: v.pesel()),
    "passport": ("passport", lambda v, r: v.passport()),
    **{f"dob_{lang}": ("date_of_birth", _lang_slot(lang)) for lang in MONTHS},
    "mac": ("mac_address", lambda v, r: v.mac()),
    "pw": ("credential", lambda v, r: v.secret_value()),
    "apikey": ("credential", lambda v, r: v.api_value()),
    "tok": ("credential", lambda v, r: v.token_value()),
    "obf_email": ("email_obfuscated", lambda v, r: v.obf_email()),
    "esc_email": ("email", lambda v, r: v.escaped_email()),
    "email": ("email", lambda v, r: v.email()),
    "ipv4": ("ip_address", lambda v, r: v.ipv4()),
    "url_pw": ("url_password", lambda v, r: v.password().replace("@", "%40").replace(":", "%3A")),
}
KEEP = {
    **KEEP_SLOTS,
    "bad_idnr": ("checksum", lambda v: v.bad_idnr()),
    "bad_nir": ("checksum", lambda v: v.bad_nir()),
    "bad_dni": ("checksum", lambda v: v.bad_dni()),
    "bad_cf": ("checksum", lambda v: v.bad_cf()),
    "bad_nino": ("checksum", lambda v: v.bad_nino()),
    "bad_bsn": ("checksum", lambda v: v.bad_bsn()),
    "bad_pesel": ("checksum", lambda v: v.bad_pesel()),
    # Valid check digits, but nothing names them: order and customer numbers.
    "unnamed_idnr": ("order", lambda v: v.idnr(spaced=False)),
    "unnamed_bsn": ("order", lambda v: v.bsn()),
    "unnamed_pesel": ("order", lambda v: v.pesel()),
    "unnamed_nir": ("order", lambda v: v.nir(spaced=False)),
    "fingerprint": ("fingerprint", lambda v: v.fingerprint()),
    "multicast": ("mac_like", lambda v: v.multicast()),
    "bare_dob": ("iso", lambda v: f"{v.birth()[0]}-{v.r.randint(1, 12):02d}-{v.r.randint(1, 28):02d}"),
}


def _fill(template: str, v: EUValues, region: str) -> str:
    def sub(m):
        slot = m.group(1)
        if slot in PII:
            detector, make = PII[slot]
            return f"⟦{detector}|{make(v, region)}⟧"
        if slot in KEEP:
            kind, make = KEEP[slot]
            return f"⟪{kind}|{make(v)}⟫"
        if slot == "name":
            return v.pick(["Maria", "Jürgen", "Amélie", "Carlos", "Giulia", "Sean", "Pieter", "Agnieszka"])
        raise KeyError(slot)

    return SLOT.sub(sub, template)


# (id, lang, format, region, template)
TEMPLATES = [
    # --- German ----------------------------------------------------------------------------------
    ("de-tax-chat", "de", "chat", "DE",
     "Hallo, für die Lohnabrechnung: meine Steuer-ID ist «idnr», geboren am «dob_de». Bestellnummer «unnamed_idnr» "
     "vom «date», Vorgang «uuid»."),
    ("de-tax-form", "de", "email", "DE",
     "Steuerliche Identifikationsnummer: «idnr_spaced»\nName: «name»\nGeburtsdatum: «dob_de»\nKundennummer: "
     "«unnamed_idnr»\nAlte (falsche) Steuer-IdNr: «bad_idnr»"),
    ("de-passport", "de", "chat", "DE",
     "Meine Reisepassnummer ist «passport», gültig bis «date». Buchung «order», Preis «price»."),
    ("de-config", "de", "config", "DE",
     "# Zugang zur Datenbank\nDB_HOST=db.intern\nDB_PASSWORD=«pw»\nAPI_KEY=«apikey»\nSTAND=«iso»\nBUILD=«version»"),
    ("de-contact", "de", "email", "DE",
     "Bitte schreiben Sie an «obf_email» statt an die alte Adresse. Ticket «order», Trace «trace»."),
    # --- French ----------------------------------------------------------------------------------
    ("fr-nir-chat", "fr", "chat", "FR",
     "Bonjour, mon numéro de sécurité sociale est «nir» et je suis né le «dob_fr». Commande «order» du «date»."),
    ("fr-nir-form", "fr", "email", "FR",
     "N° INSEE : «nir_spaced»\nNom : «name»\nDate de naissance : «dob_fr»\nRéférence client : «unnamed_nir»\n"
     "Ancien numéro de sécurité sociale (erroné) : «bad_nir»"),
    ("fr-passport", "fr", "chat", "FR",
     "Voici mon numéro de passeport : «passport». Il expire le «date». Dossier «uuid»."),
    ("fr-credentials", "fr", "chat", "FR",
     "J'ai mis mot de passe : «pw» dans la config, et token=«tok» pour l'API. Version «version», trace «trace»."),
    ("fr-contact", "fr", "chat", "FR",
     "Écrivez-moi à «obf_email» svp, commande «order»."),
    # --- Spanish ---------------------------------------------------------------------------------
    ("es-dni-chat", "es", "chat", "ES",
     "Hola, mi DNI es «dni» y la fecha de nacimiento «dob_es». Pedido «order», importe «price»."),
    ("es-nie-form", "es", "email", "ES",
     "NIE: «nie»\nNombre: «name»\nFecha de nacimiento: «dob_es»\nDNI anterior (incorrecto): «bad_dni»\nRef. «uuid»"),
    ("es-passport", "es", "chat", "ES",
     "Mi número de pasaporte es «passport», caduca el «date». Localizador «order»."),
    ("es-credentials", "es", "config", "ES",
     "contraseña: «pw»\napi_key: «apikey»\nhost: db.interno\nactualizado: «iso»"),
    # --- Italian ---------------------------------------------------------------------------------
    ("it-cf-chat", "it", "chat", "IT",
     "Buongiorno, il mio codice fiscale è «cf», sono nata il «dob_it». Ordine «order» del «date»."),
    ("it-cf-form", "it", "email", "IT",
     "Codice fiscale: «cf»\nData di nascita: «dob_it»\nCodice errato: «bad_cf»\nPratica «uuid», versione «version»"),
    ("it-passport", "it", "chat", "IT",
     "Numero del passaporto: «passport». Scade il «date». Prenotazione «order»."),
    ("it-cf-json", "it", "tool-json", "IT",
     '{"paziente":{"codice_fiscale":"«cf»","tessera":"«order»","nascita":"«dob_it»","agg":"«iso»"}}'),
    ("en-it-cf", "en", "chat", "IT",
     "My Italian tax code is «cf» (the old card said «bad_cf», which is wrong). Booking «order»."),
    ("it-credentials", "it", "config", "IT",
     "# accesso al database\nutente=app\npassword=«pw»\napi_key=«apikey»\naggiornato=«iso»"),
    ("it-contact", "it", "chat", "IT",
     "Scrivetemi a «obf_email», grazie. Ordine «order»."),
    # --- Dutch -----------------------------------------------------------------------------------
    ("nl-bsn-chat", "nl", "chat", "NL",
     "Hallo, mijn BSN is «bsn» en ik ben geboren op «dob_nl». Ordernummer «unnamed_bsn», bedrag «price»."),
    ("nl-bsn-form", "nl", "email", "NL",
     "Burgerservicenummer: «bsn»\nGeboortedatum: «dob_nl»\nOud BSN (fout): «bad_bsn»\nKlantnummer «unnamed_bsn»"),
    ("nl-passport", "nl", "chat", "NL",
     "Mijn paspoortnummer is «passport», geldig tot «date». Referentie «uuid»."),
    ("nl-credentials", "nl", "config", "NL",
     "wachtwoord=«pw»\ntoken: «tok»\nbijgewerkt=«iso»"),
    # --- Polish ----------------------------------------------------------------------------------
    ("pl-pesel-chat", "pl", "chat", "PL",
     "Dzień dobry, mój PESEL to «pesel», urodzony «dob_pl». Numer zamówienia «unnamed_pesel» z «date»."),
    ("pl-pesel-form", "pl", "email", "PL",
     "PESEL: «pesel»\nData urodzenia: «dob_pl»\nBłędny PESEL: «bad_pesel»\nZgłoszenie «uuid»"),
    ("pl-passport", "pl", "chat", "PL",
     "Numer paszportu: «passport», ważny do «date». Rezerwacja «order»."),
    ("pl-credentials", "pl", "chat", "PL",
     "Moje hasło: «pw» — wiem, że to zły pomysł. Sesja «uuid»."),
    # --- English ---------------------------------------------------------------------------------
    ("en-nino-chat", "en", "chat", "GB",
     "Hi, my National Insurance number is «nino» and my date of birth is «dob_en». Invoice «order»."),
    ("en-nino-form", "en", "email", "GB",
     "NI number: «nino»\nDOB: «dob_en»\nExample from the guide (not issued): «bad_nino»\nCase «uuid»"),
    ("en-passport", "en", "chat", "US",
     "My passport number is «passport» and it expires on «date». Booking «order», total «price»."),
    ("en-born", "en", "chat", "US",
     "I was born on «dob_en» in Leeds. The account was created «iso» and last login «iso»."),
    ("en-mac-log", "en", "log", "US",
     "«iso» dhcpd: DHCPACK on «ipv4» to «mac» via eth0 (lease «uuid»); host key fingerprint «fingerprint»"),
    ("en-mac-chat", "en", "chat", "US",
     "My laptop's MAC is «mac» and the printer is «mac». The router shows «multicast» too. Build «version»."),
    ("en-credentials-log", "en", "log", "US",
     "«iso» WARN config dump: user=app password=«pw» api_key=«apikey» retries=3 trace=«trace»"),
    ("en-credentials-yaml", "en", "config", "US",
     "database:\n  host: db.internal\n  passwd: «pw»\nservice:\n  token: «tok»\n  secret: «apikey»\n"
     "  updated: «iso»"),
    ("en-connection", "en", "config", "US",
     "Server=tcp:sql.internal,1433;Database=app;User Id=svc;Password=«pw»;Encrypt=True;\n"
     "DATABASE_URL=postgres://app:«url_pw»@db.internal:5432/prod\nMONGO=mongodb+srv://svc:«url_pw»@cluster0.ab1cd.mongodb.net/app"),
    ("en-json-escaped", "en", "tool-json", "US",
     '{"arguments":"{\\"to\\":\\"«esc_email»\\",\\"cc\\":\\"«email»\\",\\"sent_at\\":\\"«iso»\\"}"}'),
    # --- structured payloads and other phrasings ---------------------------------------------------
    ("de-tax-json", "de", "tool-json", "DE",
     '{"kunde":{"name":"«name»","steuer_id":"«idnr»","kundennummer":"«unnamed_idnr»","erstellt":"«iso»"}}'),
    ("en-de-tax", "en", "chat", "DE",
     "My German tax ID (Steuer-IdNr) is «idnr_spaced», my wife's is «idnr»? Order «order», invoice «unnamed_idnr»."),
    ("fr-nir-json", "fr", "tool-json", "FR",
     '{"assure":{"nir":"«nir»","ref":"«unnamed_nir»","maj":"«iso»","id":"«uuid»"}}'),
    ("en-fr-nir", "en", "chat", "FR",
     "Her French social security number: «nir_spaced». Claim «order» filed «date»."),
    ("es-dni-json", "es", "tool-json", "ES",
     '{"cliente":{"dni":"«dni»","nie_conyuge":"«nie»","pedido":"«order»","alta":"«iso»"}}'),
    ("es-dni-csv", "es", "csv", "ES",
     "nombre;documento;alta\n«name»;«dni»;«date»\n«name»;«nie»;«date»\n«name»;«bad_dni»;«date»"),
    ("it-cf-csv", "it", "csv", "IT",
     "nome,codice_fiscale,creato\n«name»,«cf»,«iso»\n«name»,«bad_cf»,«iso»"),
    ("en-nino-csv", "en", "csv", "GB",
     "employee,ni_number,start\n«name»,«nino»,«date»\n«name»,«nino»,«date»\n«name»,«bad_nino»,«date»"),
    ("nl-bsn-json", "nl", "tool-json", "NL",
     '{"klant":{"bsn":"«bsn»","klantnummer":"«unnamed_bsn»","sinds":"«iso»"}}'),
    ("en-nl-bsn", "en", "chat", "NL",
     "For the Dutch tax office: citizen service number «bsn», not the old one «bad_bsn» (typo). Ref «uuid»."),
    ("pl-pesel-json", "pl", "tool-json", "PL",
     '{"pacjent":{"pesel":"«pesel»","numer_karty":"«unnamed_pesel»","utworzono":"«iso»"}}'),
    ("en-pl-pesel", "en", "chat", "PL",
     "My Polish PESEL number is «pesel». My order number is «unnamed_pesel», placed «date»."),
    ("en-obf-email", "en", "chat", "US",
     "Don't spam me, write to «obf_email» instead. Ticket «order», request «uuid»."),
]

# Written once: edge cases, and lookalikes that must survive byte-identical.
HANDWRITTEN = [
    ("eu-neg-dates", "en", "log", "US",
     "created ⟪iso|2024-06-11T10:00:00Z⟫, renewed ⟪iso|2024-06-11⟫, born ⟪iso|2024-06-11T10:00:00Z⟫ (a timestamp), "
     "deploy on ⟪iso|1985-03-12⟫ and ⟪iso|12.03.1985⟫ without a keyword, release ⟪version|2024.06.10.1842⟫"),
    ("eu-neg-born", "en", "chat", "US",
     "The idea was born in a meeting on Tuesday; born to run; reborn ⟪version|v2.0.1⟫; Date of birth: unknown."),
    ("eu-neg-mac_like", "en", "log", "US",
     "ssh: host key ⟪fingerprint|16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48⟫, ipv6 "
     "⟦ip_address|fe80::1ff:fe23:4567:890a⟧, time ⟪iso|12:30:45⟫, mdns ⟪mac_like|01:00:5e:00:00:fb⟫, bcast "
     "⟪mac_like|ff:ff:ff:ff:ff:ff⟫, null ⟪mac_like|00:00:00:00:00:00⟫, five groups ⟪number|aa:bb:cc:dd:ee⟫, "
     "seven ⟪number|aa:bb:cc:dd:ee:ff:01⟫, build ⟪version|2024.0610.1842⟫, colour ⟪number|#aabbcc⟫"),
    ("eu-neg-credentials", "en", "config", "US",
     "password: ********\npassword: <your password>\napi_key: ${OPENAI_API_KEY}\ntoken: expired\nmax_tokens: 1024\n"
     "prompt_tokens: 33\nAccess denied for user 'app'@'localhost' (using password: YES)\npassword_reset_url: /reset\n"
     "token_count=128\nPWD=/home/app\nsecret: true\npassword reset link sent\npassword: !vault |\n"
     "secret: ${{ secrets.API_TOKEN }}\npassword: \"{{ db_password }}\""),
    ("eu-neg-credentials-code", "en", "code", "US",
     'password = os.environ["DB_PASSWORD"]\npassword = getpass()\napi_key=settings.OPENAI_API_KEY\n'
     'login(user=user, password=new_password)\ntoken = jwt.encode(payload, key)\nconst token = process.env.TOKEN;\n'
     'secret_key = SECRET_KEY_FROM_ENV\nPassword: Please enter it twice.\n'
     'conn = connect(password="⟦credential|s3cr3t-Pa55⟧", timeout=⟪number|30⟫)  # created ⟪iso|2024-06-11T10:00:00Z⟫'),
    ("eu-neg-passport", "en", "chat", "US",
     "Passport photo size is 35x45 mm; passport renewal fee ⟪price|$130.00⟫; the passport expires "
     "⟪iso|2031-05-01⟫; we use passport-jwt ⟪version|4.0.1⟫ and passport.authenticate('jwt')."),
    ("eu-neg-ids", "de", "log", "DE",
     "Bestellung ⟪order|36574261809⟫ Kunde ⟪order|111222333⟫ Auftrag ⟪order|44051401359⟫ trace "
     "⟪hex|4bf92f3577b34da6a3ce929d0e0e4736⟫ id ⟪uuid|550e8400-e29b-41d4-a716-446655440000⟫ "
     "epoch ⟪epoch|1717171717⟫ ms ⟪epoch|1717171717171⟫"),
    ("eu-neg-nino", "en", "chat", "GB",
     "The leaflet's example ⟪checksum|QQ 12 34 56 C⟫ is not issued, nor is ⟪checksum|TN123456A⟫; part "
     "⟪number|AB123456E⟫ has no valid suffix and ⟪number|SKU-AB123456C⟫ is a SKU."),
    ("eu-neg-obf", "en", "chat", "US",
     "Look at this dot com bubble; meet me at home dot com is not a thing; see you at 5 pm. Contact "
     "⟦email_obfuscated|info [at] example [dot] com⟧ or ⟦email_obfuscated|jan(at)firma.de⟧."),
    # Hard cases, kept in the corpus so that the printed figures say what the context rules miss.
    ("eu-hard-passport", "en", "chat", "US",
     "Passport no. not available, booking ⟪order|12345678⟫ instead; the passport office number ⟪number|0800 222 0101⟫."),
    ("eu-hard-birthday", "en", "chat", "US",
     # Not a date of birth, and found as one (no markup: a false positive in the printed figures).
     "Her birthday party is on May 3, 2025 at the lake."),
    ("eu-known-values", "en", "email", "US",
     "Samples: Steuer-IdNr ⟦de_tax_id|36574261809⟧, NIR ⟦fr_nir|1 84 12 76 451 089 46⟧, DNI ⟦es_dni_nie|12345678Z⟧, "
     "NIE ⟦es_dni_nie|X2482300W⟧, CF ⟦it_codice_fiscale|RCCMNL83S18D969H⟧, BSN ⟦nl_bsn|111222333⟧, "
     "PESEL ⟦pl_pesel|44051401359⟧, NINO ⟦uk_nino|AB 12 34 56 C⟧, MAC ⟦mac_address|d0:50:99:84:a2:a0⟧."),
    ("eu-dob-langs", "de", "chat", "DE",
     "geb. ⟦date_of_birth|01.02.1980⟧ in Ulm; DOB ⟦date_of_birth|1975-12-31⟧; Born: ⟦date_of_birth|March 3, 1990⟧; "
     "née le ⟦date_of_birth|3 août 1962⟧; nacida el ⟦date_of_birth|7 de julio de 1971⟧; nato il "
     "⟦date_of_birth|9 settembre 1958⟧; geboortedatum ⟦date_of_birth|12-05-1988⟧; urodzona "
     "⟦date_of_birth|5 października 1993⟧ r."),
]


def eu_cases() -> list:
    cases = [parse(cid, lang, fmt, markup, region) for cid, lang, fmt, region, markup in HANDWRITTEN]
    v = EUValues(SEED)
    v.r = random.Random(SEED)
    for cid, lang, fmt, region, template in TEMPLATES:
        for k in range(PER_TEMPLATE):
            cases.append(parse(f"{cid}-{k}", lang, fmt, _fill(template, v, region), region))
    return cases
