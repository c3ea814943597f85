// The report: one self-contained HTML file (inline CSS, a little inline script, inline SVG from
// src/report/svg.ts; nothing fetched) with the summary, the statement × implementation matrix filterable by
// status, every test with its failed checks' field diffs and its flows' journeys, lab topologies with a
// selected test's path highlighted, scheduler distributions and the mutation matrix.
import type { DiffRow, ReportData, RunView, TestView, TopoView } from './data';
import { distributionSvg, esc, journeySvg, topologySvg } from './svg';

const STATUSES = ['passed', 'failed', 'known-failure', 'not-applicable', 'skipped', 'not-checked'] as const;

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:10px 20px}header h1{margin:0;font-size:20px}
main{padding:10px 20px}section{margin:18px 0}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:300px}
.card dt{color:#666;float:left;clear:left;width:110px}.card dd{margin-left:115px}
.counts span{display:inline-block;margin-right:8px;padding:1px 7px;border-radius:9px;font-weight:600}
.passed{background:#d7f2dc;color:#145a25}.failed{background:#fbd5d5;color:#8a1111}.known-failure{background:#fde9c4;color:#7a4b00}
.not-applicable,.skipped,.not-checked{background:#e8e8ee;color:#555}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f4;position:sticky;top:0}td.st{font-weight:600;white-space:nowrap}
#filter{position:sticky;top:0;background:#fafafa;padding:6px 0;z-index:2;border-bottom:1px solid #ddd}#filter label{margin-right:12px}
.hidden{display:none}
details.test{background:#fff;border:1px solid #ddd;border-radius:5px;margin:4px 0;padding:3px 8px}details.test>summary{cursor:pointer}
details.test[open]{border-color:#889}
.diff td.mismatch,.diff td.missing{background:#fbd5d5;font-weight:600}.diff td.ok{color:#555}
.why{color:#8a1111}.note{color:#7a4b00}
svg text{font:11px ui-monospace,monospace;fill:#222}
.topo .node rect{fill:#fff;stroke:#889;stroke-width:1.2}.topo .role-client rect{fill:#eef5ff}.topo .role-director rect{fill:#fff6e6}.topo .role-real-server rect{fill:#effaf0}.topo .role-router rect{fill:#f4f4f4}
.topo .nn{font-weight:700;font-size:12px}.topo .nr{fill:#777}.topo .ifl{font-size:10px}.topo .colh{font-weight:700;fill:#555}
.topo .edge{stroke:#999;stroke-width:1.5;fill:none}.topo .seg rect{fill:#e6e6f0;stroke:#99a}.topo .seg text{font-size:10px}
.topo .edge.on{stroke:#d62728;stroke-width:4}.topo .node.on rect{stroke:#d62728;stroke-width:3}.topo .ifl.on{fill:#d62728;font-weight:700}
.journey .life{stroke:#ccc;stroke-dasharray:3 3}.journey .lane{font-weight:700}.journey .arrow{stroke:#4e79a7;stroke-width:1.5;fill:none}
.journey .arrow.s2c{stroke:#59a14f}.journey .via{stroke:#999;stroke-width:3}.journey .hop{fill:#4e79a7}.journey .hop.rw{fill:#f28e2b}
.journey marker path{fill:#555}.journey .trh{font-weight:700;fill:#555}.journey .chg{fill:#c0392b;font-weight:700}
.dist .exp{fill:#fff;stroke:#4e79a7;stroke-width:2}.dist .obs{fill:#4e79a7}.dist .obs.off{fill:#d62728}.dist .band{fill:#f28e2b;opacity:.35}
.dist .diverge{stroke:#d62728;stroke-width:2}.dist .first{stroke:#d62728;stroke-width:2}.dist .firstt{fill:#d62728;font-weight:700}
.scroll{overflow-x:auto}.small{color:#666;font-size:12px}code{font-size:12px}
.mx td.x{background:#fbd5d5;text-align:center;font-weight:700}.mx td.dot{text-align:center;color:#aaa}
`;

const SCRIPT = `
(function(){
  var boxes=[].slice.call(document.querySelectorAll('#filter input[data-status]'));
  function apply(){
    var on={};boxes.forEach(function(b){on[b.dataset.status]=b.checked;});
    [].slice.call(document.querySelectorAll('[data-statuses]')).forEach(function(el){
      var any=el.dataset.statuses.split(' ').some(function(s){return on[s];});
      el.classList.toggle('hidden',!any);
    });
  }
  boxes.forEach(function(b){b.addEventListener('change',apply);});
  function highlight(lab,links){
    var svg=document.querySelector('svg.topo[data-lab="'+lab+'"]');if(!svg)return;
    var set={};links.forEach(function(l){set[l]=1;});
    [].slice.call(svg.querySelectorAll('[data-link]')).forEach(function(e){e.classList.toggle('on',!!set[e.dataset.link]);});
    [].slice.call(svg.querySelectorAll('.node')).forEach(function(n){
      n.classList.toggle('on',links.some(function(l){return l.split(':')[0]===n.dataset.node;}));
    });
  }
  [].slice.call(document.querySelectorAll('select.flowsel')).forEach(function(s){
    s.addEventListener('change',function(){
      var o=s.options[s.selectedIndex];highlight(s.dataset.lab,o.value?o.value.split(' '):[]);
    });
  });
  [].slice.call(document.querySelectorAll('button.showpath')).forEach(function(b){
    b.addEventListener('click',function(){
      var s=document.querySelector('select.flowsel[data-lab="'+b.dataset.lab+'"]');
      if(s){for(var i=0;i<s.options.length;i++)if(s.options[i].dataset.test===b.dataset.test)s.selectedIndex=i;}
      highlight(b.dataset.lab,b.dataset.path.split(' '));
      var t=document.getElementById('topo-'+b.dataset.lab);if(t)t.scrollIntoView();
    });
  });
  function openHash(){var id=decodeURIComponent(location.hash.slice(1));var d=id&&document.getElementById(id);if(d&&d.tagName==='DETAILS')d.open=true;}
  window.addEventListener('hashchange',openHash);openHash();
})();
`;

function pill(status: string, text?: string): string {
  return `<span class="${esc(status)}">${esc(text ?? status)}</span>`;
}

function dur(ms: number): string {
  return ms >= 60_000 ? `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s` : `${(ms / 1000).toFixed(1)} s`;
}

function testAnchor(run: number, t: TestView): string {
  return `r${run}-${t.id}`;
}

function summaryCard(r: RunView): string {
  const x = r.results;
  const s = x.summary;
  const counts = [
    pill('passed', `${s.passed} passed`), pill('failed', `${s.failed} failed`), pill('known-failure', `${s.knownFailures} known failures`),
    pill('not-applicable', `${s.notApplicable} not applicable`), ...(s.skipped ? [pill('skipped', `${s.skipped} skipped`)] : []),
  ].join('');
  const rows: Array<[string, string]> = [
    ['implementation', esc(r.implementation === x.director ? `${x.director} (not reached)` : r.implementation)],
    ['director', esc(x.director)], ['backend', esc(x.backend)], ['kernel', esc(x.kernel ?? 'bookworm (default)')],
    ...(x.fault ? [['fault', `<b>${esc(x.fault)}</b>`] as [string, string]] : []),
    ...(x.shard ? [['shard', `${x.shard.current} of ${x.shard.total}`] as [string, string]] : []),
    ['suites', esc(x.paths.join(', '))], ['tests', `${s.tests} <span class="counts">${counts}</span>`],
    ...(s.checks ? [['packet checks', `${s.checks} (${s.failedChecks} failed)`] as [string, string]] : []),
    ...(s.statements ? [['statements', `${s.statements - s.statementsFailed - s.statementsKnownFailures - s.statementsNotChecked} of ${s.statements} passed, ${s.statementsFailed} failed, ${s.statementsKnownFailures} known failures, ${s.statementsNotChecked} not checked`] as [string, string]] : []),
    ['started', esc(x.startedAt)], ['duration', dur(x.durationMs)], ['run directory', `<code>${esc(r.dir)}</code>`],
  ];
  const errs = x.errors.map((e) => `<div class="why">error: ${esc(e)}</div>`).join('') + r.problems.map((p) => `<div class="note">${esc(p)}</div>`).join('');
  return `<div class="card" data-testid="summary"><b>${esc(r.label)}</b><dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>${errs}</div>`;
}

/** Statements (rows) × runs (columns): each cell the statement's status in that run, with the tests behind it. */
function matrix(runs: RunView[]): string {
  const ids: Array<{ id: string; level: string; title: string }> = [];
  const seen = new Set<string>();
  for (const r of runs) for (const s of r.results.statements) if (!seen.has(s.id)) { seen.add(s.id); ids.push(s); }
  if (!ids.length) return '';
  const head = `<tr><th>statement</th><th>level</th><th>title</th>${runs.map((r) => `<th>${esc(r.label)}</th>`).join('')}</tr>`;
  const rows = ids.map((s) => {
    const statuses = new Set<string>();
    const cells = runs.map((r, k) => {
      const x = r.results.statements.find((y) => y.id === s.id);
      if (!x) return '<td class="small">—</td>';
      statuses.add(x.status);
      const na = r.tests.filter((t) => t.statements.includes(s.id) && (t.status === 'not-applicable' || t.status === 'skipped') && t.reason);
      const detail = [
        ...x.failedIn.map((id) => `<a href="#${esc(`r${k}-${id}`)}">${esc(id)}</a>`),
        ...(x.status === 'not-checked' && na.length ? [`<span class="small">not applicable: ${esc(na[0].reason!)}</span>`] : []),
      ];
      return `<td class="st ${esc(x.status)}" data-cell="${esc(x.status)}" title="${esc(`${x.tests.length} test(s): ${x.tests.join(', ')}`)}">${esc(x.status)} <span class="small">(${x.tests.length})</span>${detail.length ? `<div>${detail.join('<br>')}</div>` : ''}</td>`;
    });
    return `<tr data-statuses="${[...statuses].join(' ')}" data-statement="${esc(s.id)}"><td><b>${esc(s.id)}</b></td><td>${esc(s.level)}</td><td>${esc(s.title)}</td>${cells.join('')}</tr>`;
  });
  return `<section id="matrix"><h2>Statements × implementations</h2><table data-testid="matrix">${head}${rows.join('')}</table></section>`;
}

function diffTable(rows: DiffRow[]): string {
  if (!rows.length) return '';
  return `<table class="diff"><tr><th>layer</th><th>field</th><th>expected</th><th>observed</th></tr>${rows.map((r) => `<tr data-diff="${esc(r.status)}"><td>${esc(r.layer)}</td><td>${esc(r.field)}</td><td class="${esc(r.status)}">${esc(r.expected)}</td><td class="${esc(r.status)}">${esc(r.seen)}</td></tr>`).join('')}</table>`;
}

function laneOrderOf(r: RunView, t: TestView): string[] {
  const topo = r.topologies.find((x) => x.lab === t.lab);
  return topo ? topo.nodes.map((n) => n.name) : [];
}

function testDetails(r: RunView, k: number, t: TestView): string {
  const parts: string[] = [];
  const a = testAnchor(k, t);
  parts.push(`<div class="small">${esc(t.file)} · ${dur(t.durationMs)} · ${t.checks} checks${t.failedChecks ? `, <b>${t.failedChecks} failed</b>` : ''}${t.lab ? ` · lab ${esc(t.lab)}` : ''}</div>`);
  if (t.reason && t.status !== 'passed') parts.push(`<div class="${t.status === 'failed' ? 'why' : 'note'}">${esc(t.reason)}</div>`);
  if (t.statements.length) parts.push(`<div>statements: ${t.statements.map((s) => pill(t.statementResults?.[s] ?? 'not-checked', s)).join(' ')}</div>`);
  for (const n of t.notes) parts.push(`<div class="note">note: ${esc(n)}</div>`);
  const cap = t.captureHref ? `<a href="${esc(t.captureHref)}" download>capture.pcapng</a>` : '';
  if (t.failedCheckDiffs.length) {
    parts.push(`<h4>Failed checks: expected vs observed</h4>`);
    for (const f of t.failedCheckDiffs) {
      parts.push(`<div class="failed-check" data-testid="failed-check"><b>${esc(f.id)}</b> on <code>${esc(f.link)}</code>: ${esc(f.reason)}${f.broken.length ? ` · breaks ${esc(f.broken.join(', '))}` : ''}${f.frame !== undefined ? ` · <span data-testid="frame">frame ${f.frame}</span> in ${cap || 'capture.pcapng'}` : ''}${diffTable(f.rows)}</div>`);
    }
    if (t.omittedFailedChecks) parts.push(`<div class="small">${t.omittedFailedChecks} more failed check(s): vslab replay on the run directory lists them all.</div>`);
  }
  if (t.journeys.length) {
    parts.push(`<h4>Packet journey${t.journeys.length > 1 ? 's' : ''}</h4><div class="small">one lane per node, one row per packet seen on a captured link (#frame in ${cap || 'capture.pcapng'}, Wireshark numbering); fields rewritten since the previous hop in red${t.lab && t.path.length ? ` · <button class="showpath" data-lab="${esc(topoKey(k, t.lab))}" data-test="${esc(a)}" data-path="${esc(t.path.join(' '))}">show path on the topology</button>` : ''}</div>`);
    for (const j of t.journeys) {
      parts.push(`<div class="jn"><b>${esc(j.flow)}</b> <span class="small">${j.hops} packets on the wire${j.omittedHops ? `, the first ${j.hops - j.omittedHops} drawn (the rest are in the capture)` : ''}</span>${j.warnings.map((w) => `<div class="note">${esc(w)}</div>`).join('')}<div class="scroll">${journeySvg(j, laneOrderOf(r, t))}</div></div>`);
    }
  }
  if (t.distribution) {
    const d = t.distribution;
    parts.push(`<h4>Distribution: ${esc(d.scheduler)} on ${esc(d.kernel)}</h4><div class="small">${d.flows} flows (choices of flows ${d.shownFrom}–${d.shownFrom + Math.max(d.predicted.length, d.observed.length) - 1} drawn); ${esc(d.toleranceNote)}; ${d.firstDivergence === null ? 'the kernel chose what the model chose for every flow' : `<b>first divergence at flow ${d.firstDivergence}</b>`}</div><div class="scroll" data-testid="distribution">${distributionSvg(d)}</div>`);
  }
  return `<details class="test" id="${esc(a)}" data-statuses="${esc(t.status)}" data-testid="test"><summary>${pill(t.status)} <b>${esc(t.id)}</b> <span class="small">${esc(t.title)}</span></summary>${parts.join('')}</details>`;
}

/** A lab's drawing, per run (two runs may draw the same lab). */
function topoKey(k: number, lab: string): string {
  return `r${k}-${lab}`;
}

function topologySection(k: number, r: RunView, topo: TopoView): string {
  const key = topoKey(k, topo.lab);
  const tests = r.tests.filter((t) => t.lab === topo.lab && t.path.length);
  const options = [`<option value="">— choose a test to highlight its flow's path —</option>`, ...tests.map((t) => `<option value="${esc(t.path.join(' '))}" data-test="${esc(testAnchor(k, t))}">${esc(t.id)}</option>`)].join('');
  return `<div class="topology" id="topo-${esc(key)}" data-testid="topology"><h3>${esc(topo.lab)} <span class="small">${esc(topo.topology)}${r.label ? ` · ${esc(r.label)}` : ''}</span></h3>
<div><select class="flowsel" data-lab="${esc(key)}">${options}</select></div>
<div class="small">${topo.services.map(esc).join('<br>')}</div><div class="scroll">${topologySvg(topo, key)}</div></div>`;
}

function mutationSection(runs: RunView[]): string {
  const m = runs.find((r) => r.mutation)?.mutation;
  if (!m) return '';
  const head = `<tr><th>statement</th>${m.faults.map((f, i) => `<th title="${esc(f.summary)}">${i + 1}</th>`).join('')}<th>killed by</th></tr>`;
  const rows = m.statements.map((s) => `<tr data-statuses="${s.killedBy.length ? 'passed' : 'failed'}"><td>${esc(s.id)}</td>${m.faults.map((f) => (f.broken.includes(s.id) ? `<td class="x" title="${esc(f.fault)}">X</td>` : '<td class="dot">·</td>')).join('')}<td>${s.killedBy.length || '<b class="why">none</b>'}</td></tr>`).join('');
  const caught = `<tr><td><b>caught</b></td>${m.faults.map((f) => `<td class="${f.caught ? 'passed' : 'failed'}">${f.caught ? 'Y' : 'N'}</td>`).join('')}<td></td></tr>`;
  const legend = m.faults.map((f, i) => `<li value="${i + 1}"><b>${esc(f.fault)}</b>: ${esc(f.summary)} — ${f.caught ? `caught by ${f.failedTests.length} test(s)` : '<b class="why">not caught</b>'}${f.error ? ` <span class="why">(${esc(f.error)})</span>` : ''}</li>`).join('');
  return `<section id="mutation"><h2>Mutation: statements × faults</h2><p>${m.score.caught} of ${m.score.faults} faults caught; ${m.score.killed} of ${m.score.statements} statements failed by at least one fault.</p><table class="mx" data-testid="mutation">${head}${rows}${caught}</table><ol>${legend}</ol></section>`;
}

export function renderReport(data: ReportData): string {
  const runs = data.runs;
  const filter = `<div id="filter">show: ${STATUSES.map((s) => `<label><input type="checkbox" data-status="${s}" checked> ${pill(s)}</label>`).join('')}</div>`;
  const tests = runs.map((r, k) => `<h3>${esc(r.label)}</h3>${r.tests.map((t) => testDetails(r, k, t)).join('')}`).join('');
  const topos = runs.flatMap((r, k) => r.topologies.map((t) => topologySection(k, r, t))).join('');
  const title = `vslab report: ${runs.map((r) => r.label).join(' | ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body><header><h1>vslab report</h1><div class="small" style="color:#ccd">${esc(runs.map((r) => r.label).join(' · '))} · generated ${esc(data.generatedAt)}</div></header>
<main>
<section id="summary"><h2>Summary</h2><div class="cards">${runs.map(summaryCard).join('')}</div></section>
${filter}
${matrix(runs)}
${mutationSection(runs)}
<section id="tests"><h2>Tests</h2>${tests}</section>
${topos ? `<section id="topologies"><h2>Topologies</h2>${topos}</section>` : ''}
</main><script>${SCRIPT}</script></body></html>
`;
}
