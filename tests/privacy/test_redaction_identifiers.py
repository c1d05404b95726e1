"""The detectors that reach further (privacy/identifiers.py): EU national identifiers, passport numbers
and dates of birth in context, MAC addresses, credentials in free text, obfuscated and escaped e-mail
addresses — what each finds, what it leaves alone, how the policy turns each one off or to
pseudonyms (engine, API and console), that the JSON walk still never touches keys, ids, timestamps
or numbers, and that hostile input stays linear. Precision and recall: tests/privacy/test_redaction_corpus.py."""

from __future__ import annotations

import gc
import time
from collections import Counter

import orjson
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from privacy.detectors import DETECTORS
from privacy.engine import OBSERVATION_FIELDS, Redactor
from privacy.models import RedactionPolicy
from privacy.services import redaction_policy_update
from tenancy.models import Role

NEW_DETECTORS = (
    "credential", "email_obfuscated", "de_tax_id", "fr_nir", "es_dni_nie", "it_codice_fiscale", "uk_nino", "nl_bsn",
    "pl_pesel", "passport", "date_of_birth", "mac_address",
)


def redact(text: str, region: str = "DE", **modes) -> str:
    return Redactor(modes=modes, phone_region=region, key=b"k" * 32).redact_text(text)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Meine Steuer-ID ist 36574261809.", "Meine Steuer-ID ist [DE_TAX_ID]."),
        ("Steuerliche Identifikationsnummer: 36 574 261 809", "Steuerliche Identifikationsnummer: [DE_TAX_ID]"),
        ("N° de sécurité sociale : 184127645108946", "N° de sécurité sociale : [FR_NIR]"),
        ("NIR 1 84 12 76 451 089 46", "NIR [FR_NIR]"),
        ("DNI 12345678Z, NIE X2482300W, 12.345.678-Z", "DNI [ES_DNI_NIE], NIE [ES_DNI_NIE], [ES_DNI_NIE]"),
        ("codice fiscale RCCMNL83S18D969H", "codice fiscale [IT_CODICE_FISCALE]"),
        ("NI number AB 12 34 56 C", "NI number [UK_NINO]"),
        ("Mijn BSN is 111222333.", "Mijn BSN is [NL_BSN]."),
        ("PESEL: 44051401359", "PESEL: [PL_PESEL]"),
        ("Reisepassnummer: C01X00T47", "Reisepassnummer: [PASSPORT]"),
        ("numéro de passeport 12AB34567", "numéro de passeport [PASSPORT]"),
        ("geboren am 14.03.1985 in Ulm", "geboren am [DATE_OF_BIRTH] in Ulm"),
        ("fecha de nacimiento: 7 de julio de 1971", "fecha de nacimiento: [DATE_OF_BIRTH]"),
        ("DOB 03/14/1985", "DOB [DATE_OF_BIRTH]"),
        ("lease to 00:1a:2b:3c:4d:5e on eth0", "lease to [MAC_ADDRESS] on eth0"),
        ("password=hunter2 api_key: abcd1234efgh5678", "password=[CREDENTIAL] api_key: [CREDENTIAL]"),
        ("Server=sql;User Id=sa;Password=Secr3t!;Encrypt=True", "Server=sql;User Id=sa;Password=[CREDENTIAL];Encrypt=True"),
        ("mongodb+srv://svc:p4ss@cluster0.ab1cd.mongodb.net/app", "mongodb+srv://svc:[PASSWORD]@cluster0.ab1cd.mongodb.net/app"),
        ("write to jan dot kowalski at wp dot pl", "write to [EMAIL]"),
        ("info [at] example [dot] com, bob(at)firma.de", "[EMAIL], [EMAIL]"),
        ('{"to":"maria\\u0040example.org"}', '{"to":"[EMAIL]"}'),
    ],
)
def test_each_new_detector_finds_its_format(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Steuer-ID 36574261808",  # wrong check digit
        "Bestellnummer 36574261809",  # a valid IdNr that nothing names: an order number
        "BSN 111222334, klantnummer 111222333",
        "PESEL 44051401358",
        "NIR 1 84 12 76 451 089 47",
        "DNI 12345678A, NIE X2482300A",
        "codice fiscale RCCMNL83S18D969A",
        "QQ 12 34 56 C is the leaflet's example, TN123456A is not issued, SKU-AB123456C",
        "created 2024-06-11T10:00:00Z, born 2024-06-11T10:00:00Z, deploy 1985-03-12, born to run",
        "passport photo 35x45 mm, the passport expires 2031-05-01, passport-jwt 4.0.1",
        "fingerprint 16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48, mdns 01:00:5e:00:00:fb, "
        "ff:ff:ff:ff:ff:ff, 00:00:00:00:00:00, build 2024.0610.1842",
        "password: ******** api_key: ${OPENAI_API_KEY} token: expired max_tokens: 1024 (using password: YES)",
        "look at this dot com bubble; see you at 5 pm",
        "password: !vault | secret: ${{ secrets.API_TOKEN }} password: \"{{ db_password }}\"",
        'password = os.environ["DB_PASSWORD"]; password = getpass(); api_key=settings.OPENAI_API_KEY; '
        "login(user=user, password=new_password); token = jwt.encode(payload); Password: Please enter it twice",
    ],
)
def test_lookalikes_stay_untouched(text):
    assert redact(text) == text


