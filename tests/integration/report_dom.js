// SPDX-License-Identifier: MIT
// Runs a floodgate rehearsal report's scripts against a minimal DOM (node, no browser) and
// fails on any exception or on a NaN/undefined/Infinity attribute; prints what it drew.
const fs = require("fs");
const html = fs.readFileSync(process.argv[2], "utf8");
const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
const byId = {};
let svgs = 0, paths = 0, rows = 0;
const charts = []; // per svg: its axis labels (end-anchored: values; middle: times) and notes
function node(tag) {
  return { tag, children: [], attrs: {}, style: {}, textContent: "", innerHTML: "",
    setAttribute(k, v) { if (v === undefined || (typeof v === "number" && !isFinite(v))) throw new Error(tag + " " + k + "=" + v); if (typeof v === "string" && /NaN|undefined|Infinity/.test(v)) throw new Error(tag + " " + k + "=" + v); this.attrs[k] = v; },
    appendChild(c) {
      this.children.push(c); if (c.tag === "svg") svgs++; if (c.tag === "path") paths++; if (c.tag === "tr") rows++;
      if (this.tag === "svg" && c.tag === "text") {
        if (!this.chart) charts.push(this.chart = {yticks: [], xticks: [], notes: []});
        const t = String(c.textContent), a = c.attrs["text-anchor"];
        if (a === "end") this.chart.yticks.push(t);
        else if (a === "middle" && c.attrs.fill) this.chart.notes.push(t);
        else if (a === "middle") this.chart.xticks.push(t);
      }
      return c;
    },
    append(t) { this.children.push(t); } };
}
global.document = {
  getElementById(id) {
    if (id === "data") return { textContent: scripts.find(s => s[1].includes('id="data"'))[2] };
    return byId[id] || (byId[id] = node("div"));
  },
  createElement: node, createElementNS: (ns, t) => node(t),
};
for (const s of scripts) if (!s[1].includes("application/json")) eval(s[2]);
console.log(JSON.stringify({svgs, paths, rows, charts}));
