// keepalived configuration of one director of an HA group, from the Lab model alone (pure): one VRRP
// instance holding every VIP of the group on the VRRP segment, the IPVS sync daemon following the VRRP
// state (master sends, backups receive), and one virtual_server per service with its real servers and
// health check. keepalived programs IPVS itself (lvs_flush: it starts from an empty table).
import type { HaDirectorModel, HaModel, LabModel, ServiceModel } from '../topology/model';

export const VRRP_INSTANCE = 'VSLAB_HA';

export interface KeepalivedOptions {
  /** Leave the sync daemon out even when the model has one (the ha-no-sync fault). */
  noSync?: boolean;
  /** Do not send gratuitous ARP / unsolicited NA on becoming master (the ha-no-garp fault). */
  noGarp?: boolean;
  /** Health checks that never fail (the ha-blind-check fault): a MISC_CHECK that always succeeds. */
  blindChecks?: boolean;
}

const KIND: Record<string, string> = { dr: 'DR', tun: 'TUN', nat: 'NAT', fullnat: 'NAT' };

/** The services the group directs (every service of its initial master). */
export function groupServices(lab: LabModel): ServiceModel[] {
  const ha = lab.ha;
  if (!ha) return [];
  return lab.services.filter((s) => s.director === ha.directors[0].node);
}

function seconds(s: number): string {
  return Number.isInteger(s) ? String(s) : s.toFixed(3).replace(/0+$/, '');
}

export function keepalivedConfig(lab: LabModel, director: string, opts: KeepalivedOptions = {}): string {
  const ha: HaModel | undefined = lab.ha;
  if (!ha) throw new Error(`lab ${lab.name} has no ha block`);
  const d: HaDirectorModel | undefined = ha.directors.find((x) => x.node === director);
  if (!d) throw new Error(`node ${director} is not a director of the ha group of lab ${lab.name} (${ha.directors.map((x) => x.node).join(', ')})`);
  const v4 = ha.vips.filter((v) => !v.includes(':'));
  const v6 = ha.vips.filter((v) => v.includes(':'));
  const out: string[] = [];
  out.push(`# vslab: director ${d.node} of lab ${lab.name} (generated from ${lab.file})`);
  out.push('global_defs {');
  out.push(`  router_id vslab-${d.node}`);
  out.push('  lvs_flush');
  if (ha.sync && !opts.noSync) out.push(`  lvs_sync_daemon ${d.syncIface} ${VRRP_INSTANCE} id ${ha.sync.syncId}`);
  if (opts.noGarp) {
    out.push('  vrrp_garp_master_repeat 0', '  vrrp_garp_master_refresh 0');
  } else {
    // One burst on becoming master, none 5 s later: the capture shows the announcement that moved the VIP.
    out.push('  vrrp_garp_master_delay 0', '  vrrp_garp_master_repeat 1');
  }
  out.push('}', '');
  out.push(`vrrp_instance ${VRRP_INSTANCE} {`);
  out.push('  state BACKUP');
  out.push(`  interface ${d.vrrpIface}`);
  out.push(`  virtual_router_id ${ha.routerId}`);
  out.push(`  priority ${d.priority}`);
  out.push(`  advert_int ${seconds(ha.advertIntervalS)}`);
  if (!ha.preempt) out.push('  nopreempt');
  else if (ha.preemptDelayS > 0) out.push(`  preempt_delay ${seconds(ha.preemptDelayS)}`);
  if (opts.noGarp) out.push('  garp_master_delay 0', '  garp_master_repeat 0', '  garp_master_refresh 0');
  // VRRPv2 carries the IPv4 VIPs; IPv6 VIPs move with the instance without being advertised.
  if (v4.length) out.push('  virtual_ipaddress {', ...v4.map((v) => `    ${v} dev ${d.vrrpIface}`), '  }');
  if (v6.length) out.push('  virtual_ipaddress_excluded {', ...v6.map((v) => `    ${v} dev ${d.vrrpIface}`), '  }');
  out.push('}');
  for (const s of groupServices(lab)) {
    if (!s.vip) continue;
    const hc = ha.healthChecks[s.name];
    out.push('');
    out.push(`virtual_server ${s.vip} ${s.port} {`);
    out.push(`  delay_loop ${seconds(hc?.intervalS ?? 60)}`);
    out.push(`  lb_algo ${s.scheduler}`);
    const kinds = new Set(s.realServers.map((r) => KIND[r.method]));
    if (kinds.size !== 1) throw new Error(`service ${s.name}: keepalived gives one forwarding method per virtual server, this one mixes ${[...kinds].join(', ')}`);
    out.push(`  lb_kind ${[...kinds][0]}`);
    out.push(`  protocol ${s.protocol.toUpperCase()}`);
    if (s.persistence) out.push(`  persistence_timeout ${s.persistence.timeout}`);
    for (const r of s.realServers) {
      out.push(`  real_server ${r.addr} ${r.port} {`);
      out.push(`    weight ${r.weight}`);
      if (hc && opts.blindChecks) {
        out.push('    MISC_CHECK {', '      misc_path "/bin/true"', '    }');
      } else if (hc) {
        out.push('    TCP_CHECK {', `      connect_timeout ${seconds(hc.timeoutS)}`, `      retry ${hc.retries}`, `      delay_before_retry ${seconds(hc.intervalS)}`, '    }');
      }
      out.push('  }');
    }
    out.push('}');
  }
  return out.join('\n') + '\n';
}
