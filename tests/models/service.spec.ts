import { expect, test } from '@playwright/test';
import { parseAddress } from '../../src/models/address';
import { ScenarioConflict, ServiceModel } from '../../src/models/service';
import { flow, pick, service, VIP } from './helpers';

const counters = (svc: ServiceModel, name: string) => {
  const d = svc.findDest(name) ?? svc.trash.get([...svc.trash.keys()].find((k) => svc.trash.get(k)!.name === name)!)!;
  return { a: d.activeConns, i: d.inactConns, p: d.persistConns, ovl: d.overload };
};

test.describe('connection accounting', () => {
  test('TCP: held = active, closed = inactive until FIN_WAIT expires (120 s); UDP = inactive (300 s)', () => {
    const svc = service('rr', [['a', 1]]);
    const open = svc.openFlow(flow('198.18.0.2', 1000));
    expect(counters(svc, 'a')).toMatchObject({ a: 1, i: 0 });
    svc.closeConn(open.conn!);
    expect(counters(svc, 'a')).toMatchObject({ a: 0, i: 1 });
    svc.advance(100);
    expect(counters(svc, 'a')).toMatchObject({ a: 0, i: 1 });
    svc.advance(40);
    expect(counters(svc, 'a')).toMatchObject({ a: 0, i: 0 });

    const udp = new ServiceModel({ scheduler: 'rr', family: 4, proto: 'udp', vip: VIP, port: 53 });
    udp.addDest({ name: 'a', addr: parseAddress('198.18.1.11'), port: 53, weight: 1 });
    udp.openFlow(flow('198.18.0.2', 1000, { proto: 'udp', dport: 53 }));
    expect(counters(udp, 'a')).toMatchObject({ a: 0, i: 1 });
    udp.advance(250);
    expect(counters(udp, 'a').i).toBe(1);
    udp.advance(100);
    expect(counters(udp, 'a').i).toBe(0);
  });

  test('held TCP connections expire after 900 s of silence (ESTABLISHED timeout)', () => {
    const svc = service('rr', [['a', 1]]);
    svc.openFlow(flow('198.18.0.2', 1000));
    svc.advance(880);
    expect(counters(svc, 'a').a).toBe(1);
    svc.advance(140);
    expect(counters(svc, 'a').a).toBe(0);
  });

  test('one-packet UDP leaves no connection behind', () => {
    const svc = new ServiceModel({ scheduler: 'rr', family: 4, proto: 'udp', vip: VIP, port: 53, onePacket: true });
    svc.addDest({ name: 'a', addr: parseAddress('198.18.1.11'), port: 53, weight: 1 });
    for (let i = 0; i < 5; i++) expect(svc.openFlow(flow('198.18.0.2', 1000, { proto: 'udp', dport: 53 })).dest!.name).toBe('a');
    expect(counters(svc, 'a')).toMatchObject({ a: 0, i: 0 });
    expect(svc.conns.size).toBe(0);
  });

  test('a client cannot open a second connection on a port whose connection is still open', () => {
    const svc = service('rr', [['a', 1]]);
    svc.openFlow(flow('198.18.0.2', 1000));
    expect(() => svc.openFlow(flow('198.18.0.2', 1000))).toThrow(ScenarioConflict);
  });
});

