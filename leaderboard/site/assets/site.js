// mer-bench static leaderboard: sort a table by a clicked header; filter tables and rows
// by protocol, dataset, preset, kind of row and a search over the whole row, with the
// filter state kept in the page's URL (?protocol=loso&q=resnet18) so a link restores it.
"use strict";

const FILTERS = ["data", "protocol", "dataset", "preset"];

function cellValue(row, index, type) {
  const cell = row.cells[index];
  const raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
  if (type !== "number") return raw.toLowerCase();
  const value = parseFloat(raw);
  return Number.isNaN(value) ? null : value;
}

function sortBy(header) {
  const table = header.closest("table");
  const index = Array.prototype.indexOf.call(header.parentNode.children, header);
  const type = header.getAttribute("data-type") || "text";
  const descending = header.getAttribute("aria-sort") !== "descending";
  for (const other of header.parentNode.children) other.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, index, type), y = cellValue(b, index, type);
    if (x === y) return 0;
    if (x === null || x === "") return 1;   // empty cells last, whichever the direction
    if (y === null || y === "") return -1;
    return (x < y ? -1 : 1) * (descending ? -1 : 1);
  });
  for (const row of rows) body.appendChild(row);
}

function wantedFilters() {
  const wanted = {};
  for (const select of document.querySelectorAll("select[data-filter]")) {
    wanted[select.getAttribute("data-filter")] = select.value;
  }
  const search = document.getElementById("search");
  wanted.q = search ? search.value.trim().toLowerCase() : "";
  return wanted;
}

// An element matches when every chosen filter agrees with the attribute it carries
// (an element without the attribute leaves that filter to its section).
function matches(element, wanted) {
  return FILTERS.every((key) => !wanted[key] || !element.hasAttribute("data-" + key) ||
                                element.getAttribute("data-" + key) === wanted[key]);
}

function applyFilters() {
  const wanted = wantedFilters();
  let shownTables = 0;
  for (const section of document.querySelectorAll("section.setting")) {
    let rowsShown = 0;
    for (const row of section.querySelectorAll("tbody tr")) {
      const text = (row.getAttribute("data-search") || row.getAttribute("data-method") || "").toLowerCase();
      const match = matches(row, wanted) && (!wanted.q || text.includes(wanted.q));
      row.hidden = !match;
      if (match) rowsShown += 1;
    }
    section.hidden = !matches(section, wanted) || rowsShown === 0;
    if (!section.hidden) shownTables += 1;
  }
  for (const kind of document.querySelectorAll("section.kind")) {
    kind.hidden = !matches(kind, wanted) || (kind.querySelector("section.setting") !== null &&
      kind.querySelector("section.setting:not([hidden])") === null);
  }
  const empty = document.getElementById("no-match");
  if (empty) empty.hidden = shownTables > 0;
  return wanted;
}

function saveToUrl(wanted) {
  const params = new URLSearchParams();
  for (const key of [...FILTERS, "q"]) if (wanted[key]) params.set(key, wanted[key]);
  const query = params.toString();
  history.replaceState(null, "", (query ? "?" + query : location.pathname) + location.hash);
}

function restoreFromUrl() {
  const params = new URLSearchParams(location.search);
  for (const key of FILTERS) {
    const select = document.getElementById("filter-" + key);
    if (select && params.has(key)) select.value = params.get(key);
  }
  const search = document.getElementById("search");
  if (search && params.has("q")) search.value = params.get("q");
  if ([...FILTERS, "q"].some((key) => params.has(key))) applyFilters();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const header of document.querySelectorAll("table.board th")) {
    header.addEventListener("click", () => sortBy(header));
    header.addEventListener("keydown", (event) => { if (event.key === "Enter") sortBy(header); });
  }
  for (const control of document.querySelectorAll("select[data-filter], #search")) {
    const update = () => saveToUrl(applyFilters());
    control.addEventListener("input", update);
    control.addEventListener("change", update);
  }
  restoreFromUrl();
});