def test_each_new_detector_has_a_policy_key_and_a_distinct_label():
    assert set(NEW_DETECTORS) <= set(DETECTORS)
    labels = Counter(DETECTORS[name].label for name in NEW_DETECTORS)
    # Obfuscated addresses are addresses: same label, and (below) the same pseudonym as the plain form.
    assert labels["EMAIL"] == 1 and all(n == 1 for n in labels.values())


def test_every_new_detector_can_be_turned_off_alone():
    text = ("Steuer-ID 36574261809, NIR 1 84 12 76 451 089 46, DNI 12345678Z, CF RCCMNL83S18D969H, "
            "NINO AB 12 34 56 C, BSN 111222333, PESEL 44051401359, passport C01X00T47, born 14 March 1985, "
            "MAC 00:1a:2b:3c:4d:5e, password=hunter2, jan [at] example [dot] com")
    everything = Redactor(modes={}).find(text)
    assert {f.detector for f in everything} == set(NEW_DETECTORS)
    for name in NEW_DETECTORS:
        found = {f.detector for f in Redactor(modes={name: "off"}).find(text)}
        assert found == set(NEW_DETECTORS) - {name}, name


def test_an_obfuscated_or_escaped_address_gets_the_pseudonym_of_the_plain_one():
    redactor = Redactor(modes={n: "pseudonymize" for n in DETECTORS}, key=b"k" * 32)
    plain, _ = redactor.redact_text("maria.lopez@example.org")
    obfuscated, _ = redactor.redact_text("maria dot lopez at example dot org")
    escaped, _ = redactor.redact_text("maria.lopez\\u0040example.org")
    assert plain == obfuscated == escaped and plain.startswith("[EMAIL:")


