"""The console in a real browser: headless Chromium driven by Selenium against `live_server`.

Debian's `chromium` and `chromium-driver` are installed by the `browser` fixture when missing; if
that is impossible the tests fail with the reason (they are never skipped silently). Set
CONSOLE_SCREENSHOTS=<dir> to keep a 1440 px screenshot of every page visited.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from ingest.services import ingest_langfuse_batch
from scores.models import Score
from tenancy.admin_site import REFRESH_SECONDS
from tenancy.models import Role
from tests.console.support import llm_call, thumbs

PASSWORD = "correct horse battery staple"
WAIT_SECONDS = 15


def _detached(element):
    """`EC.staleness_of`, also when chromedriver reports the node removed mid-check as "does not
    belong to the document" instead of a stale reference (seen once in a full `make test`)."""

    def check(driver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    return check


def _install_chromium() -> None:
    if shutil.which("chromedriver") and (shutil.which("chromium") or shutil.which("chromium-browser")):
        return
    # Under `make test`'s xdist workers two may get here at once: the second waits for dpkg's lock.
    commands = [["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600",
                 "chromium", "chromium-driver"]]
    if os.geteuid() != 0:
        commands = [["sudo", "-n", *c] for c in commands]
    for command in commands:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"The console's browser tests need Debian's chromium and chromium-driver; installing "
                        f"them failed ({exc}). Install them with: apt-get install -y chromium chromium-driver")
        if result.returncode != 0:
            pytest.fail(f"The console's browser tests need Debian's chromium and chromium-driver; "
                        f"`{' '.join(command)}` failed:\n{result.stderr[-2000:]}")
    if not shutil.which("chromedriver"):
        pytest.fail("chromium-driver was installed but `chromedriver` is not on PATH")


@pytest.fixture(scope="session")
def browser():
    _install_chromium()
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1440,900", "--lang=en-US"):
        options.add_argument(argument)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


class Console:
    def __init__(self, driver, base_url: str):
        self.driver, self.base = driver, base_url
        self.shots = Path(os.environ["CONSOLE_SCREENSHOTS"]) if os.environ.get("CONSOLE_SCREENSHOTS") else None
        driver.delete_all_cookies()
        driver.get_log("browser")  # drop what earlier tests left

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def wait_text(self, text: str) -> str:
        """The page's source once it holds `text`; a page right after a navigation may still read
        empty (seen once in CI on a 404 page after a form's redirect)."""
        WebDriverWait(self.driver, WAIT_SECONDS).until(lambda driver: text in driver.page_source)
        return self.driver.page_source

    def wait(self, css: str):
        return WebDriverWait(self.driver, WAIT_SECONDS).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))

    def shot(self, name: str) -> None:
        if self.shots:
            self.shots.mkdir(parents=True, exist_ok=True)
            height = self.driver.execute_script("return document.body.scrollHeight")
            self.driver.set_window_size(1440, max(900, min(height, 4000)))
            self.driver.save_screenshot(str(self.shots / f"{name}.png"))
            self.driver.set_window_size(1440, 900)

    def problems(self) -> list[str]:
        """Errors the page logged: failed scripts, CSP refusals, missing assets."""
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    def sign_in(self, user, next_path: str) -> None:
        self.open(f"/admin/login/?next={quote(next_path)}")
        self.driver.find_element(By.NAME, "username").send_keys(user.email)
        self.driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        self.driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
        WebDriverWait(self.driver, WAIT_SECONDS).until(lambda d: "/admin/login/" not in d.current_url)
        # The sign-in page is the admin's; it too loads cleanly (its icon is our own static file).
        assert self.problems() == []


@pytest.fixture
def console(browser, live_server):
    return Console(browser, live_server.url)


