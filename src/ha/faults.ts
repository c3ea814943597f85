// Faulty HA groups, for the mutation score of suites/ha: each breaks one thing the HA statements rely on,
// with nftables rules or sysctls on the group's directors (applied when the lab is prepared, before
// keepalived starts). Registered in src/director/faults.ts with the forwarding faults.
import type { FaultAction, FaultDefinition } from '../director/faults';
import type { KeepalivedOptions } from './keepalived';
import { toBig } from '../topology/addr';
import type { HaModel, LabModel } from '../topology/model';

/** IPVS sync daemon messages: UDP to this port (ipvs-semantics.md §4.10). */
export const SYNC_PORT = 8848;

function nft(node: string, table: string, what: string): FaultAction {
  return { node, argv: ['nft', '-f', '-'], input: table, what };
}

function groupOf(model: LabModel): HaModel | undefined {
  return model.ha;
}

function dropSync(ha: HaModel): FaultAction[] {
  // Locally generated sync messages never leave a director: the backups learn no connection.
  return ha.directors.map((d) => nft(d.node, [
    'table inet vslab_fault {',
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    `    udp dport ${SYNC_PORT} drop`,
    '  }',
    '}',
    '',
  ].join('\n'), 'IPVS sync messages dropped'));
}

/**
 * Faults that change keepalived's own configuration rather than the directors' packets: the HA harness
 * renders keepalived.conf with these options when the run's fault is one of them (HaGroup's options).
 */
const KEEPALIVED_FAULTS: Record<string, KeepalivedOptions> = {
  'ha-blind-check': { blindChecks: true },
};

/** keepalived options for a run with `fault` (none when the fault is not a keepalived one). */
export function keepalivedOptionsFor(fault: string | undefined): KeepalivedOptions {
  return fault ? { ...(KEEPALIVED_FAULTS[fault] ?? {}) } : {};
}

export const HA_FAULTS: FaultDefinition[] = [
  {
    name: 'ha-no-sync',
    summary: 'the directors do not synchronise connections: a backup that takes over knows none of the established flows',
    how: `nftables output hook on every ha director: UDP to port ${SYNC_PORT} (the sync daemon's messages) dropped`,
    targets: ['HA-002'],
    methods: [],
    suiteFiles: ['ha'],
    plan: (m) => { const ha = groupOf(m); return ha?.sync ? dropSync(ha) : []; },
  },
  {
    name: 'ha-no-garp',
    summary: 'a director that becomes master does not announce the VIP (no gratuitous ARP): clients keep sending to the dead one',
    how: 'netdev egress on every ha director\'s VRRP interface: ARP packets whose sender and target address are both a VIP dropped',
    targets: ['HA-001'],
    methods: [],
    suiteFiles: ['ha'],
    plan: (m) => {
      const ha = groupOf(m);
      if (!ha) return [];
      const v4 = ha.vips.map((v) => v.split('/')[0]).filter((v) => !v.includes(':'));
      if (!v4.length) return [];
      const hex = (a: string) => `0x${toBig(a).toString(16).padStart(8, '0')}`;
      return ha.directors.map((d) => nft(d.node, [
        'table netdev vslab_fault {',
        `  chain egress_${d.vrrpIface} {`,
        `    type filter hook egress device "${d.vrrpIface}" priority 0; policy accept;`,
        // Raw offsets in the ARP header (sender IP at byte 14, target IP at byte 24): protocol-specific
        // expressions carry an implicit interface-type check that never holds on egress.
        ...v4.map((v) => `    meta protocol arp @nh,112,32 ${hex(v)} @nh,192,32 ${hex(v)} drop`),
        '  }',
        '}',
        '',
      ].join('\n'), 'gratuitous ARP for the VIPs dropped'));
    },
  },
  {
    name: 'ha-fresh-schedule',
    summary: 'a backup that takes over schedules the established flows afresh (as if they were new), instead of continuing them on their real servers',
    how: `no connection sync (UDP ${SYNC_PORT} dropped) and net.ipv4.vs.sloppy_tcp=1 on every ha director, so a mid-flow packet creates a new connection to whichever real server the scheduler picks`,
    targets: ['HA-002'],
    methods: [],
    suiteFiles: ['ha'],
    plan: (m) => {
      const ha = groupOf(m);
      if (!ha) return [];
      return [
        ...(ha.sync ? dropSync(ha) : []),
        ...ha.directors.map((d) => ({ node: d.node, argv: ['sh', '-c', 'modprobe ip_vs 2>/dev/null; echo 1 > /proc/sys/net/ipv4/vs/sloppy_tcp'], what: 'sloppy TCP scheduling on' })),
      ];
    },
  },
  {
    name: 'ha-blind-check',
    summary: 'the health checks never fail: a dead real server stays in the table and keeps getting new connections',
    how: 'keepalived.conf of every ha director: each real server checked by MISC_CHECK /bin/true instead of TCP_CHECK (the keepalived options of this fault, applied by the HA harness when it writes keepalived.conf)',
    targets: ['HA-004'],
    methods: [],
    suiteFiles: ['ha'],
    // Nothing to do on the nodes: the fault is in keepalived's configuration (keepalivedOptionsFor).
    plan: () => [],
  },
];
