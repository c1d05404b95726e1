"""Labelled corpus for the PII redaction engine: real-looking chat, log, email, CSV, config and code
text in several languages, with the exact spans that must be redacted and the lookalikes that must
survive byte-identical.

Markup (parsed away by `parse`):
    ⟦detector|value⟧   `value` must be redacted, reported as `detector`
    ⟪kind|value⟫       `value` must come out untouched (uuid, hex, iso, epoch, version, order, price,
                       line, number, ip-like, key-like …)

Cases come from hand-written texts (edge cases, each written once) and from templates filled with
seeded random values (so every run sees the same corpus). Values are realistic: phone numbers that
libphonenumber validates for the case's region, Luhn-valid cards with real issuer prefixes, IBANs
with correct mod-97 check digits, SSNs in issued ranges, vendor-shaped keys, signed-looking JWTs.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import uuid
from dataclasses import dataclass, field

MARK = re.compile(r"⟦([a-z_0-9]+)\|(.+?)⟧|⟪([a-z_0-9]+)\|(.+?)⟫", re.S)
SLOT = re.compile(r"«([a-z_0-9]+)»")


@dataclass
class Case:
    id: str
    lang: str
    fmt: str
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # must be redacted
    keep: list[tuple[int, int, str]] = field(default_factory=list)  # must survive
    region: str = "US"


def parse(case_id: str, lang: str, fmt: str, markup: str, region: str = "US") -> Case:
    out = []
    spans, keep = [], []
    pos = 0
    length = 0
    for m in MARK.finditer(markup):
        before = markup[pos:m.start()]
        out.append(before)
        length += len(before)
        if m.group(1):
            value, target, label = m.group(2), spans, m.group(1)
        else:
            value, target, label = m.group(4), keep, m.group(3)
        target.append((length, length + len(value), label))
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(markup[pos:])
    text = "".join(out)
    assert "⟦" not in text and "⟪" not in text, f"unbalanced markup in {case_id}"
    return Case(case_id, lang, fmt, text, spans, keep, region)


# ---------------------------------------------------------------------------------------------
# Value pools

PHONES = {
    "US": ["(415) 555-2671", "415-555-2671", "415.555.2671", "+1 415 555 2671", "+1-202-555-0143",
           "(212) 736-5000", "1-800-275-2273", "650-253-0000", "+1 (650) 253-0000", "(646) 555-0199",
           "303 555 0142"],
    "DE": ["030 1234567", "0171 1234567", "+49 30 901820", "+49 171 2345678", "089 12345678",
           "0049 30 1234567", "+49 (0)30 1234567", "030/1234567", "0151 23456789", "+49 89 636 48018"],
    "FR": ["01 23 45 67 89", "06 12 34 56 78", "+33 6 12 34 56 78", "+33 1 42 68 53 00", "07 81 23 45 67",
           "04 72 10 30 30"],
    "ES": ["612 34 56 78", "+34 612 34 56 78", "91 123 45 67", "+34 91 123 45 67", "678 901 234"],
    "JP": ["090-1234-5678", "03-1234-5678", "+81 90-1234-5678", "+81 3-1234-5678", "080-9876-5432",
           "06-6345-6789"],
    "GB": ["020 7946 0958", "+44 20 7946 0958", "07911 123456", "+44 7911 123456", "0161 496 0000"],
    "IT": ["+39 06 6982 1234", "+39 347 123 4567", "347 123 4567", "06 6982 1234", "02 1234 5678"],
    "BR": ["+55 11 91234-5678", "(11) 91234-5678", "+55 21 2555-1234"],
    "PT": ["+351 912 345 678", "912 345 678", "21 123 4567"],
}
INTERNATIONAL_PHONES = ["+1 415 555 2671", "+49 171 2345678", "+33 6 12 34 56 78", "+44 20 7946 0958",
                        "+81 90-1234-5678", "+34 612 34 56 78", "+39 347 123 4567", "+55 11 91234-5678"]

IBANS = ["DE89370400440532013000", "GB29NWBK60161331926819", "FR1420041010050500013M02606",
         "ES9121000418450200051332", "NL91ABNA0417164300", "CH9300762011623852957",
         "IT60X0542811101000000123456", "AT611904300234573201", "BE68539007547034",
         "PL61109010140000071219812874", "SE4550000000058398257466", "NO9386011117947", "DK5000400440116243",
         "FI2112345600000785", "IE29AIBK93115212345678", "PT50000201231234567890154"]
TEST_CARDS = ["4111111111111111", "4012888888881881", "5555555555554444", "5105105105105100",
              "2223003122003222", "378282246310005", "371449635398431", "6011111111111117",
              "6011000990139424", "30569309025904", "38520000023237", "3530111333300000",
              "3566002020360505", "6200000000000005", "4000056655665556", "5200828282828210"]
EMAIL_USERS = ["maria.lopez", "j.schmidt", "tanaka.kenji", "paul+shop", "ANNA.K", "li.wei88", "o'brien.sean",
               "jürgen.müller", "francois.dupont", "s.rossi", "admin", "support-team", "x_ae_12", "ben.ali"]
EMAIL_DOMAINS = ["gmail.com", "web.de", "example.co.jp", "outlook.com", "acme-corp.io", "mail.example.org",
                 "posteo.de", "orange.fr", "yahoo.es", "libero.it", "uni-heidelberg.de", "company.com.br",
                 "münchen-test.de", "gouv.fr"]
IPV4 = ["203.0.113.42", "198.51.100.7", "192.168.1.10", "10.0.0.23", "172.16.254.1", "8.8.8.8",
        "34.120.55.201", "185.199.108.153", "100.64.12.9", "52.95.110.1"]
IPV6 = ["2001:db8:85a3::8a2e:370:7334", "fe80::1ff:fe23:4567:890a", "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "2606:4700:4700::1111", "::ffff:192.0.2.128", "2a00:1450:4001:82b::200e", "fd12:3456:789a:1::1"]
NAMES = ["Maria", "Jürgen", "Kenji", "Amélie", "Carlos", "Giulia", "Sean", "Wei", "Fatima", "Ola"]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return digits + str((10 - total % 10) % 10)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Values:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def pick(self, seq):
        return self.r.choice(seq)

    def chars(self, n, alphabet=string.ascii_letters + string.digits):
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # -- PII -------------------------------------------------------------------------------------

    def email(self):
        return f"{self.pick(EMAIL_USERS)}@{self.pick(EMAIL_DOMAINS)}"

    def phone(self, region):
        pool = PHONES.get(region, []) + INTERNATIONAL_PHONES[:2]
        return self.pick(pool)

    def card(self):
        if self.r.random() < 0.5:
            digits = self.pick(TEST_CARDS)
        else:
            prefix, length = self.pick([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
                                        ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3528", 16),
                                        ("62", 16), ("4", 19), ("36", 14)])
            digits = _luhn_complete(prefix, length, self.r)
        style = self.r.random()
        if len(digits) == 15 and style < 0.4:
            return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
        if len(digits) == 16 and style < 0.35:
            return " ".join(digits[i:i + 4] for i in range(0, 16, 4))
        if len(digits) == 16 and style < 0.6:
            return "-".join(digits[i:i + 4] for i in range(0, 16, 4))
        return digits

    def iban(self):
        value = self.pick(IBANS)
        if self.r.random() < 0.5:
            return " ".join(value[i:i + 4] for i in range(0, len(value), 4))
        return value

    def ssn(self):
        while True:
            area = self.r.randint(1, 899)
            if area != 666:
                break
        sep = "-" if self.r.random() < 0.8 else " "
        return f"{area:03d}{sep}{self.r.randint(1, 99):02d}{sep}{self.r.randint(1, 9999):04d}"

    def ipv4(self):
        return self.pick(IPV4)

    def ipv6(self):
        return self.pick(IPV6)

    # -- secrets ---------------------------------------------------------------------------------

    def openai(self):
        kind = self.r.random()
        if kind < 0.4:
            return "sk-" + self.chars(20) + "T3BlbkFJ" + self.chars(20)
        if kind < 0.8:
            return "sk-proj-" + self.chars(74, string.ascii_letters + string.digits + "_-") + "T3BlbkFJ" + self.chars(74)
        return "sk-svcacct-" + self.chars(64, string.ascii_letters + string.digits + "_-")

    def anthropic(self):
        return "sk-ant-api03-" + self.chars(93, string.ascii_letters + string.digits + "_-") + "AA"

    def aws_id(self):
        return self.pick(["AKIA", "ASIA"]) + self.chars(16, string.ascii_uppercase + "234567")

    def aws_secret(self):
        while True:
            value = self.chars(40, string.ascii_letters + string.digits + "/+")
            if any(c.islower() for c in value) and any(c.isupper() for c in value):
                return value

    def github(self):
        if self.r.random() < 0.8:
            return self.pick(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + self.chars(36)
        return "github_pat_" + self.chars(22) + "_" + self.chars(59)

    def slack(self):
        return (self.pick(["xoxb-", "xoxp-", "xoxa-", "xoxs-", "xoxr-", "xoxo-"]) + self.chars(12, string.digits)
                + "-" + self.chars(13, string.digits) + "-" + self.chars(24))

    def slack_hook(self):
        return ("https://hooks.slack.com/services/T" + self.chars(8, string.ascii_uppercase + string.digits)
                + "/B" + self.chars(8, string.ascii_uppercase + string.digits) + "/" + self.chars(24))

    def stripe(self):
        return self.pick(["sk_live_", "rk_live_", "pk_live_", "sk_test_"]) + self.chars(self.r.choice([24, 34, 99]))

    def jwt(self):
        header = _b64url(json.dumps({"alg": self.pick(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
        payload = _b64url(json.dumps({"sub": str(self.r.randint(1, 10**9)), "name": self.pick(NAMES),
                                      "iat": 1717000000 + self.r.randint(0, 10**6)}).encode())
        return f"{header}.{payload}.{_b64url(self.r.randbytes(32))}"

    def bearer(self):
        kind = self.r.random()
        if kind < 0.4:
            return "ya29." + self.chars(60, string.ascii_letters + string.digits + "_-")
        if kind < 0.7:
            return self.chars(40, string.ascii_letters + string.digits + "+/") + "=="
        return self.chars(32, "0123456789abcdef")

    def lookglass(self):
        return "sk-lg-" + self.chars(43, string.ascii_letters + string.digits + "_-")

    def password(self):
        return self.pick(["S3cr3t!pw", "hunter2hunter2", "Pa55w0rd%21", "correct-horse-battery", "xY9$kq2Lm",
                          "pa@ss:w0rd"])

    def pem(self, newline="\n"):
        kind = self.pick(["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "])
        lines = [self.chars(64, string.ascii_letters + string.digits + "+/") for _ in range(self.r.randint(3, 8))]
        lines.append(self.chars(self.r.randint(8, 60), string.ascii_letters + string.digits + "+/") + "==")
        return newline.join([f"-----BEGIN {kind}PRIVATE KEY-----", *lines, f"-----END {kind}PRIVATE KEY-----"])

    # -- lookalikes ------------------------------------------------------------------------------

    def uuid(self):
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def hex(self, n):
        return self.chars(n, "0123456789abcdef")

    def epoch(self):
        return str(self.r.randint(1_500_000_000, 1_799_999_999))

    def epoch_ms(self):
        return str(self.r.randint(1_500_000_000_000, 1_799_999_999_999))

    def iso(self):
        date = f"20{self.r.randint(19, 26)}-{self.r.randint(1, 12):02d}-{self.r.randint(1, 28):02d}"
        clock = f"{self.r.randint(0, 23):02d}:{self.r.randint(0, 59):02d}:{self.r.randint(0, 59):02d}"
        suffix = self.pick(["Z", ".123Z", "+02:00", ".481927+00:00", "-05:00", ""])
        return f"{date}{self.pick(['T', ' '])}{clock}{suffix}"

    def date(self):
        return f"20{self.r.randint(19, 26)}-{self.r.randint(1, 12):02d}-{self.r.randint(1, 28):02d}"

    def version(self):
        return self.pick(["1.2.3", "v2.0.1-rc1", "10.4.12", "0.28.1", "v5.3.2+build.53200", "3.11.7", "2.7.18",
                          "1.0.0-beta.2", "4.12.0-rc2", "v1.24.3"])

    def order(self):
        return self.pick([f"ORD-2024-{self.r.randint(0, 999999):06d}", f"INV {self.r.randint(10000, 99999)}",
                          f"#A-{self.r.randint(10000, 99999)}", f"PO-{self.r.randint(2019, 2026)}-{self.r.randint(1000, 9999)}",
                          f"ORD-2025-{self.r.randint(0, 999999):06d}"])

    def price(self):
        return self.pick(["$1,299.00", "12.50 EUR", "€49,99", "1 299,00 €", "¥12,800", "£7.20", "$0.99",
                          "2.499,00 EUR", "USD 15,000.00"])

    def line(self):
        return self.pick([f"line {self.r.randint(1, 4000)}", f"views.py:{self.r.randint(1, 999)}",
                          f"Main.java:{self.r.randint(1, 999)}", f"app.js:{self.r.randint(1, 999)}:{self.r.randint(1, 80)}"])

    def number(self):
        return self.pick(["8,336,817", "3.14159265", "1234567", "42", "0.0001", "1e-9", "98.6", "65536",
                          "2,147,483,647", "12 345 678"])


# Slots: the value generator and the markup around it.
def _fill(template: str, v: Values, region: str) -> str:
    def sub(m):
        slot = m.group(1)
        if slot in PII_SLOTS:
            detector, make = PII_SLOTS[slot]
            return f"⟦{detector}|{make(v, region)}⟧"
        if slot in KEEP_SLOTS:
            kind, make = KEEP_SLOTS[slot]
            return f"⟪{kind}|{make(v)}⟫"
        if slot == "name":
            return v.pick(NAMES)
        raise KeyError(slot)

    return SLOT.sub(sub, template)


PII_SLOTS = {
    "email": ("email", lambda v, r: v.email()),
    "phone": ("phone", lambda v, r: v.phone(r)),
    "intl_phone": ("phone", lambda v, r: v.pick(INTERNATIONAL_PHONES)),
    "card": ("credit_card", lambda v, r: v.card()),
    "iban": ("iban", lambda v, r: v.iban()),
    "ssn": ("us_ssn", lambda v, r: v.ssn()),
    "ipv4": ("ip_address", lambda v, r: v.ipv4()),
    "ipv6": ("ip_address", lambda v, r: v.ipv6()),
    "openai": ("openai_key", lambda v, r: v.openai()),
    "anthropic": ("anthropic_key", lambda v, r: v.anthropic()),
    "aws_id": ("aws_access_key", lambda v, r: v.aws_id()),
    "aws_secret": ("aws_secret_key", lambda v, r: v.aws_secret()),
    "github": ("github_token", lambda v, r: v.github()),
    "slack": ("slack_token", lambda v, r: v.slack()),
    "slack_hook": ("slack_webhook", lambda v, r: v.slack_hook()),
    "stripe": ("stripe_key", lambda v, r: v.stripe()),
    "jwt": ("jwt", lambda v, r: v.jwt()),
    "bearer": ("bearer_token", lambda v, r: v.bearer()),
    "lg": ("lookglass_key", lambda v, r: v.lookglass()),
    "password": ("url_password", lambda v, r: v.password()),
    "pem": ("private_key", lambda v, r: v.pem()),
    "pem_json": ("private_key", lambda v, r: v.pem(newline="\\n")),
}
KEEP_SLOTS = {
    "uuid": ("uuid", lambda v: v.uuid()),
    "trace": ("hex", lambda v: v.hex(32)),
    "span": ("hex", lambda v: v.hex(16)),
    "sha1": ("hex", lambda v: v.hex(40)),
    "sha256": ("hex", lambda v: v.hex(64)),
    "md5": ("hex", lambda v: v.hex(32)),
    "epoch": ("epoch", lambda v: v.epoch()),
    "epoch_ms": ("epoch", lambda v: v.epoch_ms()),
    "iso": ("iso", lambda v: v.iso()),
    "date": ("iso", lambda v: v.date()),
    "version": ("version", lambda v: v.version()),
    "order": ("order", lambda v: v.order()),
    "price": ("price", lambda v: v.price()),
    "line": ("line", lambda v: v.line()),
    "number": ("number", lambda v: v.number()),
}

# (id, lang, format, region, template)
TEMPLATES = [
    # --- English chat ----------------------------------------------------------------------------
    ("en-chat-contact", "en", "chat", "US",
     "Hi, this is «name». You can reach me at «email» or call «phone» after 5pm. My order «order» "
     "(placed «iso») still hasn't shipped."),
    ("en-chat-refund", "en", "chat", "US",
     "Please refund the «price» charge on my card «card» — it was billed twice on «date». Order «order»."),
    ("en-chat-bank", "en", "chat", "GB",
     "For the payout use IBAN «iban», account holder «name». My phone is «phone» if the bank calls."),
    ("en-chat-tax", "en", "chat", "US",
     "I need the W-9 corrected: my SSN is «ssn», not what you have on file. Ticket «order», «number» items."),
    ("en-chat-login", "en", "chat", "US",
     "I can't log in from «ipv4» since «iso». The app version is «version» and the request id was «uuid»."),
    ("en-chat-ipv6", "en", "chat", "US",
     "Our office connects over IPv6 («ipv6») and the VPN gives us «ipv4». Trace «trace», span «span»."),
    ("en-chat-keys", "en", "chat", "US",
     "Here's my config, can you spot the bug? OPENAI_API_KEY=«openai» and model gpt-4o, version «version»."),
    ("en-chat-anthropic", "en", "chat", "US",
     "I rotated the Claude key, new one is «anthropic». It still fails at «line» with a 401."),
    ("en-chat-github", "en", "chat", "US",
     "The CI job uses «github» to push tags. Commit «sha1» broke it on «date»."),
    ("en-chat-jwt", "en", "chat", "US",
     "My session token «jwt» expires too early, at «epoch» instead of an hour later."),
    ("en-chat-multi", "en", "chat", "US",
     "Contact: «email», «phone». Card: «card». Backup email «email». Invoice «order» total «price»."),
    ("en-chat-lg", "en", "chat", "US",
     "Is it safe to paste my Lookglass key «lg» here? The project id is «uuid»."),
    ("en-chat-stripe", "en", "chat", "US",
     "Webhook signature fails. We're using «stripe» in production since «iso», «number» events so far."),
    ("en-chat-aws", "en", "chat", "US",
     "Our deploy role uses access key «aws_id» with aws_secret_access_key = «aws_secret» — yes I know."),
    ("en-chat-intl", "en", "chat", "US",
     "Reach our Berlin office on «intl_phone» or email «email». Build «version», «number» seats."),
    # --- German / French / Spanish / Italian / Portuguese / Japanese chat -------------------------
    ("de-chat-kontakt", "de", "chat", "DE",
     "Hallo, hier ist «name». Sie erreichen mich unter «phone» oder per E-Mail an «email». "
     "Meine Bestellung «order» vom «date» ist noch nicht angekommen."),
    ("de-chat-bank", "de", "chat", "DE",
     "Bitte überweisen Sie die Erstattung von «price» auf mein Konto, IBAN «iban». Vielen Dank!"),
    ("de-chat-karte", "de", "chat", "DE",
     "Meine Kreditkarte «card» wurde am «date» zweimal belastet. Rechnungsnummer «order»."),
    ("de-chat-server", "de", "chat", "DE",
     "Der Server «ipv4» antwortet seit «iso» nicht mehr, Version «version», Zeile «line»."),
    ("fr-chat-contact", "fr", "chat", "FR",
     "Bonjour, je suis «name». Vous pouvez me joindre au «phone» ou par mail à «email». "
     "Commande «order» du «date», montant «price»."),
    ("fr-chat-banque", "fr", "chat", "FR",
     "Pour le remboursement, voici mon IBAN : «iban». Merci de confirmer avant le «date»."),
    ("fr-chat-carte", "fr", "chat", "FR",
     "Ma carte «card» a été débitée deux fois. Référence «order», identifiant «uuid»."),
    ("es-chat-contacto", "es", "chat", "ES",
     "Hola, soy «name». Mi teléfono es «phone» y mi correo «email». El pedido «order» llegó roto."),
    ("es-chat-banco", "es", "chat", "ES",
     "Para el reembolso de «price» usad mi cuenta «iban», por favor. Pedido «order» del «date»."),
    ("it-chat-contatto", "it", "chat", "IT",
     "Buongiorno, sono «name». Il mio cellulare è «phone», la mail «email». Ordine «order»."),
    ("pt-chat-contato", "pt", "chat", "BR",
     "Olá, sou «name». Meu celular é «phone» e meu e-mail «email». Pedido «order» de «price»."),
    ("pt-chat-pt", "pt", "chat", "PT",
     "Bom dia, o meu número é «phone». Pode enviar a fatura para «email»? Encomenda «order»."),
    ("ja-chat-renraku", "ja", "chat", "JP",
     "こんにちは、«name»です。電話番号は«phone»、メールは«email»です。注文番号«order»の件でご連絡しました。"),
    ("ja-chat-card", "ja", "chat", "JP",
     "カード番号«card»で二重に請求されています。請求日は«date»、金額は«price»です。"),
    ("ja-chat-server", "ja", "chat", "JP",
     "サーバー«ipv4»に接続できません。バージョン«version»、リクエストID «uuid»。"),
    ("en-chat-uk", "en", "chat", "GB",
     "Ring me on «phone» or drop a line to «email». Parcel ref «order», weight «number» kg."),
    # --- JSON logs (as text) ----------------------------------------------------------------------
    ("json-log-login", "en", "json-log", "US",
     '{"ts":"«iso»","level":"warn","msg":"login failed","user":"«email»","ip":"«ipv4»",'
     '"trace_id":"«trace»","span_id":"«span»","attempt":3}'),
    ("json-log-payment", "en", "json-log", "US",
     '{"timestamp":«epoch_ms»,"event":"payment.declined","card":"«card»","amount":"«price»",'
     '"order":"«order»","request_id":"«uuid»"}'),
    ("json-log-headers", "en", "json-log", "US",
     '{"time":"«iso»","method":"POST","path":"/v1/chat","headers":{"authorization":"Bearer «bearer»",'
     '"x-request-id":"«uuid»"},"status":401,"duration_ms":«number»}'),
    ("json-log-db", "en", "json-log", "US",
     '{"t":«epoch»,"msg":"db connect","dsn":"postgres://app:«password»@db.internal:5432/orders",'
     '"pid":4242,"version":"«version»"}'),
    ("json-log-tool", "en", "json-log", "DE",
     '{"tool":"send_sms","arguments":{"to":"«intl_phone»","text":"Ihr Code lautet 483920"},'
     '"call_id":"call_«span»","at":"«iso»"}'),
    ("json-log-ip6", "en", "json-log", "US",
     '{"ts":"«iso»","client":"«ipv6»","upstream":"«ipv4»:8443","sha256":"«sha256»","bytes":«number»}'),
    ("json-log-pem", "en", "json-log", "US",
     '{"ts":"«iso»","secret_dump":"«pem_json»","host":"worker-7","trace":"«trace»"}'),
    # --- Stack traces ------------------------------------------------------------------------------
    ("py-trace", "en", "stacktrace", "US",
     'Traceback (most recent call last):\n  File "/srv/app/billing.py", «line», in charge\n'
     '    stripe.Charge.create(api_key="«stripe»", amount=1299)\n  File "/srv/app/client.py", «line», in post\n'
     'stripe.error.CardError: card «card» declined (request «uuid») at «iso»'),
    ("py-trace-email", "en", "stacktrace", "US",
     'Traceback (most recent call last):\n  File "/app/users.py", «line», in invite\n'
     '    send_mail(to="«email»")\nsmtplib.SMTPRecipientsRefused: {\'«email»\': (550, b\'5.1.1 unknown\')}\n'
     'trace_id=«trace» ts=«epoch»'),
    ("java-trace", "en", "stacktrace", "US",
     'java.sql.SQLException: Access denied for user \'app\'@\'«ipv4»\' (using password: YES)\n'
     '\tat com.acme.db.Pool.connect(Pool.java:212)\n\tat com.acme.Main.main(«line»)\n'
     'Caused by: jdbc:mysql://app:«password»@«ipv4»:3306/shop?useSSL=true'),
    ("js-trace", "en", "stacktrace", "US",
     'TypeError: Cannot read properties of undefined (reading \'email\')\n    at renderProfile (app.js:88:13)\n'
     '    at «line»\nuser=«email» session=«uuid» build=«version» ts=«epoch_ms»'),
    # --- Emails ------------------------------------------------------------------------------------
    ("email-en", "en", "email", "US",
     "From: «name» <«email»>\nTo: support <«email»>\nDate: Tue, 11 Jun 2024 10:42:00 +0200\n"
     "Subject: Re: Order «order»\n\nHi,\nplease call me back at «phone». My card ending in the one "
     "below was charged: «card».\n\nBest,\n«name»\n-- \nSent from «ipv4»"),
    ("email-de", "de", "email", "DE",
     "Von: «name» <«email»>\nAn: ⟦email|kundenservice@acme.de⟧\nBetreff: Rückerstattung «order»\n\n"
     "Sehr geehrte Damen und Herren,\nbitte erstatten Sie «price» auf IBAN «iban».\nTel. «phone»\n"
     "Mit freundlichen Grüßen"),
    ("email-fr", "fr", "email", "FR",
     "De : «name» <«email»>\nObjet : Facture «order»\n\nBonjour,\nmon numéro a changé : «phone». "
     "Merci de mettre à jour mon dossier avant le «date».\nCordialement"),
    # --- CSV -----------------------------------------------------------------------------------------
    ("csv-customers", "en", "csv", "US",
     "id,name,email,phone,created_at,plan\n«uuid»,«name»,«email»,«phone»,«iso»,pro\n"
     "«uuid»,«name»,«email»,«phone»,«iso»,free"),
    ("csv-payments", "en", "csv", "US",
     "order,card,amount,ts\n«order»,«card»,«price»,«epoch»\n«order»,«card»,«price»,«epoch»"),
    ("csv-de", "de", "csv", "DE",
     "Kundennummer;Name;IBAN;Telefon;Datum\n«number»;«name»;«iban»;«phone»;«date»"),
    ("csv-hr", "en", "csv", "US",
     "employee_id,ssn,email,start_date\nE-«number»,«ssn»,«email»,«date»\nE-«number»,«ssn»,«email»,«date»"),
    # --- config / env / http / code --------------------------------------------------------------------
    ("env-file", "en", "config", "US",
     "# .env for staging, rev «sha1»\nOPENAI_API_KEY=«openai»\nANTHROPIC_API_KEY=«anthropic»\n"
     "GITHUB_TOKEN=«github»\nSLACK_BOT_TOKEN=«slack»\nDATABASE_URL=postgres://lookglass:«password»@⟦ip_address|10.0.3.7⟧:5432/lg\n"
     "LOOKGLASS_SECRET_KEY=«lg»\nRELEASE=«version»"),
    ("yaml-aws", "en", "config", "US",
     "aws:\n  region: eu-central-1\n  access_key_id: «aws_id»\n  secret_access_key: «aws_secret»\n"
     "  bucket: traces-«span»\nupdated: «iso»"),
    ("ini-aws", "en", "config", "US",
     "[default]\naws_access_key_id = «aws_id»\naws_secret_access_key = «aws_secret»\n# rotated «date»"),
    ("curl-cmd", "en", "http", "US",
     "curl -X POST https://api.example.com/v1/orders -H 'Authorization: Bearer «bearer»' "
     "-H 'Content-Type: application/json' -d '{\"order\": \"«order»\", \"qty\": 2}'"),
    ("http-request", "en", "http", "US",
     "POST /api/public/ingestion HTTP/1.1\nHost: lookglass.example.com\nAuthorization: Bearer «lg»\n"
     "X-Request-Id: «uuid»\nContent-Length: «number»"),
    ("slack-notify", "en", "config", "US",
     "notify:\n  slack_webhook: «slack_hook»\n  channel: '#alerts'\n  since: «iso»"),
    ("k8s-secret", "en", "config", "US",
     "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls-«span»\nstringData:\n  tls.key: |\n    «pem»\n"
     "  note: rotated «date»"),
    ("sql-insert", "en", "code", "US",
     "INSERT INTO customers (id, email, phone, iban, created_at) VALUES ('«uuid»', '«email»', '«phone»', "
     "'«iban»', '«iso»');"),
    ("python-code", "en", "code", "US",
     "client = OpenAI(api_key=\"«openai»\")  # TODO move to env, see «line»\n"
     "resp = client.chat.completions.create(model=\"gpt-4o-mini\", seed=«number»)"),
    ("logfmt", "en", "logfmt", "US",
     "time=«iso» level=info msg=\"webhook sent\" url=«slack_hook» status=200 dur=«number»ms trace=«trace»"),
    ("markdown-table", "en", "markdown", "US",
     "| Customer | Email | Phone | Card |\n|---|---|---|---|\n| «name» | «email» | «phone» | «card» |\n"
     "| «name» | «email» | «phone» | «card» |"),
    ("tool-args-json", "en", "tool-json", "US",
     '{"name":"create_ticket","arguments":"{\\"email\\":\\"«email»\\",\\"phone\\":\\"«phone»\\",'
     '\\"order\\":\\"«order»\\",\\"note\\":\\"card «card»\\"}"}'),
    ("tool-result-json", "en", "tool-json", "US",
     '{"customer":{"id":"«uuid»","email":"«email»","ssn":"«ssn»","ip":"«ipv4»"},"fetched_at":"«iso»"}'),
]

# Hand-written cases: edge cases and lookalikes written once.
HANDWRITTEN = [
    # --- lookalike negatives ---------------------------------------------------------------------
    ("neg-ids", "en", "log", "US",
     "request ⟪uuid|550e8400-e29b-41d4-a716-446655440000⟫ trace ⟪hex|4bf92f3577b34da6a3ce929d0e0e4736⟫ "
     "span ⟪hex|00f067aa0ba902b7⟫ parent ⟪hex|b7ad6b7169203331⟫ commit ⟪hex|9fceb02d0ae598e95dc970b74767f19372d61af8⟫"),
    ("neg-all-digit-uuid", "en", "log", "US",
     "id=⟪uuid|12345678-1234-5678-1234-567812345678⟫ other=⟪uuid|00000000-0000-0000-0000-000000000000⟫ "
     "trace=⟪hex|12345678901234567890123456789012⟫ span=⟪hex|0000000000000001⟫ parent=⟪hex|1234567890123456⟫"),
    ("neg-hashes", "en", "log", "US",
     "md5 ⟪hex|d41d8cd98f00b204e9800998ecf8427e⟫ sha1 ⟪hex|da39a3ee5e6b4b0d3255bfef95601890afd80709⟫ sha256 "
     "⟪hex|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855⟫"),
    ("neg-epochs", "en", "log", "US",
     "created=⟪epoch|1717171717⟫ updated_ms=⟪epoch|1717171717171⟫ exp: ⟪epoch|1893456000⟫ at ⟪epoch|1700000000000⟫ "
     "nbf ⟪epoch|1609459200⟫ seq ⟪number|4556997807150071⟫"),
    ("neg-iso", "en", "log", "US",
     "start ⟪iso|2024-01-15T12:30:45Z⟫ end ⟪iso|2024-01-15 12:31:02.481927+00:00⟫ day ⟪iso|2024-06-11⟫ "
     "window ⟪iso|2024-01-15 12⟫:00-13:00, due ⟪iso|15.01.2024⟫ or ⟪iso|01/15/2024⟫ or ⟪iso|2024/01/15⟫"),
    ("neg-versions", "en", "log", "US",
     "Upgraded from ⟪version|1.2.3⟫ to ⟪version|v2.0.1-rc1⟫; python ⟪version|3.11.7⟫, chrome ⟪version|Chrome/120.0.6099.109⟫, "
     "windows ⟪version|10.0.19045.3803⟫, lib ⟪version|v1.2.3.4⟫ and ⟪version|2024.06.10.1842⟫"),
    ("neg-orders", "en", "chat", "US",
     "Orders ⟪order|ORD-2024-000123⟫, ⟪order|INV 48213⟫, ⟪order|INV-2024-0042⟫, ⟪order|PO-2025-88123-01⟫ and "
     "ticket ⟪order|#4155552⟫; tracking ⟪order|1Z999AA10123456784⟫, ISBN ⟪order|978-3-16-148410-0⟫."),
    ("neg-prices", "en", "chat", "US",
     "It costs ⟪price|$1,299.00⟫ or ⟪price|12.50 EUR⟫ (⟪price|€1.299,00⟫, ⟪price|1 299,00 €⟫, ⟪price|¥128,000⟫); "
     "total ⟪price|USD 4,111,111.11⟫."),
    ("neg-lines", "en", "stacktrace", "US",
     "  File \"/app/main.py\", ⟪line|line 1234⟫, in run\n    at Foo.bar(⟪line|Foo.java:88⟫)\n"
     "    at ⟪line|webpack:///src/index.ts:4155:55⟫\n  ⟪line|main.go:2671⟫ +0x1d"),
    ("neg-numbers", "en", "chat", "US",
     "The population is ⟪number|8,336,817⟫, pi is ⟪number|3.14159265358979⟫, we processed ⟪number|1234567⟫ "
     "tokens in ⟪number|4155552671⟫ ns, max int ⟪number|2147483647⟫, ⟪number|12 345 678⟫ views."),
    ("neg-ip-like", "en", "config", "US",
     "bind ⟪ip|0.0.0.0⟫:8080 and ⟪ip|127.0.0.1⟫, ⟪ip|::1⟫ and ⟪ip|::⟫; not IPs: ⟪version|999.1.1.1⟫, "
     "⟪version|1.2.3.4.5⟫, time ⟪iso|12:30:45⟫, mac ⟦mac_address|00:1A:2B:3C:4D:5E⟧, ⟪number|std::vector⟫<int>, "
     "⟪number|a::b⟫"),
    ("neg-emails", "en", "code", "US",
     "Use ⟪number|icon@2x.png⟫ and ⟪number|logo@3x.webp⟫, mention ⟪number|@maria⟫, decorator ⟪number|@app.route⟫, "
     "local ⟪number|root@localhost⟫, npm ⟪number|@types/node@20.11.5⟫, ⟪number|pkg@1.2.3⟫."),
    ("neg-secret-words", "en", "chat", "US",
     "We use ⟪number|sk-learn⟫ and a ⟪number|risk-adjusted-return-on-capital-2024⟫ model; placeholder "
     "⟪number|sk-XXXXXXXXXXXXXXXXXXXXXXXX⟫; a bearer token is required; send Authorization: Bearer "
     "⟪number|<YOUR_API_KEY>⟫ or Bearer ⟪number|${OPENAI_API_KEY}⟫; xoxo, Anna; ghp_ prefix; eyJ alone."),
    ("neg-keys", "en", "config", "US",
     "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtest1234publickeymaterial==\n"
     "-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUcert==\n-----END CERTIFICATE-----"),
    ("neg-urls", "en", "chat", "US",
     "See https://example.com:8443/path?q=1, https://⟦email|user@example.com⟧/x (userinfo, no password), "
     "mailto:?subject=hi and https://hooks.example.com/services/abc."),
    ("neg-ssn-like", "en", "form", "US",
     "Invalid examples: ⟪number|000-12-3456⟫, ⟪number|666-12-3456⟫, ⟪number|912-34-5678⟫, ⟪number|123-00-4567⟫, "
     "⟪number|123-45-0000⟫, and undashed ⟪number|536904399⟫."),
    ("neg-card-like", "en", "log", "US",
     "Luhn-invalid ⟪number|4556997807150071⟫, no issuer ⟪number|1234567812345670⟫, ⟪number|9999999999999995⟫, "
     "epoch ⟪epoch|1717171717171⟫, gift card ⟪number|6006 4910 0000 0000⟫."),
    ("neg-iban-like", "de", "chat", "DE",
     "Ungültig: ⟪number|DE89370400440532013001⟫, ⟪number|GB29NWBK60161331926810⟫; USt-IdNr. ⟪number|DE123456789⟫; "
     "Paketnummer ⟪order|JD014600006541328402⟫."),
    ("neg-phone-like", "en", "chat", "US",
     "Zip ⟪number|94105-1234⟫, part ⟪number|123-456-7890⟫, range 10-12, scores 3-1 and 2-2, "
     "coordinates ⟪number|37.7749, -122.4194⟫, isbn ⟪order|0-306-40615-2⟫."),
    ("neg-ja", "ja", "chat", "JP",
     "注文番号⟪order|ORD-2024-000123⟫、価格⟪price|¥12,800⟫、日付⟪iso|2024年6月11日⟫、バージョン⟪version|v2.0.1⟫、"
     "リクエスト⟪uuid|9b2f3c1e-7d4a-4f5b-8c6d-1e2f3a4b5c6d⟫。"),
    ("neg-de", "de", "chat", "DE",
     "Der Preis beträgt ⟪price|1.299,00 €⟫ inkl. MwSt., Lieferung am ⟪iso|15.01.2024⟫, Artikelnummer "
     "⟪order|4006381333931⟫, Version ⟪version|10.4.12⟫."),
    # --- positives in tricky positions ---------------------------------------------------------------
    ("pos-email-unicode", "de", "email", "DE",
     "Antwort an ⟦email|jürgen.müller@web.de⟧ und ⟦email|Zoë.Brandt@münchen-test.de⟧ (cc ⟦email|ANNA.K@Example.COM⟧)."),
    ("pos-email-cjk", "ja", "chat", "JP",
     "連絡は⟦email|tanaka@example.co.jp⟧まで。携帯は⟦phone|090-1234-5678⟧です。"),
    ("pos-email-edges", "en", "chat", "US",
     "<⟦email|a.b-c+tag@sub.mail.example.org⟧>, (⟦email|x_y@example.io⟧), mailto:⟦email|info@acme.de⟧; "
     "\"⟦email|quoted@example.com⟧\"."),
    ("pos-phone-keyword", "en", "chat", "US",
     "call me at ⟦phone|4155552671⟧ or text ⟦phone|+14155552671⟧, whatsapp ⟦phone|+491712345678⟧"),
    ("pos-phone-fullwidth", "ja", "chat", "JP", "お電話は⟦phone|０９０－１２３４－５６７８⟧までお願いします。"),
    ("pos-phone-de", "de", "chat", "DE",
     "Telefon: ⟦phone|+49 (0)30 1234567⟧, Handy ⟦phone|01711234567⟧, Fax ⟦phone|030/1234567⟧"),
    ("pos-card-formats", "en", "chat", "US",
     "cards: ⟦credit_card|4111-1111-1111-1111⟧, ⟦credit_card|5555 5555 5555 4444⟧, ⟦credit_card|378282246310005⟧, "
     "⟦credit_card|3782 822463 10005⟧, ⟦credit_card|6011000990139424⟧ exp 12/26"),
    ("pos-card-expiry", "en", "chat", "US",
     "Card ⟦credit_card|4111 1111 1111 1111⟧ 12/27 CVC 123, and ⟦credit_card|4012888888881881⟧ 01/29."),
    ("pos-ssn", "en", "form", "US",
     "SSN: ⟦us_ssn|536-90-4399⟧; spouse ⟦us_ssn|219 45 8765⟧; dependant ⟦us_ssn|123-45-6789⟧."),
    ("pos-iban-formats", "en", "chat", "GB",
     "Pay to ⟦iban|GB29 NWBK 6016 1331 9268 19⟧ BIC NWBKGB2L, or ⟦iban|DE89370400440532013000⟧ "
     "(BIC COBADEFFXXX), or ⟦iban|FR14 2004 1010 0505 0001 3M02 606⟧."),
    ("pos-ip-forms", "en", "log", "US",
     "from ⟦ip_address|203.0.113.42⟧:51234 via ⟦ip_address|2001:db8::1⟧, cidr ⟦ip_address|198.51.100.0⟧/24 (not ⟪ip|10.0.0.0/8⟫), "
     "[⟦ip_address|2001:db8:85a3::8a2e:370:7334⟧]:443, mapped ⟦ip_address|::ffff:192.0.2.128⟧, end ⟦ip_address|198.51.100.7⟧."),
    ("pos-url-passwords", "en", "config", "US",
     "redis://:⟦url_password|s3cretRedis⟧@cache:6379/0 amqp://guest:⟦url_password|gu3st!⟧@mq.internal:5672 "
     "mongodb+srv://admin:⟦url_password|pa@ss:w0rd⟧@cluster0.example.net/db https://bob:⟦url_password|hunter2%21⟧@git.example.com/repo.git"),
    ("pos-bearer-forms", "en", "http", "US",
     "authorization: bearer ⟦bearer_token|abc123DEF456ghi789JKL⟧\nAuthorization: Bearer ⟦bearer_token|ya29.a0AfH6SMBx3kq9Zr8T⟧\n"
     "\"Authorization\": \"Bearer ⟦jwt|eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U⟧\"\n"
     "Authorization: Bearer ⟦lookglass_key|sk-lg-9aZqK3vT1pWmX8rYbN2cL5dH7fJ0sQ4uE6gR1tV9yBk⟧"),
    ("pos-secrets-glued", "en", "json-escaped", "US",
     "\"{\\\"k\\\":\\\"⟦openai_key|sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0⟧\\\",\\\"n\\\":\\\"x\\\\n⟦email|joe@example.com⟧\\\"}\""),
    ("pos-escaped-newlines", "en", "json-escaped", "US",
     "Line one\\n⟦credit_card|4111111111111111⟧\\n⟦iban|DE89370400440532013000⟧\\tTel.\\n⟦phone|+1 415 555 2671⟧\\n⟦ip_address|10.1.2.3⟧"),
    ("pos-pem-truncated", "en", "log", "US",
     "key dump: ⟦private_key|-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu⟧"),
    ("pos-pgp", "en", "email", "US",
     "⟦private_key|-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0abc123DEF\n=ab12\n-----END PGP PRIVATE KEY BLOCK-----⟧\nthanks"),
    ("pos-mixed-de", "de", "chat", "DE",
     "Kontodaten: ⟦iban|DE89 3704 0044 0532 0130 00⟧, Karte ⟦credit_card|5555555555554444⟧, "
     "Mail ⟦email|j.schmidt@web.de⟧, Tel. ⟦phone|0171 1234567⟧, Server ⟦ip_address|192.168.178.20⟧."),
    ("pos-mixed-fr", "fr", "chat", "FR",
     "Coordonnées : ⟦phone|06 12 34 56 78⟧, ⟦email|francois.dupont@orange.fr⟧, IBAN ⟦iban|FR1420041010050500013M02606⟧, "
     "commande ⟪order|ORD-2024-000777⟫ du ⟪iso|2024-05-02⟫."),
    ("pos-mixed-es", "es", "chat", "ES",
     "Llámame al ⟦phone|+34 612 34 56 78⟧ o escribe a ⟦email|carlos@yahoo.es⟧; cuenta ⟦iban|ES9121000418450200051332⟧."),
    ("pos-github-pat", "en", "config", "US",
     "token: ⟦github_token|github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab⟧"),
    ("pos-aws-json", "en", "json-log", "US",
     "{\"AccessKeyId\": \"⟦aws_access_key|ASIAY34FZKBOKMUTVV7A⟧\", \"SecretAccessKey\": \"⟦aws_secret_key|wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY⟧\", "
     "\"Expiration\": \"⟪iso|2024-06-11T12:00:00Z⟫\"}"),
    ("pos-stripe-all", "en", "config", "US",
     "STRIPE_SECRET=⟦stripe_key|sk_live_4eC39HqLyjWDarjtT1zdp7dc⟧ STRIPE_PUBLISHABLE=⟦stripe_key|pk_live_51HqLyjWDarjtT1zdp7dcAbCdEf⟧ "
     "RESTRICTED=⟦stripe_key|rk_live_51HqLyjWDarjtT1zdp7dcXyZ123⟧"),
]

# Realistic trace content full of lookalikes (model names, provider ids, ARNs, digests, metrics,
# code), written without looking at the detectors: anything found here that is not marked is a
# false positive.
REALISTIC = [
    ("real-openai-response", "en", "json-log", "US",
     '{"id":"chatcmpl-9aBcDeFgHiJkLmNoPqRsTuVwXyZ12","object":"chat.completion","created":⟪epoch|1717171717⟫,'
     '"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_44709d6fcb","usage":{"prompt_tokens":1234,'
     '"completion_tokens":567,"total_tokens":1801},"choices":[{"index":0,"finish_reason":"stop"}]}'),
    ("real-anthropic-response", "en", "json-log", "US",
     '{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","model":"claude-3-5-sonnet-20241022",'
     '"content":[{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather",'
     '"input":{"location":"San Francisco, CA"}}],"usage":{"input_tokens":2095,"output_tokens":503}}'),
    ("real-models", "en", "chat", "US",
     "Compare llama-3.1-70b-instruct, Qwen2.5-72B-Instruct, mistral-large-2407, gemini-1.5-pro-002, "
     "text-embedding-3-large (3072 dims) and o1-preview-2024-09-12 on MMLU 86.4 / 88.7 / 84.0."),
    ("real-aws-arn", "en", "log", "US",
     "AccessDenied: User arn:aws:iam::123456789012:user/ci-bot is not authorized to perform s3:GetObject on "
     "arn:aws:s3:::traces-prod-eu/2024/06/11/part-00017.parquet (RequestId ⟪hex|4442587FB7D0A2F9⟫)"),
    ("real-docker", "en", "log", "US",
     "Pulling ghcr.io/acme/lookglass:v0.14.2@sha256:⟪hex|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855⟫ "
     "… Digest verified, 12 layers, 847.3MB, took 00:01:23.456"),
    ("real-k8s", "en", "log", "US",
     "Warning  BackOff  3m12s (x41 over 12m)  kubelet  Back-off restarting failed container api in pod "
     "api-7d9f8b6c5-x2k9p_prod(⟪uuid|8f14e45f-ceea-467a-9575-4e7f0c2ab3d1⟫) node ip-10-0-12-34.eu-west-1.compute.internal"),
    ("real-nginx", "en", "log", "US",
     '⟦ip_address|66.249.66.1⟧ - - [11/Jun/2024:10:42:01 +0200] "GET /api/v1/traces?limit=50&page=3 HTTP/2.0" 200 18342 '
     '"-" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/125.0.6422.112 Safari/537.36" rt=0.042'),
    ("real-python-log", "en", "log", "US",
     "2024-06-11 10:42:00,123 INFO [celery.worker] Task traces.tasks.rollup[⟪uuid|b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e⟫] "
     "succeeded in 0.8123s: {'rows': 182734, 'partitions': 12, 'lag_ms': 4155}"),
    ("real-sql", "en", "code", "US",
     "EXPLAIN ANALYZE SELECT project_id, count(*) FROM observations WHERE start_time >= '2024-06-01' "
     "GROUP BY 1; -- Seq Scan (cost=0.00..18334.12 rows=834512 width=16) (actual time=0.012..221.834 rows=833921 loops=1)"),
    ("real-cpp-rust", "en", "code", "US",
     "std::vector<int> v; auto it = std::find(v.begin(), v.end(), 42); use std::collections::HashMap; "
     "impl<T: Clone + 'static> Foo<T> { fn new() -> Self { Self { a: 0x7fff_ffff, b: 1_000_000 } } }"),
    ("real-metrics", "en", "chat", "US",
     "Latency p50 212 ms, p95 1,843 ms, p99 4,155 ms over 1,234,567 requests; cost $0.00123 per call, "
     "$1,518.24 total; 99.95% availability; error budget 21.6 min/month."),
    ("real-math", "en", "chat", "US",
     "Solve 3x + 7 = 22. Then compute 123456789 × 987654321 = 121932631112635269 and 2^64 = 18446744073709551616; "
     "π ≈ 3.14159 26535 89793, e ≈ 2.71828 18284 59045."),
    ("real-chemistry", "en", "chat", "US",
     "Water is CAS 7732-18-5, ethanol CAS 64-17-5, caffeine 58-08-2; molar mass 194.19 g/mol; "
     "Avogadro 6.02214076e23 mol⁻¹; pH 7.4 at 37 °C."),
    ("real-git", "en", "log", "US",
     "commit ⟪hex|9fceb02d0ae598e95dc970b74767f19372d61af8⟫\nAuthor: CI Bot <⟦email|ci-bot@acme-corp.io⟧>\n"
     "Date:   Tue Jun 11 10:42:00 2024 +0200\n\n    Bump version to 0.14.2 (#4821)\n\n 3 files changed, 41 insertions(+), 12 deletions(-)"),
    ("real-base64", "en", "log", "US",
     "payload=eyBcInJvbGVcIjogXCJ1c2VyXCIgfQ== chunk=aGVsbG8gd29ybGQgMTIzNDU2Nzg5MA== "
     "sig=MEUCIQD7x9kL3nZ2fQ1vYw8pR4sT6uV0wX2yZ4aB6cD8eF0gHAIgK3mN5pQ7rS9tU1vW3xY5zA7bC9dE1fG3hI5jK7lM9nO="),
    ("real-uk", "en", "chat", "GB",
     "Our office is at 10 Downing St, London SW1A 2AA; sort code 20-00-00, account 12345678, VAT GB123456789, "
     "company no. 01234567."),
    ("real-de-address", "de", "chat", "DE",
     "Lieferadresse: Musterstraße 12, 10115 Berlin. Steuernummer 21/815/08150, Kundennummer 4711-0815, "
     "Rechnung vom ⟪iso|11.06.2024⟫ über ⟪price|1.234,56 €⟫."),
    ("real-fr-address", "fr", "chat", "FR",
     "Adresse : 12 rue de Rivoli, 75001 Paris. SIRET 732 829 320 00074, TVA FR40303265045, "
     "commande passée le ⟪iso|11/06/2024⟫ à 10h42."),
    ("real-ja-business", "ja", "chat", "JP",
     "〒100-0005 東京都千代田区丸の内1-9-1。法人番号 1234567890123、注文日 ⟪iso|2024-06-11⟫、数量 12、合計 ⟪price|¥128,000⟫（税込）。"),
    ("real-es-invoice", "es", "chat", "ES",
     "Factura F-2024/000123 con fecha ⟪iso|11/06/2024⟫, NIF B12345678, importe ⟪price|1.299,00 €⟫, "
     "código postal 28013 Madrid."),
    ("real-stack-node", "en", "stacktrace", "US",
     "Error: connect ECONNREFUSED ⟪ip|127.0.0.1⟫:5432\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)\n"
     "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5) {\n  errno: -111, code: 'ECONNREFUSED'\n}"),
    ("real-go-panic", "en", "stacktrace", "US",
     "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 17 [running]:\nmain.handler(0xc0000b4000, 0x1d)\n"
     "\t/src/app/main.go:88 +0x1d5\ncreated by net/http.(*Server).Serve in goroutine 1\n\t/usr/local/go/src/net/http/server.go:3285 +0x4b4"),
    ("real-java-oom", "en", "stacktrace", "US",
     "java.lang.OutOfMemoryError: Java heap space\n\tat java.base/java.util.Arrays.copyOf(Arrays.java:3512)\n"
     "\tat com.acme.ingest.Batch.add(Batch.java:142)\nHeap: 2048M used of 2048M, GC 1834 ms, pid 41553, thread 0x00007f3a2c01b000"),
    ("real-csv-sensors", "en", "csv", "US",
     "sensor_id,ts,temp_c,humidity,lat,lon\nS-00042,⟪epoch|1717171717⟫,21.4,0.43,52.5200066,13.4049540\n"
     "S-00043,⟪epoch|1717171777⟫,21.6,0.44,48.8566140,2.3522219"),
    ("real-tickets", "en", "chat", "US",
     "Flight LH 454 on 2024-06-11, booking ref X7K2QP, ticket 220-1234567890, seat 32A; hotel confirmation "
     "84920173 for 2 nights; train IC 2214 coach 7."),
    ("real-semver", "en", "code", "US",
     '"dependencies": {"react": "^18.3.1", "next": "~14.2.4", "typescript": ">=5.4.5 <6.0.0", '
     '"@types/node": "20.14.2", "left-pad": "1.3.0"}'),
    ("real-http-dates", "en", "http", "US",
     "HTTP/1.1 429 Too Many Requests\nDate: Tue, 11 Jun 2024 10:42:00 GMT\nRetry-After: 30\n"
     "X-RateLimit-Reset: ⟪epoch|1718102550⟫\nETag: W/\"5e-18f0a3b7c2d\"\nContent-Length: 94"),
    ("real-ipv6-code", "en", "code", "US",
     "if addr == \"::\" || addr == \"::1\" { return nil } // TODO: handle fe80::/10 link-local; "
     "see RFC 4291 §2.5.5.2 and the Foo::Bar::baz() helper"),
    ("real-secrets-in-prose", "en", "chat", "US",
     "The docs say to set the key as sk-... in your environment, then call client.chat(). Keys look like "
     "sk-proj-… and never start with pk-. Slack tokens start with xoxb- and GitHub with ghp_."),
    ("real-pii-support", "en", "chat", "US",
     "Customer ⟦email|dana.whitfield@protonmail.com⟧ (tel. ⟦phone|(303) 555-0142⟧) reports order ⟪order|ORD-2024-004217⟫ "
     "arrived damaged on ⟪iso|2024-06-08⟫; refund ⟪price|$89.99⟫ to card ending 4242."),
    ("real-pii-de-support", "de", "email", "DE",
     "Sehr geehrter Herr Weber,\nvielen Dank für Ihre Nachricht vom ⟪iso|10.06.2024⟫. Wir haben die Gutschrift über "
     "⟪price|49,90 €⟫ auf Ihr Konto ⟦iban|DE02120300000000202051⟧ veranlasst. Bei Fragen erreichen Sie uns unter "
     "⟦phone|030 1234567⟧ (Mo–Fr 8–18 Uhr).\nMit freundlichen Grüßen\nIhr Kundenservice"),
    ("real-pii-jp-support", "ja", "email", "JP",
     "山田様\nお問い合わせありがとうございます。ご登録のメールアドレス⟦email|yamada.taro@example.ne.jp⟧宛に"
     "確認メールを送信しました。お急ぎの場合は⟦phone|03-1234-5678⟧（平日9時〜18時）までお電話ください。"),
]

# More secrets in more shapes, so each vendor detector is measured on enough cases.
SECRET_TEMPLATES = [
    ("sec-env-export", "en", "config", "US",
     "export OPENAI_API_KEY=«openai»\nexport ANTHROPIC_API_KEY=«anthropic»\nexport GH_TOKEN=«github»"),
    ("sec-json-config", "en", "json-log", "US",
     '{"slack":{"token":"«slack»","webhook":"«slack_hook»"},"stripe":"«stripe»","jwt":"«jwt»"}'),
    ("sec-chat-paste", "en", "chat", "US",
     "oops, I pasted my token «slack» in the channel, and the webhook «slack_hook» too. Rotate please! Also «jwt»"),
    ("sec-docker-run", "en", "code", "US",
     "docker run -e AWS_ACCESS_KEY_ID=«aws_id» -e AWS_SECRET_ACCESS_KEY=«aws_secret» -e STRIPE_KEY=«stripe» acme/app:«version»"),
    ("sec-python-headers", "en", "code", "US",
     'headers = {"Authorization": f"Bearer «bearer»", "x-api-key": "«anthropic»", "X-Trace": "«trace»"}'),
    ("sec-de-chat", "de", "chat", "DE",
     "Mein Token für die API ist «openai», und das Lookglass-Secret «lg». Funktioniert seit «date» nicht."),
    ("sec-jwt-cookie", "en", "http", "US",
     "Set-Cookie: session=«jwt»; Path=/; HttpOnly; Secure; Max-Age=3600\nX-Request-Id: «uuid»"),
]

GENERATED_PER_TEMPLATE = 5
SEED = 4242

# Identifiers and contextual detectors of privacy/identifiers.py, in their own module.
from tests.data.redaction_corpus_eu import eu_cases  # noqa: E402


def build_cases() -> list[Case]:
    cases = [parse(cid, lang, fmt, markup, region) for cid, lang, fmt, region, markup in HANDWRITTEN + REALISTIC]
    v = Values(SEED)
    for cid, lang, fmt, region, template in TEMPLATES + SECRET_TEMPLATES:
        for k in range(GENERATED_PER_TEMPLATE):
            cases.append(parse(f"{cid}-{k}", lang, fmt, _fill(template, v, region), region))
    return cases


CASES = build_cases() + eu_cases()


def as_jsonl() -> str:
    """The corpus as JSON lines (id, lang, format, region, text, spans, keep), for other tools."""
    return "\n".join(
        json.dumps({"id": c.id, "lang": c.lang, "format": c.fmt, "region": c.region, "text": c.text,
                    "spans": [{"start": s, "end": e, "detector": d} for s, e, d in c.spans],
                    "keep": [{"start": s, "end": e, "kind": k} for s, e, k in c.keep]}, ensure_ascii=False)
        for c in CASES
    )