def test_find_judge_and_follow_a_conversation(console, organization, member_of, project, other_project, api_key):
    llm_call(project, "t-1", question="Where is the Eiffel tower?", answer="It stands in Paris, France.",
             user_id="alice", session_id="conv-7", tags=["geo"])
    llm_call(project, "t-2", question="How tall is it?", answer="About 330 metres.", user_id="alice",
             session_id="conv-7", status="error")
    llm_call(project, "t-3", question="Unrelated?", answer="Something else entirely.", user_id="bob")
    thumbs(project, "t-2", up=False)
    llm_call(other_project, "secret-trace", question="q", answer="classified answer")
    user = member_of(organization, Role.MEMBER)

    # Sign in from the console address and land on the project home.
    console.sign_in(user, "/console/")
    console.wait("#lg-today")
    assert console.driver.find_element(By.ID, "lg-calls").text == "3"
    console.shot("home")

    # Search a word of an answer (the second turn's answer is only on its generation).
    console.driver.find_element(By.LINK_TEXT, "Traces").click()
    console.wait("#lg-search input[name=q]").send_keys("metres\n")
    console.wait("#lg-results .lg-result")
    rows = console.driver.find_elements(By.CSS_SELECTOR, "#lg-results .lg-result")
    assert [r.get_attribute("data-trace-id") for r in rows] == ["t-2"]
    assert console.driver.find_element(By.ID, "lg-count").text == "1 trace"
    # Times are shown in the viewer's zone (no "UTC" suffix once the script ran).
    assert "UTC" not in rows[0].find_element(By.CSS_SELECTOR, "time").text
    console.shot("traces")

    # Open it and add a score.
    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    console.wait("#lg-observations")
    console.shot("trace")
    form = console.driver.find_element(By.ID, "lg-score-form")
    if not form.is_displayed():
        console.driver.find_element(By.CSS_SELECTOR, ".lg-add-score summary").click()
    form.find_element(By.NAME, "name").send_keys("accuracy")
    form.find_element(By.NAME, "value").send_keys("0.25")
    form.find_element(By.NAME, "comment").send_keys("too vague")
    form.find_element(By.CSS_SELECTOR, "[type=submit]").click()
    console.wait(".lg-messages")
    chips = [c.text for c in console.driver.find_elements(By.CSS_SELECTOR, "#scores .lg-score")]
    assert any(c.startswith("accuracy 0.25") for c in chips), chips
    score = Score.objects.for_project(project).get(name="accuracy")
    assert (score.trace_id, score.value, score.comment) == ("t-2", 0.25, "too vague")

    # The tree folds: the generation under the trace has no children here, so no toggle is shown.
    assert not console.driver.find_elements(By.CSS_SELECTOR, ".lg-toggle:not([hidden])")

    # Follow the conversation.
    console.driver.find_element(By.ID, "lg-session-link").click()
    transcript = console.wait("#lg-transcript")
    text = transcript.text
    assert text.index("Where is the Eiffel tower?") < text.index("How tall is it?")
    console.shot("session")

    console.driver.find_element(By.LINK_TEXT, "Users").click()
    console.wait("#lg-users")
    console.shot("users")
    console.driver.find_element(By.LINK_TEXT, "Sessions").click()
    console.wait("#lg-sessions")
    console.shot("sessions")

    assert console.problems() == []

    # Another organization's trace, by its console address and by the SDK link: not found.
    console.open(f"/console/p/{other_project.id}/traces/secret-trace/")
    assert "Not Found" in console.wait_text("Not Found")
    console.open("/trace/secret-trace")
    assert "Not Found" in console.wait_text("Not Found")
    assert "classified" not in console.driver.page_source


def test_the_project_switcher_and_the_column_picker(console, organization, member_of, project):
    from tests.factories import ProjectFactory

    second = ProjectFactory(organization=organization, name="zz-second", region="us")
    llm_call(project, "t-1", question="hello", answer="world", session_id="s-1")
    user = member_of(organization, Role.VIEWER)
    console.sign_in(user, f"/console/p/{project.id}/traces/")
    console.wait("#lg-results")
    # Hide the input column through the picker.
    console.driver.find_element(By.CSS_SELECTOR, ".lg-columns-picker summary").click()
    console.driver.find_element(By.CSS_SELECTOR, "input[name=cols][value=input]").click()
    shown = console.driver.find_element(By.CSS_SELECTOR, "th.lg-col-input")
    console.driver.find_element(By.CSS_SELECTOR, "#lg-search button[type=submit]").click()
    # The results before the search were still there right after the click: wait for them to go.
    WebDriverWait(console.driver, WAIT_SECONDS).until(_detached(shown))
    console.wait("#lg-results")
    assert not console.driver.find_elements(By.CSS_SELECTOR, "th.lg-col-input")
    assert console.driver.find_elements(By.CSS_SELECTOR, "th.lg-col-output")
    # Viewers get no write forms.
    assert not console.driver.find_elements(By.NAME, "view_name")
    Select(console.driver.find_element(By.ID, "lg-project")).select_by_visible_text(
        f"{organization.name} / zz-second"
    )
    WebDriverWait(console.driver, WAIT_SECONDS).until(lambda d: f"/console/p/{second.id}/" in d.current_url)
    assert console.problems() == []