test.describe('OVERLOAD flag (ip_vs_bind_dest / ip_vs_unbind_dest)', () => {
  test('set when active + inactive reaches the upper threshold at bind', () => {
    const svc = service('lc', [['a', 1], ['b', 1]]);
    svc.editDest('a', { upper: 2 });
    pick(svc, 4); // lc alternates b, a, b, a
    expect(counters(svc, 'a')).toMatchObject({ a: 2, ovl: true });
    expect(pick(svc, 2, {}, 41000)).toEqual(['b', 'b']);
  });

  test('cleared at unbind below 3/4 of upper when there is no lower threshold', () => {
    const svc = service('rr', [['a', 1]]);
    svc.editDest('a', { upper: 4 });
    const conns = [0, 1, 2, 3].map((i) => svc.openFlow(flow('198.18.0.2', 1000 + i, { hold: false })).conn!);
    expect(counters(svc, 'a').ovl).toBe(true);
    expect(svc.openFlow(flow('198.18.0.2', 2000)).dest).toBeNull();
    void conns;
    svc.advance(150); // all four expire: at 3 left, 3*4 < 12 is false; at 2 left, 8 < 12 clears
    expect(counters(svc, 'a')).toMatchObject({ i: 0, ovl: false });
  });

  test('with a lower threshold: cleared only below it', () => {
    const svc = service('rr', [['a', 1]]);
    svc.editDest('a', { upper: 3, lower: 1 });
    const c = [0, 1, 2].map((i) => svc.openFlow(flow('198.18.0.2', 1000 + i)).conn!);
    expect(counters(svc, 'a').ovl).toBe(true);
    svc.closeConn(c[0]);
    svc.closeConn(c[1]);
    svc.advance(150); // two expire: total 1, not < 1
    expect(counters(svc, 'a')).toMatchObject({ a: 1, i: 0, ovl: true });
  });

  test('editing clears OVERLOAD only when the new upper is 0 or higher than the old', () => {
    const svc = service('rr', [['a', 1]]);
    svc.editDest('a', { upper: 1 });
    svc.openFlow(flow('198.18.0.2', 1000));
    expect(counters(svc, 'a').ovl).toBe(true);
    svc.editDest('a', { weight: 2 });
    expect(counters(svc, 'a').ovl).toBe(true);
    svc.editDest('a', { upper: 5 });
    expect(counters(svc, 'a').ovl).toBe(false);
    svc.openFlow(flow('198.18.0.2', 1001));
    svc.editDest('a', { upper: 2 }); // lowered: flag stays as it is (clear), next bind sets it
    expect(counters(svc, 'a').ovl).toBe(false);
    svc.openFlow(flow('198.18.0.2', 1002));
    expect(counters(svc, 'a').ovl).toBe(true);
    svc.editDest('a', { upper: 0 });
    expect(counters(svc, 'a').ovl).toBe(false);
  });

  test('lower above upper and negative weights are refused (ERANGE)', () => {
    const svc = service('rr', [['a', 1]]);
    expect(() => svc.editDest('a', { upper: 2, lower: 3 })).toThrow(/ERANGE/);
    expect(() => svc.editDest('a', { lower: 1 })).toThrow(/ERANGE/); // upper 0 < lower 1
    expect(() => svc.editDest('a', { weight: -1 })).toThrow(/ERANGE/);
  });
});

test.describe('trash', () => {
  test('a server removed while connections exist is revived with its counters when re-added', () => {
    const svc = service('lc', [['a', 1], ['b', 1]]);
    pick(svc, 2); // b, a
    svc.removeDest('b');
    expect(counters(svc, 'b').a).toBe(1);
    svc.addDest({ name: 'b', addr: parseAddress('198.18.1.12'), port: 80, weight: 1 });
    expect(svc.list.map((d) => d.name)).toEqual(['b', 'a']);
    expect(counters(svc, 'b').a).toBe(1);
  });
});

test.describe('persistence', () => {
  const persistent = (timeout: number, prefixLen: number, extra = {}) => service('rr', [['a', 1], ['b', 1], ['c', 1]], { persistence: { timeout, prefixLen }, ...extra });

  test('templates count in persistConns, not in active/inactive', () => {
    const svc = persistent(300, 32);
    svc.openFlow(flow('198.18.0.2', 1000));
    svc.openFlow(flow('198.18.0.2', 1001));
    expect(counters(svc, 'c')).toMatchObject({ a: 2, i: 0, p: 1 });
  });

  test('a template is refreshed by each new connection and expires timeout after its last use', () => {
    const svc = persistent(100, 32);
    svc.openFlow(flow('198.18.0.2', 1000, { hold: false })); // c; conn gone at 120
    svc.advance(60);
    expect(svc.openFlow(flow('198.18.0.2', 1001, { hold: false })).via).toBe('template'); // re-armed to 160
    svc.advance(80); // t = 140: template alive until 160, first conn gone at 120
    expect(svc.openFlow(flow('198.18.0.2', 1002, { hold: false })).dest!.name).toBe('c'); // re-armed to 240
    svc.advance(190); // t = 330: conns gone at 260, template at 240 + 60 keepalive = 300 -> gone
    const r = svc.openFlow(flow('198.18.0.2', 1003, { hold: false }));
    expect(r.via).toBe('scheduler');
    expect(r.dest!.name).toBe('b');
  });

  test('a template that still controls connections lives on in 60 s steps and keeps 60 s as its timeout', () => {
    const svc = persistent(600, 32);
    const c = svc.openFlow(flow('198.18.0.2', 1000)).conn!; // held: ESTABLISHED 900 s
    svc.advance(620); // template fired at 600 with a live connection: re-armed to 660, timeout 60
    const t = [...svc.templates.values()][0];
    expect(t.timeout).toBe(60);
    expect(t.expires).toBe(660);
    svc.closeConn(c); // connection expires at 740
    svc.advance(160); // t = 780: fired at 660, 720 (still controlled), 780 -> gone
    expect(svc.templates.size).toBe(0);
    expect(counters(svc, 'c').p).toBe(0);
  });

  test('template key: netmask groups clients; IPv6 uses a prefix length', () => {
    const v4 = persistent(300, 24);
    expect(v4.templateKey(flow('198.18.7.9', 1))).toBe(v4.templateKey(flow('198.18.7.200', 2)));
    expect(v4.templateKey(flow('198.18.7.9', 1))).not.toBe(v4.templateKey(flow('198.18.8.9', 1)));
    const vip6 = parseAddress('2001:db8:100::100');
    const v6 = new ServiceModel({ scheduler: 'rr', family: 6, proto: 'tcp', vip: vip6, port: 80, persistence: { timeout: 300, prefixLen: 64 } });
    const f6 = (c: string) => ({ client: parseAddress(c), cport: 1, dst: vip6, dport: 80, proto: 'tcp' as const, hold: true });
    expect(v6.templateKey(f6('2001:db8:2::1'))).toBe(v6.templateKey(f6('2001:db8:2::ffff:1')));
    expect(v6.templateKey(f6('2001:db8:2::1'))).not.toBe(v6.templateKey(f6('2001:db8:2:1::1')));
  });

  test('fwmark templates ignore port and protocol', () => {
    const fw = new ServiceModel({ scheduler: 'rr', family: 4, proto: 'tcp', fwmark: 7, port: 80, persistence: { timeout: 300, prefixLen: 32 } });
    expect(fw.templateKey(flow('198.18.0.2', 1, { dport: 443 }))).toBe(fw.templateKey(flow('198.18.0.2', 2, { dport: 53, proto: 'udp' })));
  });
});

