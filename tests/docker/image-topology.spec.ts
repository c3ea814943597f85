// A node's `image:` in a topology: what the model holds, and the errors (file:line:col) for what may not be.
import { test, expect } from '@playwright/test';
import { loadTopologyText, TopologyError } from '../../src/topology/load';

const lab = (image: string) => `name: img
nodes:
  c1: { role: client }
  s1:
    role: real-server
    image: ${image}
segments:
  net: { ipv4: 198.18.7.0/24, members: [c1, s1] }
`;

function diagnostics(text: string) {
  try {
    loadTopologyText(text, 'img.yaml');
  } catch (e) {
    if (e instanceof TopologyError) return e.diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);
    throw e;
  }
  throw new Error('the topology was accepted');
}

test('an image by name, or with command, env and files, is carried into the model', () => {
  expect(loadTopologyText(lab('my-lb:dev'), 'img.yaml').nodes[1].image).toEqual({ ref: 'my-lb:dev', command: undefined, env: {}, files: [] });
  const m = loadTopologyText(lab('{ name: my-lb:dev, command: [haproxy, -f, /etc/h.cfg], env: { A: 1 }, files: [{ from: conf/h.cfg, to: /etc/h.cfg }] }'), 'img.yaml');
  expect(m.nodes[1].image).toEqual({ ref: 'my-lb:dev', command: ['haproxy', '-f', '/etc/h.cfg'], env: { A: '1' }, files: [{ from: 'conf/h.cfg', to: '/etc/h.cfg' }] });
  expect(m.nodes[0].image).toBeUndefined();
});

test('files outside the topology folder, relative destinations and odd names are refused where they are written', () => {
  expect(diagnostics(lab('{ name: x, files: [{ from: ../secret, to: /a }] }')).join('\n')).toMatch(/^6:\d+ .*"\.\.\/secret" must be a relative path inside the topology's folder/m);
  expect(diagnostics(lab('{ name: x, files: [{ from: /etc/shadow, to: /a }] }')).join('\n')).toMatch(/"\/etc\/shadow" must be a relative path/);
  expect(diagnostics(lab('{ name: x, files: [{ from: a, to: relative/path }] }')).join('\n')).toMatch(/^6:\d+ /m);
  expect(diagnostics(lab('"Not An Image!"')).join('\n')).toMatch(/^6:\d+ /m);
  expect(diagnostics(lab('{ name: x, pull: always }')).join('\n')).toMatch(/unknown key "pull"|must NOT have additional properties|pull/);
});