def test_replay_a_generation_and_save_it_as_a_prompt_version(console, organization, member_of, project, settings):
    from evals.fakejudge import FakeJudge
    from prompts import selectors as prompt_selectors
    from tests.console.playground_kit import NEW, RECORDED, connect, make_prompt, record_generation

    settings.OUTBOUND_ALLOW_PRIVATE = True  # the fake OpenAI-compatible server listens on loopback
    make_prompt(project, "qa/where", [{"role": "system", "content": "You answer in one sentence."},
                                      {"role": "user", "content": "Where is {{place}}?"}], labels=["production"])
    generation_id = record_generation(project, "t-replay", prompt=("qa/where", 1))
    user = member_of(organization, Role.MEMBER)
    with FakeJudge(reply=NEW) as fake:
        connect(project, fake)
        console.sign_in(user, f"/console/p/{project.id}/traces/t-replay/")
        console.wait("#lg-observations")
        node = console.driver.find_element(By.CSS_SELECTOR, f'tbody[data-observation-id="{generation_id}"]')
        details = node.find_element(By.CSS_SELECTOR, "details")
        if not details.get_attribute("open"):
            details.find_element(By.CSS_SELECTOR, "summary").click()
        node.find_element(By.CSS_SELECTOR, "a.lg-replay").click()

        # Prefilled with the recorded call: its messages, model and parameters.
        console.wait("#lg-playground")
        contents = [t.get_attribute("value") for t in console.driver.find_elements(By.NAME, "content")]
        assert contents[:2] == ["You answer in one sentence.", "Where is the Eiffel tower?"]
        assert console.driver.find_element(By.NAME, "model").get_attribute("value") == "replay-model"
        temperature = console.driver.find_element(By.NAME, "temperature")
        assert temperature.get_attribute("value") == "0.2"
        # Changed: a warmer temperature, and one more instruction.
        temperature.clear()
        temperature.send_keys("0.8")
        system = console.driver.find_elements(By.NAME, "content")[0]
        system.send_keys(" Name the district.")
        console.driver.find_element(By.ID, "lg-run").click()

        # The new answer next to the recorded one, and what changed.
        answer = console.wait("#lg-answer")
        assert answer.text == NEW
        assert console.driver.find_element(By.ID, "lg-recorded").text == RECORDED
        inserted = [e.text for e in console.driver.find_elements(By.CSS_SELECTOR, "#lg-diff ins")]
        assert "on the Champ de Mars" in inserted
        assert "tokens in 42 · out 7 · total 49" in console.driver.find_element(By.ID, "lg-stats").text
        assert fake.requests[-1]["temperature"] == 0.8
        assert fake.requests[-1]["messages"][0]["content"] == "You answer in one sentence. Name the district."
        console.shot("replay")

        # Save it as the next version of the linked prompt (production stays where it is).
        save_name = console.driver.find_element(By.NAME, "save_name")
        assert save_name.get_attribute("value") == "qa/where"
        console.driver.find_element(By.NAME, "commit_message").send_keys("name the district")
        # Asking to move production shows a confirmation (nothing saved yet); unticked, it saves.
        console.driver.find_element(By.NAME, "production").click()
        console.driver.find_element(By.ID, "lg-save").click()
        assert "will point at the new v2" in console.wait("#lg-confirm").text
        assert console.driver.find_element(By.ID, "lg-answer").text == NEW  # the state came back whole
        assert prompt_selectors.prompt_version_for(project=project, name="qa/where", version=2) is None
        console.shot("replay-confirm")
        console.driver.find_element(By.NAME, "production").click()
        console.driver.find_element(By.ID, "lg-save").click()
        console.wait(".lg-messages")
        assert "Saved as qa/where v2" in console.driver.find_element(By.CSS_SELECTOR, ".lg-messages").text
    prompt = prompt_selectors.prompt_by_name(project=project, name="qa/where")
    version = prompt_selectors.prompt_version_for(project=project, name="qa/where", version=2)
    assert version.messages[0]["content"] == "You answer in one sentence. Name the district."
    assert version.config["temperature"] == 0.8 and version.commit_message == "name the district"
    assert dict(prompt_selectors.prompt_labels(project=project, prompt=prompt))["production"] == 1

    # From the prompt page, a version opens in the playground; v1 is a template with a variable.
    console.driver.find_element(By.ID, "lg-open-playground").click()
    assert "qa/where v2" in console.wait("main h1").text
    console.open(f"/console/p/{project.id}/playground/?prompt=qa%2Fwhere&version=1")
    console.wait("#lg-variables textarea[name='var:place']").send_keys("the Louvre")
    with FakeJudge(reply="The Louvre is in the 1st arrondissement of Paris.") as fake:
        connect(project, fake)
        console.driver.find_element(By.ID, "lg-run").click()
        assert console.wait("#lg-answer").text == "The Louvre is in the 1st arrondissement of Paris."
        assert fake.requests[-1]["messages"][1]["content"] == "Where is the Louvre?"
    console.shot("playground")
    assert console.problems() == []


