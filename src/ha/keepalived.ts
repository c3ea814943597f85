// keepalived configuration of one director of an HA group, from the Lab model alone (pure): one VRRP
// instance holding every VIP of the group on the VRRP segment, the IPVS sync daemon following the VRRP
// state (master sends, backups receive), and one virtual_server per service with its real servers and
// health check. keepalived programs IPVS itself (lvs_flush: it starts from an empty table).
import type { HaDirectorModel, HaModel, HealthCheckModel, LabModel, RealServerModel, ServiceModel } from '../topology/model';

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
    out.push('', ...virtualServerBlock(s, ha.healthChecks[s.name], opts));
  }
  return out.join('\n') + '\n';
}

/** keepalived's `lvs_method` value of a real server (a tunnel with its type, GUE port and checksum option). */
function lvsMethod(r: RealServerModel): string {
  if (r.method !== 'tun' || !r.tunnel || (r.tunnel.type === 'ipip' && !r.tunnel.flags.length)) return KIND[r.method];
  const t = r.tunnel;
  const csum = t.flags.map((f) => f.replace(/^tun-/, ''));
  return ['TUN', 'type', t.type, ...(t.type === 'gue' ? ['port', String(t.port)] : []), ...csum].join(' ');
}

/**
 * One service as a keepalived.conf `virtual_server` block (lines): the HA group's and the keepalived
 * director driver's (src/director/keepalived.ts). Health check `hc` when the topology asks for one,
 * otherwise none (keepalived then keeps every real server in). Settings the model does not use are not written.
 */
export function virtualServerBlock(s: ServiceModel, hc: HealthCheckModel | undefined, opts: Pick<KeepalivedOptions, 'blindChecks'> = {}): string[] {
  const out: string[] = [];
  const head = s.vip ? `${s.vip} ${s.port}` : `fwmark ${s.fwmark}`;
  out.push(`virtual_server ${head} {`);
  out.push(`  delay_loop ${seconds(hc?.intervalS ?? 60)}`);
  out.push(`  lb_algo ${s.scheduler}`);
  for (const f of s.flags) out.push(`  ${f}`);
  if (s.onePacket) out.push('  ops');
  // One forwarding method per virtual server; a real server of another (or a tunnel type other than plain
  // IPIP) says its own lvs_method.
  const kind = s.realServers.length ? KIND[s.realServers[0].method] : 'NAT';
  out.push(`  lb_kind ${kind}`);
  // A fwmark service has no protocol (keepalived warns and ignores one), only a family.
  if (s.vip) out.push(`  protocol ${s.protocol.toUpperCase()}`);
  else out.push(`  ip_family ${s.family === 6 ? 'inet6' : 'inet'}`);
  if (s.persistence) {
    out.push(`  persistence_timeout ${s.persistence.timeout}`);
    const dflt = s.family === 6 ? '128' : '255.255.255.255';
    if (s.persistence.netmask && s.persistence.netmask !== dflt) out.push(`  persistence_granularity ${s.persistence.netmask}`);
  }
  for (const r of s.realServers) {
    out.push(`  real_server ${r.addr}${s.vip || r.port ? ` ${r.port}` : ''} {`);
    out.push(`    weight ${r.weight}`);
    const m = lvsMethod(r);
    if (m !== kind) out.push(`    lvs_method ${m}`);
    if (r.upper) out.push(`    uthreshold ${r.upper}`);
    if (r.lower) out.push(`    lthreshold ${r.lower}`);
    if (hc && opts.blindChecks) {
      out.push('    MISC_CHECK {', '      misc_path "/bin/true"', '    }');
    } else if (hc) {
      out.push('    TCP_CHECK {', `      connect_timeout ${seconds(hc.timeoutS)}`, `      retry ${hc.retries}`, `      delay_before_retry ${seconds(hc.intervalS)}`, '    }');
    }
    out.push('  }');
  }
  out.push('}');
  return out;
}
