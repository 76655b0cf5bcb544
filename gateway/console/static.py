"""The console's one script and one stylesheet, served from /console/static/.

The script does three things: posts the action forms as JSON with the CSRF header (after a
confirmation where the form asks for one), replays the selected dead letters one by one, and
polls the overview's JSON to redraw its tables without a reload.
"""

from __future__ import annotations

__all__ = ["ASSETS"]

_JS = r"""
"use strict";
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

async function postJson(url, body) {
  const answer = await fetch(url, {
    method: "POST", credentials: "same-origin", redirect: "follow",
    headers: {"content-type": "application/json", "x-console-csrf": csrf},
    body: JSON.stringify(body || {}),
  });
  let value = null;
  try { value = await answer.json(); } catch (e) { value = null; }
  return {ok: answer.ok, status: answer.status, value, url: answer.url};
}

function flash(text, ok) {
  const box = document.getElementById("flash");
  if (!box) { return; }
  box.textContent = text;
  box.className = ok ? "ok" : "error";
}

function formBody(form) {
  if (form.dataset.body) { return JSON.parse(form.dataset.body); }
  const body = {};
  for (const [name, value] of new FormData(form).entries()) {
    if (value !== "") { body[name] = name === "id" ? Number(value) : value; }
  }
  return body;
}

async function submitJson(form) {
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
  const result = await postJson(form.action, formBody(form));
  if (form.classList.contains("logout")) { window.location = "/console/login"; return; }
  const detail = result.value ? JSON.stringify(result.value) : String(result.status);
  flash((result.ok ? "Done: " : "Refused: ") + detail, result.ok);
  if (result.ok && form.dataset.reload !== undefined) {
    window.setTimeout(() => window.location.reload(), 600);
  }
}

async function replaySelected(button) {
  const ids = [...document.querySelectorAll("input.pick:checked")].map((b) => Number(b.value));
  if (!ids.length) { flash("Select dead letters first.", false); return; }
  if (!window.confirm(`Replay ${ids.length} selected dead letter(s)?`)) { return; }
  let replayed = 0, refused = 0;
  for (const id of ids) {
    const result = await postJson(button.dataset.action, {id});
    if (result.ok) { replayed += result.value.replayed; } else { refused += 1; }
  }
  flash(`Replayed ${replayed}, refused ${refused}.`, refused === 0);
  window.setTimeout(() => window.location.reload(), 600);
}

function cell(row, value, cls) {
  const td = row.insertCell();
  td.textContent = value === null || value === undefined ? "-" : String(value);
  if (cls) { td.className = cls; }
  return td;
}

function fillTable(id, rows, columns) {
  const table = document.getElementById(id);
  if (!table) { return; }
  const body = document.createElement("tbody");
  for (const item of rows) {
    const row = body.insertRow();
    for (const [key, cls] of columns) { cell(row, item[key], cls && item[key] ? cls(item) : ""); }
  }
  table.replaceChild(body, table.tBodies[0]);
}

async function pollOverview(root) {
  const url = "/console/api/overview" + window.location.search;
  try {
    const answer = await fetch(url, {credentials: "same-origin"});
    if (answer.ok) {
      const data = await answer.json();
      fillTable("partners", data.partners, [
        ["partner"], ["in_per_min"], ["out_per_min"], ["backlog"], ["oldest_pending"],
        ["breaker", (item) => "breaker-" + item.breaker], ["last_error"], ["sla_breaches"],
      ]);
      fillTable("services", data.services, [["name"], ["state", (item) => "state-" + item.state],
        ["detail"]]);
      document.getElementById("updated-at").textContent = data.as_of;
      root.dataset.polls = String(Number(root.dataset.polls || "0") + 1);
    }
  } finally {
    window.setTimeout(() => pollOverview(root), Number(root.dataset.pollMs));
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.matches("form[data-json]")) { event.preventDefault(); submitJson(form); }
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-replay-selected]");
  if (button) { event.preventDefault(); replaySelected(button); }
  const all = event.target.closest("input.pick-all");
  if (all) { document.querySelectorAll("input.pick").forEach((b) => { b.checked = all.checked; }); }
});
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("overview");
  if (root) { window.setTimeout(() => pollOverview(root), Number(root.dataset.pollMs)); }
});
"""

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em;
  background: #1d2330; color: #fff; }
header nav a { color: #cfd6e4; margin-right: 1em; text-decoration: none; }
header nav a.current { color: #fff; border-bottom: 2px solid #6cf; }
header form.search { flex: 1; display: flex; gap: .4em; }
header form.search input { flex: 1; padding: .3em; }
main { padding: 1em 1.5em; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; background: #fff; width: 100%; margin-bottom: 1em; }
th, td { border-bottom: 1px solid #e3e6eb; padding: .3em .6em; text-align: left;
  vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
tr.empty td { color: #777; font-style: italic; }
.breaker-open, .breaker-disabled, .state-dead, .state-down { color: #b00020; font-weight: 600; }
.breaker-half_open, .state-pending { color: #a86400; }
.state-delivered, .state-up { color: #0a7d32; }
form.inline { display: inline; }
form.filters { display: flex; gap: .6em; flex-wrap: wrap; margin-bottom: 1em; }
#flash.ok { color: #0a7d32; } #flash.error { color: #b00020; }
pre { background: #fff; padding: .6em; overflow: auto; max-height: 20em; }
body.login main { max-width: 28em; margin: 4em auto; }
body.login .error { color: #b00020; }
.pager a { margin-right: 1em; }
"""

ASSETS: dict[str, tuple[bytes, bytes]] = {
    "/console/static/console.js": (b"text/javascript; charset=utf-8", _JS.encode()),
    "/console/static/console.css": (b"text/css; charset=utf-8", _CSS.encode()),
}