def test_the_home_shows_firing_alerts_and_the_navigation_opens_the_playground(
    console, organization, member_of, project, other_project
):
    from monitoring.alerts_models import AlertRule

    firing = AlertRule.objects.create(project=project, name="Error rate high", metric="error_rate", threshold=0.1,
                                      state="firing", last_value=0.25)
    AlertRule.objects.create(project=other_project, name="Their secret rule", metric="error_rate", threshold=0.1,
                             state="firing", last_value=0.9)
    llm_call(project, "t-1", question="hello", answer="world")
    user = member_of(organization, Role.ADMIN)  # every entry, Exports too
    console.sign_in(user, f"/console/p/{project.id}/")
    alerts = console.wait("#lg-home-alerts")
    assert "Error rate high" in alerts.text and "firing" in alerts.text
    assert "Their secret rule" not in console.driver.page_source
    console.shot("home-alerts")
    alerts.find_element(By.LINK_TEXT, "Error rate high").click()
    WebDriverWait(console.driver, WAIT_SECONDS).until(lambda d: f"/alerts/{firing.id}/" in d.current_url)

    # Nothing firing: the home says so and links to the rules.
    AlertRule.objects.filter(pk=firing.pk).update(state="ok")
    console.open(f"/console/p/{project.id}/")
    console.wait("#lg-no-alert").find_element(By.CSS_SELECTOR, "a").click()
    console.wait("#lg-alert-rules")

    # The playground is in the navigation, which still fits on one line at 1440 px.
    links = console.driver.find_elements(By.CSS_SELECTOR, ".lg-nav a")
    assert len({link.location["y"] for link in links}) == 1, [link.text for link in links]
    console.driver.find_element(By.CSS_SELECTOR, ".lg-nav").find_element(By.LINK_TEXT, "Playground").click()
    console.wait("#lg-playground")
    assert console.driver.find_element(By.CSS_SELECTOR, ".lg-nav a.active").text == "Playground"
    assert console.problems() == []