def test_the_walk_never_touches_keys_ids_timestamps_or_numbers():
    record = {
        "id": "4bf92f3577b34da6",
        "input": [{"role": "user", "content": "My PESEL is 44051401359, born 14.05.1944, password=hunter2"}],
        "output": {"text": "Noted your MAC 00:1a:2b:3c:4d:5e and passport C01X00T47."},
        "metadata": {
            "born": "1985-03-12",  # a key that is a keyword: the key stays, its date is not after one
            "dob": 19850312,  # a number stays a number
            "pesel": 44051401359,
            "created_at": "2024-06-11T10:00:00Z",
            "request_id": "550e8400-e29b-41d4-a716-446655440000",
            "mac": "00:1a:2b:3c:4d:5e",
            "note": "DOB: 1985-03-12",
        },
    }
    Redactor(modes={}).redact_record(record, OBSERVATION_FIELDS)
    assert record["input"][0]["content"] == "My PESEL is [PL_PESEL], born [DATE_OF_BIRTH], password=[CREDENTIAL]"
    assert record["output"] == {"text": "Noted your MAC [MAC_ADDRESS] and passport [PASSPORT]."}
    meta = record["metadata"]
    assert list(meta) == ["born", "dob", "pesel", "created_at", "request_id", "mac", "note"]
    assert meta["dob"] == 19850312 and meta["pesel"] == 44051401359
    assert meta["born"] == "1985-03-12" and meta["created_at"] == "2024-06-11T10:00:00Z"
    assert meta["request_id"] == "550e8400-e29b-41d4-a716-446655440000"
    assert meta["mac"] == "[MAC_ADDRESS]" and meta["note"] == "DOB: [DATE_OF_BIRTH]"


def test_json_inside_a_string_stays_valid_json():
    arguments = orjson.dumps({"password": "hunter2", "dob": "date of birth 1985-03-12", "n": 3}).decode()
    redacted, counts = Redactor(modes={}).redact_text(arguments)
    assert orjson.loads(redacted) == {"password": "[CREDENTIAL]", "dob": "date of birth [DATE_OF_BIRTH]", "n": 3}
    assert counts == {"credential": 1, "date_of_birth": 1}


