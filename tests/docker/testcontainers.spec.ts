// vslab/testcontainers used the way a user would use it in their own test file: by its package name,
// building their image from a Dockerfile and waiting for their service with testcontainers' strategies.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { startLab, VslabWait, Wait, dockerfileBaseImages, type StartedLab } from 'vslab/testcontainers';
import { docker, LABEL_LAB } from '../../src/backend/docker/engine';

const fixture = path.join(__dirname, 'fixtures', 'user-lb');
test.describe.configure({ mode: 'serial' });

test.afterAll(async () => {
  await docker().getImage('vslab-h13-tc-web:1').remove({ force: true }).catch(() => undefined);
});

test('a user builds their image, starts a lab, waits for their service, and reaches it from the client', async () => {
  test.setTimeout(240_000);
  let lab: StartedLab | undefined;
  try {
    lab = await startLab(path.join(fixture, 'lab.yaml'), {
      name: 'h13-tc',
      build: { 'vslab-h13-tc-web:1': { context: fixture } },
      waitFor: { web: Wait.forAll([Wait.forLogMessage(/ready to serve/), VslabWait.forListeningPort(80)]) },
    });
    const labels = (await lab.container('web').inspect()).Config.Labels;
    expect(labels[LABEL_LAB]).toBe(lab.name);
    const web = lab.lab.model.nodes.find((n) => n.name === 'web')!.interfaces[0];
    for (const addr of [web.ipv4!.addr, `[${web.ipv6!.addr}]`]) {
      const r = await lab.node('client').exec(['busybox', 'wget', '-q', '-O-', `http://${addr}/index.html`], { timeoutMs: 10_000 });
      expect(r.stdout, r.stderr).toBe("served by the user's image\n");
    }
  } finally {
    await lab?.stop();
  }
  expect(await docker().listContainers({ all: true, filters: { label: [`${LABEL_LAB}=${lab!.name}`] } })).toEqual([]);
});

test('a wait that never holds fails naming the node, and takes the lab down', async () => {
  test.setTimeout(120_000);
  // Other people's vslab labs on a shared machine come and go meanwhile: the lab's own containers are counted.
  const labelled = async () => docker().listContainers({ all: true, filters: { label: [`${LABEL_LAB}=h13-tc-wait`] } });
  await expect(startLab(path.join(fixture, 'lab.yaml'), { name: 'h13-tc-wait', waitFor: { web: VslabWait.forListeningPort(9) }, startupTimeoutMs: 3000 }))
    .rejects.toThrow(/node web did not become ready: nothing listened on tcp port 9/);
  expect(await labelled()).toEqual([]);
});

test('a Dockerfile FROM an image that is not here is refused before anything is pulled', async () => {
  expect(dockerfileBaseImages('ARG B=x\nFROM ${B} AS one\nFROM one\nFROM scratch\nFROM debian:bookworm\n', {})).toEqual(['x', 'debian:bookworm']);
  const fs = await import('fs');
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'h13-pull-'));
  fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM vslab-h13-not-here:1\n');
  try {
    await expect(startLab(path.join(fixture, 'lab.yaml'), { build: { 'vslab-h13-never:1': { context: dir } } }))
      .rejects.toThrow(/FROM vslab-h13-not-here:1, which is not in the local Docker daemon; vslab never pulls/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