test.describe('connection reuse for a new SYN (ip_vs_in_hook)', () => {
  const reuse = (forward: 'dr' | 'nat', mode: number) => {
    const svc = new ServiceModel({ scheduler: 'rr', family: 4, proto: 'tcp', vip: VIP, port: 80, sysctls: { connReuseMode: mode } });
    for (const [n, i] of [['a', 1], ['b', 2]] as const) svc.addDest({ name: n, addr: parseAddress(`198.18.1.${10 + i}`), port: 80, weight: 1, forward });
    const first = svc.openFlow(flow('198.18.0.2', 1000, { hold: false }));
    return { first, second: svc.openFlow(flow('198.18.0.2', 1000, { hold: false })) };
  };

  test('NAT, TIME_WAIT entry, conn_reuse_mode 1: rescheduled', () => {
    const { first, second } = reuse('nat', 1);
    expect(first.dest!.name).toBe('b');
    expect(second).toMatchObject({ via: 'scheduler' });
    expect(second.dest!.name).toBe('a');
  });

  test('DR, FIN_WAIT entry: same server with mode 1, rescheduled with mode 2 (bit 2)', () => {
    expect(reuse('dr', 1).second).toMatchObject({ via: 'existing' });
    expect(reuse('dr', 1).second.dest!.name).toBe('b');
    expect(reuse('dr', 2).second.dest!.name).toBe('a');
  });

  test('conn_reuse_mode 0: the old entry is used', () => {
    expect(reuse('nat', 0).second).toMatchObject({ via: 'existing' });
  });

  test('entry of a deleted server: dropped (expire_nodest_conn=0) or rescheduled (=1)', () => {
    for (const [nodest, via] of [[false, 'dropped'], [true, 'scheduler']] as const) {
      const svc = new ServiceModel({ scheduler: 'rr', family: 4, proto: 'udp', vip: VIP, port: 53, sysctls: { expireNodestConn: nodest } });
      svc.addDest({ name: 'a', addr: parseAddress('198.18.1.11'), port: 53, weight: 1 });
      svc.addDest({ name: 'b', addr: parseAddress('198.18.1.12'), port: 53, weight: 1 });
      const f = flow('198.18.0.2', 5000, { proto: 'udp', dport: 53 });
      expect(svc.openFlow(f).dest!.name).toBe('b');
      svc.removeDest('b');
      expect(svc.openFlow(f).via).toBe(via);
    }
  });
});

test.describe('timing warnings', () => {
  test('a wait that ends near an expiry is reported; one with margin is not', () => {
    const near = service('rr', [['a', 1]]);
    near.openFlow(flow('198.18.0.2', 1000, { hold: false })); // FIN_WAIT until 120
    near.advance(118);
    expect(near.warnings.join('\n')).toMatch(/too close/);
    const far = service('rr', [['a', 1]]);
    far.openFlow(flow('198.18.0.2', 1000, { hold: false }));
    far.advance(150);
    far.advance(50);
    expect(far.warnings).toEqual([]);
  });
});