def test_time_filters_are_typed_and_shown_in_the_viewers_zone(console, organization, member_of, project):
    """Times on the page are the viewer's; so are the explorer's From/Until fields: a time typed there
    is the viewer's local time (sent as UTC), not a UTC time in disguise."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC).replace(microsecond=0)
    llm_call(project, "t-old", question="old question", answer="old answer", at=now - timedelta(hours=3))
    llm_call(project, "t-new", question="new question", answer="new answer", at=now - timedelta(minutes=10))
    user = member_of(organization, Role.VIEWER)
    console.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    try:
        console.sign_in(user, f"/console/p/{project.id}/traces/")
        console.wait("#lg-results")
        console.driver.find_element(By.CSS_SELECTOR, ".lg-filters summary").click()
        since = console.driver.find_element(By.NAME, "since")
        assert since.get_attribute("type") == "datetime-local"
        assert "Asia/Tokyo" in since.find_element(By.XPATH, "..").text
        cutoff = now - timedelta(hours=1)
        tokyo = cutoff.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%dT%H:%M:%S")
        console.driver.execute_script("arguments[0].value = arguments[1]", since, tokyo)
        console.driver.find_element(By.CSS_SELECTOR, "#lg-search button[type=submit]").click()
        WebDriverWait(console.driver, WAIT_SECONDS).until(lambda d: "since=" in d.current_url)
        console.wait("#lg-results")
        rows = console.driver.find_elements(By.CSS_SELECTOR, "#lg-results .lg-result")
        assert [r.get_attribute("data-trace-id") for r in rows] == ["t-new"]
        # The address carries the instant in UTC (a saved view means the same for everyone) and the
        # field shows it back in the viewer's zone.
        assert quote(cutoff.strftime("%Y-%m-%dT%H:%M:%S"), safe="") in console.driver.current_url
        # Compared as times: a browser writes a datetime-local value without its seconds when they
        # are :00 (HTML's normalized form), which a run starting on a whole minute met.
        shown = console.driver.find_element(By.NAME, "since").get_attribute("value")
        assert datetime.fromisoformat(shown) == datetime.fromisoformat(tokyo), (shown, tokyo)
        assert console.problems() == []
    finally:
        console.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_a_prompt_versions_metrics_open_its_generations_and_one_lands_unfolded_in_its_trace(
    console, organization, member_of, project, other_project
):
    from prompts import services as prompt_services
    from prompts.payloads import parse_create
    from tests.console.support import _event, iso

    for target in (project, other_project):
        prompt_services.prompt_create_version(
            project=target, data=parse_create({"name": "support/answer", "prompt": "Answer: {{q}}"}), actor=None
        )
    now = datetime.now(UTC)
    for target, trace_id, answer in ((project, "t-7", "Our refund window is 30 days."),
                                     (other_project, "t-secret", "Their private answer.")):
        llm_call(target, trace_id, question="How long for a refund?", answer=answer, at=now - timedelta(hours=1))
        ingest_langfuse_batch(project=target, payload={"batch": [_event("generation-create", {
            "id": f"{trace_id}-gen", "traceId": trace_id, "promptName": "support/answer", "promptVersion": 1,
            "startTime": iso(now - timedelta(hours=1))})]})
    user = member_of(organization, Role.MEMBER)
    console.sign_in(user, f"/console/p/{project.id}/prompts/support%2Fanswer/")
    console.wait("#lg-metrics").find_element(By.LINK_TEXT, "open its generations").click()
    table = console.wait("#lg-generations")
    assert "Our refund window is 30 days." in table.text
    assert "Their private answer." not in console.driver.page_source
    console.shot("prompt-generations")
    table.find_element(By.LINK_TEXT, "llm").click()
    focused = console.wait("#lg-focus")
    assert focused.get_attribute("data-observation-id") == "t-7-gen"
    assert focused.find_element(By.CSS_SELECTOR, "details").get_attribute("open") is not None
    console.shot("trace-focused-generation")
    assert console.problems() == []


def test_a_search_address_carries_only_the_fields_filled_in(console, organization, member_of, project):
    from urllib.parse import parse_qsl, urlsplit

    llm_call(project, "t-1", question="Where is my refund?", answer="It is on its way.")
    console.sign_in(member_of(organization, Role.MEMBER), f"/console/p/{project.id}/traces/")
    form = console.wait("#lg-search")
    form.find_element(By.NAME, "q").send_keys("refund")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(console.driver, WAIT_SECONDS).until(lambda d: "q=refund" in d.current_url)
    params = parse_qsl(urlsplit(console.driver.current_url).query, keep_blank_values=True)
    assert ("q", "refund") in params
    assert [key for key, value in params if value == ""] == []
    assert "t-1" in console.wait("#lg-results").get_attribute("innerHTML")
    # Back in the history, the form is whole again (no field left disabled).
    console.driver.back()
    console.wait("#lg-search")
    assert console.driver.find_elements(By.CSS_SELECTOR, "#lg-search [name]:disabled") == []
    assert console.problems() == []


def test_deleting_a_saved_view_asks_first(console, organization, member_of, project):
    from console.models import SavedView

    view = SavedView.objects.create(project=project, name="refunds", query="q=refund")
    console.sign_in(member_of(organization, Role.MEMBER), f"/console/p/{project.id}/traces/")
    console.wait("#lg-results")
    delete = f"form[action$='/views/{view.id}/delete'] button"
    # Dismissed, the dialog leaves the view where it is.
    console.driver.find_element(By.CSS_SELECTOR, delete).click()
    dialog = WebDriverWait(console.driver, WAIT_SECONDS).until(EC.alert_is_present())
    assert dialog.text == "Delete the view “refunds”?"
    dialog.dismiss()
    assert SavedView.objects.filter(pk=view.pk).exists()
    # Accepted, it is deleted.
    button = console.driver.find_element(By.CSS_SELECTOR, delete)
    button.click()
    WebDriverWait(console.driver, WAIT_SECONDS).until(EC.alert_is_present()).accept()
    WebDriverWait(console.driver, WAIT_SECONDS).until(_detached(button))
    assert "View deleted." in console.wait(".lg-messages").text
    assert not SavedView.objects.filter(pk=view.pk).exists()
    assert console.problems() == []


def test_a_running_erasure_page_follows_its_job_until_it_ends(console, organization, member_of, project):
    """Nobody has to press reload to watch a long job: the receipt reloads itself while the run goes
    on, shows each committed batch, and stops once the run has ended."""
    from privacy import services
    from privacy.models import DeletionBatch, ErasureRequest, JobStatus

    job = services.erasure_request_create(project=project, kind="user", subjects=["alice"], via="admin",
                                          grace_days=0)
    ErasureRequest.objects.filter(id=job.id).update(status=JobStatus.RUNNING)
    DeletionBatch.objects.for_project(project).create(job_id=job.id, table="traces.Observation", rows=1500)

    console.sign_in(member_of(organization, Role.ADMIN), f"/admin/privacy/erasurerequest/{job.id}/change/")
    console.wait_text("1,500 rows deleted so far")
    console.shot("erasure-running")
    DeletionBatch.objects.for_project(project).create(job_id=job.id, table="traces.Trace", rows=300)
    console.wait_text("1,800 rows deleted so far")  # the next reload, with no click
    ErasureRequest.objects.filter(id=job.id).update(
        status=JobStatus.DONE, counts={"traces.Observation": 1500, "traces.Trace": 300}
    )
    console.wait_text("Done: 1,800 rows deleted.")
    # Once done it stays put: a mark set on this page survives past the next reload's time.
    console.driver.execute_script("window.lgStillHere = true")
    time.sleep(REFRESH_SECONDS + 1.5)
    assert console.driver.execute_script("return window.lgStillHere === true")
    assert console.problems() == []


def test_an_erasure_is_confirmed_on_its_own_page_before_anything_is_erased(
    console, organization, member_of, project
):
    from privacy.models import ErasureRequest

    console.sign_in(member_of(organization, Role.ADMIN), "/admin/privacy/erasurerequest/add/")
    form = console.wait("#erasurerequest_form")
    Select(form.find_element(By.NAME, "project")).select_by_value(str(project.id))
    Select(form.find_element(By.NAME, "kind")).select_by_value("user")
    form.find_element(By.NAME, "subject").send_keys("alice@example.com")
    form.find_element(By.NAME, "_save").click()
    page = console.wait("#lg-confirm")
    assert "Erase everything about the end user “alice@example.com”" in page.text
    assert "This cannot be undone." in page.text
    assert not ErasureRequest.objects.exists()
    console.shot("erasure-confirm")
    assert console.problems() == []
    button = console.driver.find_element(By.ID, "lg-confirm-button")
    button.click()
    WebDriverWait(console.driver, WAIT_SECONDS).until(_detached(button))
    WebDriverWait(console.driver, WAIT_SECONDS).until(lambda d: d.current_url.endswith("/admin/privacy/erasurerequest/"))
    assert ErasureRequest.objects.get().requested_via == "admin"
    assert console.problems() == []
