"""The workstation's pages for each role, from the keyboard, with labelled controls, accessible (axe-core), and
API errors shown as messages (never a blank page)."""

from __future__ import annotations

import re

import pytest
from browser_kit import axe_violations, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def test_sign_in_and_new_patient_from_the_keyboard(new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto("/patients")  # not signed in: the sign-in page, then back here
    expect(page).to_have_url(re.compile(r"/login\?next=/patients"))
    page.keyboard.type("physician")  # the user name has the focus
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery staple")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/patients$"))
    # the main controls carry labels (found by their label text) and take the focus in order
    for label in ("Search by name", "Family name", "Given name", "Date of birth", "Sex", "Weight (kg)"):
        expect(page.get_by_label(label)).to_be_visible()
    page.get_by_label("Family name").focus()
    page.keyboard.type("Okafor")
    page.keyboard.press("Tab")
    page.keyboard.type("Ada")
    page.keyboard.press("Tab")
    page.keyboard.type("03041980")  # the date field, from the keyboard
    page.get_by_label("Weight (kg)").fill("2000")  # out of range, past the browser's own check
    page.evaluate("() => document.getElementById('np-weight').removeAttribute('max')")
    page.get_by_role("button", name="Create the patient").press("Enter")
    msg = page.locator("#messages .msg.error")
    expect(msg).to_contain_text("weight_kg")  # the API's refusal, as its message
    shot(page, "13-api-error-shown")
    page.get_by_label("Weight (kg)").fill("70")
    page.get_by_role("button", name="Create the patient").press("Enter")
    expect(page).to_have_url(re.compile(r"/patients/\d+$"))
    expect(page.locator("#patient-name")).to_have_text("Okafor, Ada")
    # a skip link leads past the navigation
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()


def test_an_unknown_patient_is_a_message_not_a_blank_page(new_page):
    from playwright.sync_api import expect

    page = new_page("physician")
    page.goto("/patients/987654/mapping")
    expect(page.locator("#messages .msg.error").first).to_contain_text("patient 987654 not found")
    expect(page.get_by_role("heading", name="Vein map")).to_be_visible()
    page.goto("/no-such-page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()


def test_each_role_sees_what_it_can_read(new_page, server):
    from playwright.sync_api import expect

    desk = new_page("front_desk")
    nav = desk.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Calendar")).to_be_visible()
    expect(nav.get_by_role("link", name="Outcomes")).to_have_count(0)
    desk.get_by_label("Family name").fill("Nakamura")
    desk.get_by_label("Given name").fill("Ken")
    desk.get_by_label("Date of birth").fill("1965-02-03")
    expect(desk.get_by_label("Weight (kg)")).to_have_count(0)  # weight is clinical: the desk may not write it
    desk.get_by_role("button", name="Create the patient").click()
    expect(desk.locator("#patient-name")).to_have_text("Nakamura, Ken")
    tabs = desk.get_by_role("navigation", name="Patient record")
    expect(tabs.get_by_role("link", name="Chart")).to_be_visible()
    expect(tabs.get_by_role("link", name="Live procedure")).to_have_count(0)
    expect(desk.locator("#patient-facts")).not_to_contain_text("kg")  # weight is clinical: not sent to this role
    expect(desk.locator("main")).to_contain_text("not the clinical record")
    pid = desk.url.rsplit("/", 1)[1]
    desk.goto(f"/patients/{pid}/plan")
    expect(desk.get_by_role("heading", name="Not available to your role")).to_be_visible()
    assert not axe_violations(desk)

    admin = new_page("admin")
    expect(admin).to_have_url(re.compile(r"/admin/users$"))
    expect(admin.locator("#user-table")).to_contain_text("front_desk")
    admin.get_by_label("User name").fill("newnurse")
    admin.get_by_label("Role", exact=True).select_option("nurse")
    admin.get_by_label("Password (10+ characters)").fill("a long enough password")
    admin.get_by_role("button", name="Create").click()
    expect(admin.locator("#user-table")).to_contain_text("newnurse")
    shot(admin, "14-admin-users", full_page=True)
    assert not axe_violations(admin)
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(admin.locator("#audit-table")).to_contain_text("front_desk")
    admin.get_by_label("Action").fill("create")
    admin.get_by_role("button", name="Filter").click()
    expect(admin.locator("#audit-table")).to_contain_text("patient")
    shot(admin, "15-admin-audit")
    assert not axe_violations(admin)
    admin.goto(f"/patients/{pid}")
    expect(admin.get_by_role("heading", name="Not available to your role")).to_be_visible()


def test_public_request_form_needs_no_sign_in(new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto("/request")
    page.get_by_label("Your name").fill("Ingrid Berg")
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator("#messages .msg.error")).to_contain_text("give an e-mail address or a telephone number")
    page.get_by_label("Telephone").fill("+47 400 00 000")
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator("#request-result")).to_contain_text("The clinic will contact you")
    assert not axe_violations(page)
    sign_in(page, "front_desk")
    page.goto("/calendar")
    expect(page.locator("#request-list")).to_contain_text("Ingrid Berg")


def test_api_docs_load_offline(new_page, server):
    from playwright.sync_api import expect

    page = new_page()
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.base) else external.append(r.url))
    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .title")).to_contain_text("EchoSclero clinic record", timeout=30_000)
    assert not external, external
