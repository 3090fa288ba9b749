// mer-bench static leaderboard: sort a table by a clicked header, filter tables and rows.
"use strict";

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

function applyFilters() {
  const wanted = {};
  for (const select of document.querySelectorAll("select[data-filter]")) {
    wanted[select.getAttribute("data-filter")] = select.value;
  }
  const search = document.getElementById("search");
  const text = search ? search.value.trim().toLowerCase() : "";
  for (const section of document.querySelectorAll("section.setting")) {
    let shown = Object.keys(wanted).every(
      (key) => !wanted[key] || section.getAttribute("data-" + key) === wanted[key]);
    let rowsShown = 0;
    for (const row of section.querySelectorAll("tbody tr")) {
      const match = !text || (row.getAttribute("data-method") || "").toLowerCase().includes(text);
      row.hidden = !match;
      if (match) rowsShown += 1;
    }
    section.hidden = !shown || rowsShown === 0;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const header of document.querySelectorAll("table.board th")) {
    header.addEventListener("click", () => sortBy(header));
    header.addEventListener("keydown", (event) => { if (event.key === "Enter") sortBy(header); });
  }
  for (const control of document.querySelectorAll("select[data-filter], #search")) {
    control.addEventListener("input", applyFilters);
    control.addEventListener("change", applyFilters);
  }
});