@pytest.mark.parametrize(
    "unit",
    ["password=", "password=x ", "token: ", "born ", "DOB 1.1.1990 ", "passport ", "passport A1 ", "aa:",
     ":aa:bb:cc:", "a at b dot ", "a [at] ", "12345678Z ", "BSN 111222333 ", "RSSMRA85T10A562 ", "AB 12 34 56 ",
     "x\\u0040", "Steuer-ID 3657426180 "],
)
def test_hostile_repetitions_stay_linear(unit):
    redactor = Redactor(modes={})

    def cpu(n: int) -> float:
        """Best of three, with the garbage collector off: in a full test run its passes over the
        whole heap land on whichever call allocates past the threshold, not on the slow one."""
        text = unit * (n // len(unit))
        best = float("inf")
        gc.disable()
        try:
            for _ in range(3):
                t0 = time.process_time()
                redactor.redact_text(text)
                best = min(best, time.process_time() - t0)
        finally:
            gc.enable()
        return best

    small, large = cpu(25_000), cpu(100_000)
    # CPU time of this process, so other load barely counts; quadratic would be ~16x.
    assert large < 2.0, f"{unit!r}: {large:.2f}s for 100 KB"
    assert large < 10 * max(small, 0.002), f"{unit!r}: {small:.3f}s for 25 KB, {large:.3f}s for 100 KB"


# --- API and console ---------------------------------------------------------------------------------


def policy_url(organization, project):
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/redaction-policy"


def redact_url(organization, project):
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/redact"


def test_the_policy_api_lists_and_sets_the_new_detectors(organization, project, member_of):
    client = APIClient()
    client.force_login(member_of(organization, Role.ADMIN))
    body = client.get(policy_url(organization, project)).json()
    assert set(body["effective_modes"]) == set(DETECTORS) and body["effective_modes"]["date_of_birth"] == "mask"

    changed = client.patch(
        policy_url(organization, project),
        {"detector_modes": {"date_of_birth": "off", "mac_address": "pseudonymize"}},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    modes = changed.json()["effective_modes"]
    assert (modes["date_of_birth"], modes["mac_address"], modes["passport"]) == ("off", "pseudonymize", "mask")

    text = "born 14 March 1985, MAC 00:1a:2b:3c:4d:5e, passport C01X00T47"
    out = client.post(redact_url(organization, project), {"text": text}, format="json").json()
    assert out["text"].startswith("born 14 March 1985, MAC [MAC_ADDRESS:") and out["text"].endswith("passport [PASSPORT]")
    assert out["counts"] == {"mac_address": 1, "passport": 1}

    bad = client.patch(policy_url(organization, project), {"detector_modes": {"passport_no": "off"}}, format="json")
    assert bad.status_code == 400 and "passport_no" in str(bad.json())


def test_the_console_shows_and_saves_a_mode_for_every_new_detector(client, organization, project, owner):
    redaction_policy_update(project=project, actor=owner)
    policy = RedactionPolicy.objects.get(project=project)
    client.force_login(owner)
    change_url = reverse("admin:privacy_redactionpolicy_change", args=[policy.pk])
    page = client.get(change_url).content.decode()
    assert all(f'name="mode_{name}"' in page for name in NEW_DETECTORS)
    form = {"default_mode": "mask", "phone_default_region": "US", "custom_patterns": "[]", "enabled": "on",
            **{f"mode_{name}": "" for name in DETECTORS}, "mode_credential": "pseudonymize", "mode_uk_nino": "off"}
    assert client.post(change_url, form).status_code == 302
    policy.refresh_from_db()
    assert policy.detector_modes == {"credential": "pseudonymize", "uk_nino": "off"}


def test_no_finding_crosses_from_one_string_of_a_record_into_the_next():
    """`find_many` scans a record's strings joined by NUL: a keyword at the end of one string must not
    name, or run into, a value at the start of the next."""
    from tests.data.redaction_corpus import CASES

    redactor = Redactor(modes={})
    texts = [c.text for c in CASES] + ["password=", "hunter2", "BSN", "111222333", "born", "14.03.1985",
                                       "passport", "C01X00T47", "Steuer-ID:", "36574261809"]
    alone = [redactor.find(t) for t in texts]
    assert redactor.find_many(texts) == alone
    assert alone[-9:] == [[]] * 9 and redactor.find_many(["password=hunter2", "x" * 8]) == [
        redactor.find("password=hunter2"), []]


@pytest.mark.parametrize("name", NEW_DETECTORS)
def test_every_new_detector_works_alone(name):
    """Each on its own: the trigger scan then runs without the number candidates (or without the
    other families), which changes which trigger a DNI or a digits-first MAC is found from."""
    text = ("Steuer-ID 36574261809, NIR 1 84 12 76 451 089 46, DNI 12345678Z, CF RCCMNL83S18D969H, "
            "NINO AB123456C, BSN 111222333, PESEL 44051401359, passport C01X00T47, born 14 March 1985, "
            "MAC 0050.5699.84a2, password=hunter2, jan [at] example [dot] com")
    alone = Redactor(modes={n: ("mask" if n == name else "off") for n in DETECTORS}).find(text)
    assert [f.detector for f in alone] == [name]


@pytest.mark.parametrize("key", ["mot de passe", "contraseña", "wachtwoord", "secret_key", "Passwort", "pwd"])
def test_a_credential_keyword_hit_is_skipped_only_when_no_separator_can_follow(key):
    """`find_credentials` does not run its pattern at a keyword hit with no `:` or `=` close enough
    to belong to it (`password` in prose). Close enough is the longest key the pattern accepts, an
    escaped quote and three blanks: the bound must keep up with the pattern."""
    import re._parser

    from privacy import identifiers as ids

    assert re._parser.parse(ids._CREDENTIAL_KEY).getwidth()[1] <= ids._CREDENTIAL_KEY_WIDTH
    farthest = f'{key}\\"   =s3cr3tV4lue'
    seeded, everywhere = [], []
    ids.find_credentials(farthest, [0], seeded)
    ids.find_credentials(farthest, None, everywhere)
    assert [(f.start, f.end, f.value) for f in seeded] == [(f.start, f.end, f.value) for f in everywhere]
    assert [f.value for f in seeded] == ["s3cr3tV4lue"]
    prose = f"Reset the {key} would take a while, {key}: hunter2"
    assert [f.value for f in Redactor(modes={}).find(prose) if f.detector == "credential"] == ["hunter2"]
