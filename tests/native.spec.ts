import { test, expect } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import { native } from '../src/native';

test('native helper creates a namespace, sets a sysctl only inside it, and removes it', () => {
  const path = `/run/netns/vslabtest-native-${process.pid}`;
  const n = native();
  const hostBefore = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  n.netnsCreate(path);
  try {
    n.sysctlWrite(path, [['/proc/sys/net/ipv4/ip_forward', '1']]);
    const inside = execFileSync('ip', ['netns', 'exec', path.split('/').pop()!, 'cat', '/proc/sys/net/ipv4/ip_forward']).toString().trim();
    expect(inside).toBe(hostBefore.trim() === '1' ? '0' : '1');
    expect(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(hostBefore);
    expect(() => n.sysctlWrite(path, [['/proc/sys/net/ipv4/no_such_knob', '1']])).toThrow(/no_such_knob/);
  } finally {
    n.netnsDelete(path);
  }
  expect(fs.existsSync(path)).toBe(false);
});
