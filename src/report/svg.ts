// The report's drawings, as inline SVG strings: the lab topology by role, a flow's packet journey as a
// sequence diagram, and a scheduler's distribution. No library, no browser needed to produce them.
import type { DistributionView, JourneyView, TopoView } from './data';

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const ROLE_COL: Record<string, number> = { client: 0, router: 1, director: 2, 'real-server': 3 };
const CHAR_W = 6.1;

/** Lab topology: clients | routers | directors | real servers in columns, segments as hubs between them. */
export function topologySvg(t: TopoView, key = t.lab): string {
  const cols = [...new Set(t.nodes.map((n) => ROLE_COL[n.role] ?? 1))].sort();
  const longest = Math.max(20, ...t.nodes.flatMap((n) => [...n.ifaces.map((i) => `${i.name} ${i.addrs.join(', ')}`.length), `lo ${n.extra.join(', ')}`.length]));
  const boxW = Math.round(Math.max(200, longest * CHAR_W * 0.92 + 16));
  const colStep = boxW + 110;
  const colX = new Map(cols.map((c, i) => [c, 20 + i * colStep]));
  const lineH = 14;
  const colY = new Map<number, number>();
  const port = new Map<string, { x: number; y: number; side: number }>();
  const parts: string[] = [];
  const boxes: string[] = [];
  for (const n of t.nodes) {
    const c = ROLE_COL[n.role] ?? 1;
    const x = colX.get(c)!;
    const y = colY.get(c) ?? 40;
    const h = 24 + lineH * n.ifaces.length + (n.extra.length ? lineH : 0);
    colY.set(c, y + h + 24);
    const ifaceLines = n.ifaces.map((i, k) => {
      const ly = y + 34 + k * lineH;
      port.set(`${n.name}:${i.name}`, { x, y: ly - 4, side: 0 });
      return `<text x="${x + 8}" y="${ly}" class="ifl" data-link="${esc(n.name)}:${esc(i.name)}">${esc(i.name)} ${esc(i.addrs.join(', '))}</text>`;
    }).join('');
    const extra = n.extra.length ? `<text x="${x + 8}" y="${y + 34 + n.ifaces.length * lineH}" class="ifl lo">lo ${esc(n.extra.join(', '))}</text>` : '';
    boxes.push(`<g class="node role-${esc(n.role)}" data-node="${esc(n.name)}"><rect x="${x}" y="${y}" width="${boxW}" height="${h}" rx="6"/><text x="${x + 8}" y="${y + 16}" class="nn">${esc(n.name)}</text><text x="${x + boxW - 8}" y="${y + 16}" class="nr" text-anchor="end">${esc(n.role)}</text>${ifaceLines}${extra}</g>`);
  }
  const hubs: Array<{ x: number; y: number }> = [];
  for (const s of t.segments) {
    const ends = s.members.map((m) => port.get(m)).filter((p): p is NonNullable<typeof p> => !!p);
    if (!ends.length) continue;
    const xs = ends.map((p) => p.x);
    const minX = Math.min(...xs);
    const maxX = Math.max(...xs);
    let hx = minX === maxX ? minX + boxW + 40 : (minX + boxW + maxX) / 2;
    let hy = ends.reduce((a, p) => a + p.y, 0) / ends.length;
    while (hubs.some((h) => Math.abs(h.x - hx) < 60 && Math.abs(h.y - hy) < 26)) hy += 28;
    hubs.push({ x: hx, y: hy });
    hx = Math.round(hx);
    hy = Math.round(hy);
    for (const m of s.members) {
      const p = port.get(m);
      if (!p) continue;
      // Leave the box on the side facing the hub.
      const px = p.x + (hx > p.x + boxW / 2 ? boxW : 0);
      parts.push(`<path class="edge" data-link="${esc(m)}" d="M${px},${p.y} L${hx},${hy}"/>`);
    }
    const w = Math.max(44, s.name.length * CHAR_W + 12);
    parts.push(`<g class="seg seg-${s.kind}"><rect x="${hx - w / 2}" y="${hy - 10}" width="${w}" height="20" rx="10"/><text x="${hx}" y="${hy + 4}" text-anchor="middle">${esc(s.name)}</text></g>`);
  }
  const width = 20 + cols.length * colStep;
  const height = Math.max(...colY.values(), 80) + 10;
  const heads = cols.map((c) => `<text class="colh" x="${colX.get(c)! + boxW / 2}" y="22" text-anchor="middle">${['clients', 'routers', 'directors', 'real servers'][c]}</text>`).join('');
  return `<svg class="topo" data-lab="${esc(key)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="topology of lab ${esc(t.lab)}">${heads}${parts.join('')}${boxes.join('')}</svg>`;
}

