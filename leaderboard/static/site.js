// Column sorting for the leaderboard tables. Reads only data-* attributes and moves existing rows: no strings
// from results are ever turned into HTML here.
"use strict";
function sortBoard(table, th) {
  const col = Number(th.dataset.col);
  const lowerBetter = th.dataset.direction === "lower";
  const next = th.dataset.sort === "best" ? "worst" : "best";
  table.querySelectorAll("th[data-col]").forEach(function (h) { delete h.dataset.sort; h.removeAttribute("aria-sort"); });
  th.dataset.sort = next;
  const ascending = (next === "best") === lowerBetter;
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    const va = parseFloat(a.cells[col].dataset.v), vb = parseFloat(b.cells[col].dataset.v);
    const ma = isNaN(va), mb = isNaN(vb);
    if (ma || mb) { return (ma ? 1 : 0) - (mb ? 1 : 0); }  // rows without a value go last
    if (va === vb) { return 0; }
    return ascending ? (va < vb ? -1 : 1) : (va > vb ? -1 : 1);
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
document.querySelectorAll("table.board").forEach(function (table) {
  table.querySelectorAll("th[data-col]").forEach(function (th) {
    th.addEventListener("click", function () { sortBoard(table, th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBoard(table, th); } });
  });
});