/** A flow's packets across every captured hop: one lane per node, one row per packet seen on a link. */
export function journeySvg(j: JourneyView, laneOrder: string[]): string {
  const nodes = new Set(j.transmissions.flatMap((t) => t.hops.map((h) => h.node)));
  const lanes = [...laneOrder.filter((n) => nodes.has(n)), ...[...nodes].filter((n) => !laneOrder.includes(n)).sort()];
  const laneW = 96;
  const laneX = new Map(lanes.map((n, i) => [n, 40 + i * laneW]));
  const textX = 40 + lanes.length * laneW;
  const rowH = 17;
  let y = 40;
  const out: string[] = [];
  let maxChars = 40;
  j.transmissions.forEach((tr, k) => {
    y += 6;
    out.push(`<text class="trh" x="${textX}" y="${y}">packet ${k + 1} · ${tr.direction === 'c2s' ? 'client → server' : 'server → client'}${tr.hops[0]?.icmpError ? ' · ICMP error' : ''}</text>`);
    y += rowH - 4;
    let prev: { x: number; y: number } | undefined;
    for (const h of tr.hops) {
      const x = laneX.get(h.node)!;
      if (prev) {
        if (prev.x === x) out.push(`<path class="via" d="M${x},${prev.y} L${x},${y}"/>`);
        else out.push(`<path class="arrow ${tr.direction}" marker-end="url(#ah)" d="M${prev.x},${prev.y} L${x + (x > prev.x ? -5 : 5)},${y}"/>`);
      }
      out.push(`<circle class="hop${h.changed.length ? ' rw' : ''}" cx="${x}" cy="${y}" r="4"/>`);
      // Frame and link, then what this hop rewrote (highlighted), then the packet.
      const head = `${h.frame !== undefined ? `#${h.frame}` : '#?'} ${h.link.padEnd(14)} `;
      const chg = h.changed.map((c) => `<tspan class="chg">${esc(c)}</tspan>`).join('<tspan>; </tspan>');
      maxChars = Math.max(maxChars, head.length + h.changed.join('; ').length + h.line.length + 3);
      out.push(`<text class="hopt" x="${textX}" y="${y + 4}" xml:space="preserve" data-frame="${h.frame ?? ''}"><tspan>${esc(head)}</tspan>${chg ? `${chg}<tspan> | </tspan>` : ''}<tspan class="pl">${esc(h.line)}</tspan></text>`);
      prev = { x, y };
      y += rowH;
    }
  });
  const height = y + 6;
  const width = Math.round(textX + maxChars * CHAR_W + 20);
  const heads = lanes.map((n) => `<text class="lane" x="${laneX.get(n)}" y="16" text-anchor="middle">${esc(n)}</text><path class="life" d="M${laneX.get(n)},24 L${laneX.get(n)},${height}"/>`).join('');
  const defs = '<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>';
  return `<svg class="journey" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="packet journey of ${esc(j.flow)}">${defs}${heads}${out.join('')}</svg>`;
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#bab0ac', '#e15759'];

/** Expected vs observed connections per real server (with the tolerance band), then the choice sequences. */
export function distributionSvg(d: DistributionView): string {
  const barW = 26;
  const groupW = barW * 2 + 26;
  const plotH = 150;
  const max = Math.max(1, ...d.servers.map((s) => Math.max(s.expected + d.tolerance, s.observed)));
  const yOf = (v: number) => 30 + plotH - (v / max) * plotH;
  const out: string[] = [];
  d.servers.forEach((s, i) => {
    const x = 50 + i * groupW;
    const bandTop = yOf(s.expected + d.tolerance);
    const bandBot = yOf(Math.max(0, s.expected - d.tolerance));
    out.push(`<rect class="band" x="${x - 4}" y="${bandTop - 1}" width="${barW * 2 + 8}" height="${Math.max(2, bandBot - bandTop + 2)}"><title>tolerance ${s.expected - d.tolerance}..${s.expected + d.tolerance}</title></rect>`);
    out.push(`<rect class="exp" x="${x}" y="${yOf(s.expected)}" width="${barW}" height="${30 + plotH - yOf(s.expected)}"><title>${esc(s.name)} expected ${s.expected}</title></rect>`);
    const bad = Math.abs(s.observed - s.expected) > d.tolerance;
    out.push(`<rect class="obs${bad ? ' off' : ''}" x="${x + barW}" y="${yOf(s.observed)}" width="${barW}" height="${30 + plotH - yOf(s.observed)}"><title>${esc(s.name)} observed ${s.observed}</title></rect>`);
    out.push(`<text x="${x + barW}" y="${30 + plotH + 14}" text-anchor="middle" class="srv">${esc(s.name)}</text>`);
    out.push(`<text x="${x + barW / 2}" y="${yOf(s.expected) - 3}" text-anchor="middle" class="num">${s.expected}</text><text x="${x + barW * 1.5}" y="${yOf(s.observed) - 3}" text-anchor="middle" class="num">${s.observed}</text>`);
  });
  const color = new Map(d.servers.map((s, i) => [s.name, PALETTE[i % PALETTE.length]]));
  const seqY = 30 + plotH + 40;
  const cell = 12;
  const n = Math.max(d.predicted.length, d.observed.length);
  const offset = d.shownFrom;
  const seq: string[] = [`<text x="4" y="${seqY + 9}" class="srv">model</text>`, `<text x="4" y="${seqY + cell + 13}" class="srv">kernel</text>`];
  for (let i = 0; i < n; i++) {
    const x = 50 + i * cell;
    const p = d.predicted[i] ?? null;
    const o = d.observed[i] ?? null;
    const flow = offset + i;
    seq.push(`<rect x="${x}" y="${seqY}" width="${cell - 1}" height="${cell}" fill="${p ? color.get(p) : '#ddd'}"><title>flow ${flow}: model ${p ?? 'none'}</title></rect>`);
    seq.push(`<rect x="${x}" y="${seqY + cell + 4}" width="${cell - 1}" height="${cell}" fill="${o ? color.get(o) : '#ddd'}"${p !== o ? ' class="diverge"' : ''}><title>flow ${flow}: kernel ${o ?? 'none'}</title></rect>`);
  }
  if (d.firstDivergence !== null) {
    const x = 50 + (d.firstDivergence - offset) * cell;
    seq.push(`<path class="first" d="M${x - 1},${seqY - 6} L${x - 1},${seqY + 2 * cell + 10}"/><text class="firstt" x="${x + 2}" y="${seqY + 2 * cell + 24}">first divergence: flow ${d.firstDivergence}</text>`);
  }
  const legend = d.servers.map((s, i) => `<rect x="${50 + i * 70}" y="${seqY + 2 * cell + 34}" width="10" height="10" fill="${color.get(s.name)}"/><text x="${64 + i * 70}" y="${seqY + 2 * cell + 43}" class="srv">${esc(s.name)}</text>`).join('');
  const width = Math.max(60 + d.servers.length * groupW, 60 + n * cell, 60 + d.servers.length * 70) + 20;
  const height = seqY + 2 * cell + 56;
  const key = `<rect class="exp" x="${width - 190}" y="6" width="10" height="10"/><text x="${width - 176}" y="15" class="srv">model</text><rect class="obs" x="${width - 130}" y="6" width="10" height="10"/><text x="${width - 116}" y="15" class="srv">kernel</text><rect class="band" x="${width - 70}" y="6" width="10" height="10"/><text x="${width - 56}" y="15" class="srv">band</text>`;
  return `<svg class="dist" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="distribution of ${esc(d.scheduler)}">${key}${out.join('')}${seq.join('')}${legend}</svg>`;
}
